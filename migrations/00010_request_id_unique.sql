-- One request log row per request id. The usage writer inserts with ON
-- CONFLICT DO NOTHING on this index, so a batch written again after a
-- COMMIT whose outcome was unknown (the connection dropped as PostgreSQL
-- committed it) adds only the rows that did not commit, and folds only
-- those into account_stats.
--
-- Rows already written twice that way are deleted first, keeping the first
-- row of each request id. That loses nothing: llmgw has drawn every request
-- id from crypto/rand (96 bits) since its first version, so two rows with
-- one id are one request written twice, the same but for their row id.
-- account_stats keep what the second copies added; they are running totals
-- that cannot tell which additions were copies.
--
-- Rows without a request id (llmgw serve writes none) cannot be told apart,
-- so the index leaves them out and they are always inserted. It replaces
-- the plain index of 00003; a lookup by request id says request_id <> ''
-- too, so that the planner may use this partial index.

-- +goose Up
DELETE FROM request_log WHERE request_id <> '' AND EXISTS (
    SELECT 1 FROM request_log AS earlier
    WHERE earlier.request_id = request_log.request_id AND earlier.id < request_log.id);
DROP INDEX request_log_request_id;
CREATE UNIQUE INDEX request_log_request_id ON request_log (request_id) WHERE request_id <> '';

-- +goose Down
DROP INDEX request_log_request_id;
CREATE INDEX request_log_request_id ON request_log (request_id);
