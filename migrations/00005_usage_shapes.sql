-- The request log keeps the usage fields Anthropic added in 2026: the speed
-- a request was served at (fast mode is billed at a premium), where it ran
-- (inference_geo), and its sampling steps (usage.iterations, as a JSON array
-- of {type, model, input_tokens, ...}), each billed at its own model. Empty
-- means the upstream did not report it; rows from before keep ''.

-- +goose Up
ALTER TABLE request_log ADD COLUMN speed TEXT NOT NULL DEFAULT '';
ALTER TABLE request_log ADD COLUMN inference_geo TEXT NOT NULL DEFAULT '';
ALTER TABLE request_log ADD COLUMN iterations TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE request_log DROP COLUMN iterations;
ALTER TABLE request_log DROP COLUMN inference_geo;
ALTER TABLE request_log DROP COLUMN speed;
