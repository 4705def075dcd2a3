-- The request log keeps each request's attempts (which account answered
-- what, and how fast) and the error message the client got, so that
-- "llmgw usage explain REQUEST_ID" can say why a request landed where it
-- did or was refused.

-- +goose Up
ALTER TABLE request_log ADD COLUMN attempt_detail TEXT NOT NULL DEFAULT '';
ALTER TABLE request_log ADD COLUMN error_message TEXT NOT NULL DEFAULT '';
CREATE INDEX request_log_request_id ON request_log (request_id);

-- +goose Down
DROP INDEX request_log_request_id;
ALTER TABLE request_log DROP COLUMN error_message;
ALTER TABLE request_log DROP COLUMN attempt_detail;
