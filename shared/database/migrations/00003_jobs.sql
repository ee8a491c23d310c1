-- +goose Up
-- Batch jobs: photos grouped by a key (a store). Photos of a group are
-- processed one after another and the group stops at its first failure;
-- groups run concurrently. The recorder keeps the counters, so reading a
-- job's status never scans its photos.
CREATE TYPE job_status AS ENUM ('ongoing', 'completed', 'failed');

CREATE TABLE jobs (
    uuid            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status          job_status NOT NULL DEFAULT 'ongoing',
    kind            text NOT NULL DEFAULT 'native',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    total           integer NOT NULL,
    completed       integer NOT NULL DEFAULT 0,
    failed          integer NOT NULL DEFAULT 0,
    skipped         integer NOT NULL DEFAULT 0,
    groups_total    integer NOT NULL,
    groups_finished integer NOT NULL DEFAULT 0,
    groups_failed   integer NOT NULL DEFAULT 0,
    callback_url    text
);

CREATE TABLE job_groups (
    job_uuid     uuid NOT NULL REFERENCES jobs (uuid) ON DELETE CASCADE,
    group_key    text NOT NULL,
    status       job_status NOT NULL DEFAULT 'ongoing',
    total        integer NOT NULL,
    done         integer NOT NULL DEFAULT 0,
    error        text,
    failed_photo uuid,
    visit_time   text,
    PRIMARY KEY (job_uuid, group_key)
);

ALTER TABLE photos
    ADD COLUMN job_uuid  uuid REFERENCES jobs (uuid) ON DELETE CASCADE,
    ADD COLUMN group_key text,
    ADD COLUMN group_seq integer;
CREATE INDEX photos_job_group_seq ON photos (job_uuid, group_key, group_seq) WHERE job_uuid IS NOT NULL;

-- +goose Down
DROP INDEX photos_job_group_seq;
ALTER TABLE photos DROP COLUMN job_uuid, DROP COLUMN group_key, DROP COLUMN group_seq;
DROP TABLE job_groups;
DROP TABLE jobs;
DROP TYPE job_status;
