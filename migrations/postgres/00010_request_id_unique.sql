-- One request log row per request id: SQLite's 00010, in the same SQL.
-- Read it for why duplicates are deleted first and why rows without a
-- request id are left out of the index.

-- +goose Up
DELETE FROM request_log WHERE request_id <> '' AND EXISTS (
    SELECT 1 FROM request_log AS earlier
    WHERE earlier.request_id = request_log.request_id AND earlier.id < request_log.id);
DROP INDEX request_log_request_id;
CREATE UNIQUE INDEX request_log_request_id ON request_log (request_id) WHERE request_id <> '';

-- +goose Down
DROP INDEX request_log_request_id;
CREATE INDEX request_log_request_id ON request_log (request_id);
