-- Limits scoped to a model family. Subscription windows such as 7d_oi and
-- 7d-sonnet bind one model family, and a 429 that rejects only such a window
-- cools the account for that family alone. Times are INTEGER unix
-- milliseconds, 0 meaning "never" or "unknown", as in 00001.

-- +goose Up

-- The model-scoped windows an OAuth account's responses last reported, one
-- row per window name and model family (7d_oi is recorded under the family
-- of the request that carried it). Written with account_windows, through the
-- usage writer, and like it without a change-counter trigger: the server
-- keeps its own copy in memory. Rows are replaced whenever account_windows'
-- row is; utilization is a fraction 0..1.
CREATE TABLE account_scoped_windows (
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    family      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT '',
    utilization REAL    NOT NULL DEFAULT 0,
    reset       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, name, family)
);

-- Which window binds now (anthropic-ratelimit-unified-representative-claim:
-- five_hour, seven_day, ...); routing prefers the account with the most room
-- in it.
ALTER TABLE account_windows ADD COLUMN representative_claim TEXT NOT NULL DEFAULT '';

-- Cooldowns per model family, part of the account's state (written with
-- status and cooldown_until, under the same state_at rule): a JSON object
-- of family to unix milliseconds, '' for none.
ALTER TABLE accounts ADD COLUMN family_cooldowns TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE accounts DROP COLUMN family_cooldowns;
ALTER TABLE account_windows DROP COLUMN representative_claim;
DROP TABLE account_scoped_windows;
