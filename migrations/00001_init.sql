-- The initial llmgw schema. Times are INTEGER unix milliseconds, 0 meaning
-- "never" or "unknown", so that comparisons and max() work without NULLs.

-- +goose Up

-- AUTOINCREMENT so that an id is never reused: request_log keeps the ids of
-- removed accounts and keys, and a new account must not inherit their history.
CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    type            TEXT    NOT NULL CHECK (type IN ('api_key', 'oauth')),
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'error')),
    status_reason   TEXT    NOT NULL DEFAULT '',
    api_key         TEXT    NOT NULL DEFAULT '',
    base_url        TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    weight          INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1),
    max_concurrency INTEGER NOT NULL DEFAULT 0 CHECK (max_concurrency >= 0),
    models          TEXT    NOT NULL DEFAULT '', -- comma-separated glob patterns
    cooldown_until  INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    state_at        INTEGER NOT NULL DEFAULT 0,  -- when status/cooldown was decided
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- generation and lease_* let several processes refresh a token with a
-- compare-and-swap instead of racing each other.
CREATE TABLE oauth_tokens (
    account_id        INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    access_token      TEXT    NOT NULL DEFAULT '',
    refresh_token     TEXT    NOT NULL DEFAULT '',
    expires_at        INTEGER NOT NULL DEFAULT 0,
    scopes            TEXT    NOT NULL DEFAULT '',
    email             TEXT    NOT NULL DEFAULT '',
    account_uuid      TEXT    NOT NULL DEFAULT '',
    organization_uuid TEXT    NOT NULL DEFAULT '',
    generation        INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT    NOT NULL DEFAULT '',
    lease_until       INTEGER NOT NULL DEFAULT 0,
    last_refresh_at   INTEGER NOT NULL DEFAULT 0,
    refresh_error     TEXT    NOT NULL DEFAULT '',
    updated_at        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE client_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);

-- Running totals per account, folded in by the usage writer so that showing
-- them never scans request_log.
CREATE TABLE account_stats (
    account_id      INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    requests        INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    last_used_at    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_error_at   INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum  INTEGER NOT NULL DEFAULT 0,
    latency_samples INTEGER NOT NULL DEFAULT 0
);

-- The ledger. key_id and account_id are deliberately not foreign keys: rows
-- outlive the accounts and keys they name, and the names are copied for that
-- reason. 0 means none (a static key from the config file, or no account).
CREATE TABLE request_log (
    id                    INTEGER PRIMARY KEY,
    ts                    INTEGER NOT NULL,
    request_id            TEXT    NOT NULL DEFAULT '',
    key_id                INTEGER NOT NULL DEFAULT 0,
    key_name              TEXT    NOT NULL DEFAULT '',
    account_id            INTEGER NOT NULL DEFAULT 0,
    account_name          TEXT    NOT NULL DEFAULT '',
    model                 TEXT    NOT NULL DEFAULT '',
    dialect               TEXT    NOT NULL DEFAULT '',
    stream                INTEGER NOT NULL DEFAULT 0,
    status                INTEGER NOT NULL DEFAULT 0,
    error_type            TEXT    NOT NULL DEFAULT '',
    attempts              INTEGER NOT NULL DEFAULT 0,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_write_5m_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    ttfb_ms               INTEGER NOT NULL DEFAULT 0,
    duration_ms           INTEGER NOT NULL DEFAULT 0,
    ended_early           INTEGER NOT NULL DEFAULT 0,
    upstream_request_id   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX request_log_ts ON request_log (ts);

-- A running server polls this one row to notice CLI writes. PRAGMA
-- data_version cannot do it: it is per connection and also moves with the
-- server's own writes, such as last_used_at.
CREATE TABLE change_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO change_counter (id, n) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER accounts_insert_change AFTER INSERT ON accounts
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER accounts_update_change AFTER UPDATE ON accounts
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER accounts_delete_change AFTER DELETE ON accounts
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER oauth_tokens_insert_change AFTER INSERT ON oauth_tokens
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER oauth_tokens_update_change AFTER UPDATE ON oauth_tokens
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER oauth_tokens_delete_change AFTER DELETE ON oauth_tokens
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER client_keys_insert_change AFTER INSERT ON client_keys
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- Not on last_used_at: the server updates it with every batch of usage and
-- must not make itself reload.
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

-- +goose Down
DROP TABLE change_counter;
DROP TABLE request_log;
DROP TABLE account_stats;
DROP TABLE client_keys;
DROP TABLE oauth_tokens;
DROP TABLE accounts;
