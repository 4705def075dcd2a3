-- Team policy. Client keys get a policy (a model allowlist, a concurrency
-- cap, limits per window), a rotation time, and names that can be used again
-- once revoked: the name is unique among live (unrevoked) keys only. SQLite
-- cannot drop a column's UNIQUE constraint, so the table is rebuilt, keeping
-- every id (request_log refers to keys by id), the AUTOINCREMENT sequence (an
-- id is never reused) and the change-counter triggers. Accounts get limits
-- too. Limits are stored as they are written on the command line
-- ("usd=20/day,tokens=2M/5h"); the use against them is never stored but
-- summed from request_log, which the two indexes serve.

-- +goose Up
CREATE TABLE client_keys_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    prefix          TEXT    NOT NULL,
    key_hash        TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER NOT NULL DEFAULT 0,
    revoked_at      INTEGER NOT NULL DEFAULT 0,
    rotated_at      INTEGER NOT NULL DEFAULT 0,
    models          TEXT    NOT NULL DEFAULT '', -- comma-separated glob patterns
    max_concurrency INTEGER NOT NULL DEFAULT 0 CHECK (max_concurrency >= 0),
    limits          TEXT    NOT NULL DEFAULT ''  -- comma-separated KIND=AMOUNT/WINDOW
);

INSERT INTO client_keys_new (id, name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at)
SELECT id, name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at FROM client_keys;

-- Carry the sequence over: the highest id ever handed out may belong to no
-- row left.
DELETE FROM sqlite_sequence WHERE name = 'client_keys_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'client_keys_new', max(coalesce((SELECT max(id) FROM client_keys_new), 0),
                   coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = 'client_keys'), 0));

DROP TABLE client_keys;
ALTER TABLE client_keys_new RENAME TO client_keys;

CREATE UNIQUE INDEX client_keys_live_name ON client_keys (name) WHERE revoked_at = 0;

-- +goose StatementBegin
CREATE TRIGGER client_keys_insert_change AFTER INSERT ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- Still not on last_used_at: the server updates it with every batch of usage
-- and must not make itself reload.
-- +goose StatementBegin
CREATE TRIGGER client_keys_update_change
AFTER UPDATE OF name, key_hash, expires_at, revoked_at, models, max_concurrency, limits ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER client_keys_delete_change AFTER DELETE ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

ALTER TABLE accounts ADD COLUMN limits TEXT NOT NULL DEFAULT '';
CREATE INDEX request_log_key_ts ON request_log (key_id, ts);
CREATE INDEX request_log_account_ts ON request_log (account_id, ts);

-- +goose Down
DROP INDEX request_log_account_ts;
DROP INDEX request_log_key_ts;
ALTER TABLE accounts DROP COLUMN limits;

-- Back to one key per name: a revoked key whose name was used again keeps
-- its row under the name NAME~ID.
CREATE TABLE client_keys_old (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);

INSERT INTO client_keys_old (id, name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at)
SELECT id,
       CASE WHEN EXISTS (SELECT 1 FROM client_keys o WHERE o.name = k.name AND o.id > k.id)
            THEN k.name || '~' || k.id ELSE k.name END,
       prefix, key_hash, created_at, last_used_at, expires_at, revoked_at
FROM client_keys k;

DELETE FROM sqlite_sequence WHERE name = 'client_keys_old';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'client_keys_old', max(coalesce((SELECT max(id) FROM client_keys_old), 0),
                   coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = 'client_keys'), 0));

DROP TABLE client_keys;
ALTER TABLE client_keys_old RENAME TO client_keys;

-- +goose StatementBegin
CREATE TRIGGER client_keys_insert_change AFTER INSERT ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER client_keys_update_change AFTER UPDATE OF name, key_hash, expires_at, revoked_at ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER client_keys_delete_change AFTER DELETE ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd
