-- What each running "llmgw serve" is doing now, for "llmgw status" and the
-- in-flight column of "llmgw account list": one row per server process,
-- refreshed every second while it runs and deleted on a clean shutdown. A
-- row that stopped being refreshed belongs to a server that is gone.

-- +goose Up
CREATE TABLE server_status (
    id         TEXT PRIMARY KEY,  -- the server's random instance id
    started_at INTEGER NOT NULL,  -- unix ms
    updated_at INTEGER NOT NULL,  -- unix ms of the last refresh
    doc        TEXT NOT NULL      -- JSON written and read by the cli package
);

-- +goose Down
DROP TABLE server_status;
