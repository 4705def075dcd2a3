-- Session affinity: how each request's session was routed (new, followed,
-- or moved with the reason), so that "llmgw usage explain" can say whether
-- a request followed its conversation's account.

-- +goose Up
ALTER TABLE request_log ADD COLUMN affinity TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE request_log DROP COLUMN affinity;
