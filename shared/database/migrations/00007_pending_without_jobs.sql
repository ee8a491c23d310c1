-- +goose NO TRANSACTION
-- +goose Up
-- GET /photos/pending lists the photos a client may request, which leaves
-- out the photos of jobs (their groups request them in turn). This index
-- serves that list without stepping over a large job's waiting photos; it
-- replaces the index of all pending photos, which only that list used.
-- Built concurrently so that registering photos is not blocked meanwhile;
-- a failed build leaves an invalid index, which the DROP clears on a rerun.
DROP INDEX CONCURRENTLY IF EXISTS photos_pending_requestable;
CREATE INDEX CONCURRENTLY photos_pending_requestable ON photos (created_at, uuid) WHERE status = 'pending' AND job_uuid IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS photos_pending_created_at;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_pending_created_at ON photos (created_at, uuid) WHERE status = 'pending';
DROP INDEX CONCURRENTLY IF EXISTS photos_pending_requestable;
