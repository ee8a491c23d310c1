-- +goose Up
-- Where a photo's message waits when a service dead-lettered it; cleared by
-- the next event that moves the photo on (after a replay).
ALTER TABLE photos
    ADD COLUMN dead_letter_service text,
    ADD COLUMN dead_letter_queue   text,
    ADD COLUMN dead_letter_reason  text,
    ADD COLUMN dead_lettered_at    timestamptz;

-- +goose Down
ALTER TABLE photos
    DROP COLUMN dead_letter_service,
    DROP COLUMN dead_letter_queue,
    DROP COLUMN dead_letter_reason,
    DROP COLUMN dead_lettered_at;
