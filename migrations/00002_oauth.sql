-- OAuth accounts: owner-key binding, subscription windows, and a narrower
-- change trigger on oauth_tokens. Times are INTEGER unix milliseconds, 0
-- meaning "never" or "unknown", as in 00001.

-- +goose Up

-- The client keys (by name) an account is bound to. An account with no rows
-- here serves every key. Names rather than ids: a binding may name a static
-- key from the config file, which has no row in client_keys.
CREATE TABLE account_owners (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_name   TEXT    NOT NULL,
    PRIMARY KEY (account_id, key_name)
);

-- +goose StatementBegin
CREATE TRIGGER account_owners_insert_change AFTER INSERT ON account_owners
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER account_owners_delete_change AFTER DELETE ON account_owners
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- The subscription windows an OAuth account's responses last reported
-- (anthropic-ratelimit-unified-*). The server writes them often, through the
-- usage writer, so they deliberately have no change-counter trigger: the
-- server keeps its own copy in memory and must not make itself reload.
-- Utilization is a fraction 0..1; *_reset is when that window resets.
CREATE TABLE account_windows (
    account_id     INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    status         TEXT    NOT NULL DEFAULT '',
    h5_status      TEXT    NOT NULL DEFAULT '',
    h5_utilization REAL    NOT NULL DEFAULT 0,
    h5_reset       INTEGER NOT NULL DEFAULT 0,
    d7_status      TEXT    NOT NULL DEFAULT '',
    d7_utilization REAL    NOT NULL DEFAULT 0,
    d7_reset       INTEGER NOT NULL DEFAULT 0,
    observed_at    INTEGER NOT NULL DEFAULT 0
);

-- 00001 bumps the change counter on every update of oauth_tokens, which
-- includes taking and releasing a refresh lease and recording a transient
-- refresh error: each would make the running server reload for nothing.
-- Only a change of the tokens themselves (which always moves generation)
-- matters to it.
DROP TRIGGER oauth_tokens_update_change;

-- +goose StatementBegin
CREATE TRIGGER oauth_tokens_update_change AFTER UPDATE OF access_token, refresh_token, expires_at, generation ON oauth_tokens
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER oauth_tokens_update_change;

-- +goose StatementBegin
CREATE TRIGGER oauth_tokens_update_change AFTER UPDATE ON oauth_tokens
BEGIN
    UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

DROP TABLE account_windows;
DROP TABLE account_owners;
