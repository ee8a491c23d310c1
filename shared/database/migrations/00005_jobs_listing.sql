-- +goose Up
-- The dashboard and GET /jobs list jobs newest first, optionally of one
-- status (the running ones): both read an index instead of the table.
CREATE INDEX jobs_created ON jobs (created_at DESC, uuid DESC);
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, uuid DESC);

-- +goose Down
DROP INDEX jobs_status_created;
DROP INDEX jobs_created;
