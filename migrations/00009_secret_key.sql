-- Encryption at rest of account secrets (accounts.api_key,
-- oauth_tokens.access_token and oauth_tokens.refresh_token). The secrets
-- themselves stay in their TEXT columns, sealed with AES-256-GCM as
-- "llmgw:v1:" + base64(nonce || ciphertext); the key lives outside the
-- database. This table holds one row: a known constant sealed with the key,
-- so that a wrong key is told apart from a damaged value, and a process can
-- tell that another one rotated the key. "llmgw db migrate" writes the row
-- and encrypts the plain-text secrets that were stored before; SQL cannot.

-- +goose Up
CREATE TABLE secret_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key_check  TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Down drops the check value but cannot decrypt the secrets: a database
-- migrated down stays unreadable to a binary from before 00009.
-- +goose Down
DROP TABLE secret_key;
