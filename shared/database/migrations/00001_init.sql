-- +goose Up
CREATE TYPE photo_status AS ENUM ('pending', 'processing', 'completed', 'failed');

CREATE TABLE photos (
    uuid              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url               text NOT NULL DEFAULT '',
    status            photo_status NOT NULL DEFAULT 'pending',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- attempt: explicit processing requests so far (set by ingest-api);
    -- status_attempt: the attempt the status belongs to (set by the recorder).
    attempt           integer NOT NULL DEFAULT 0,
    status_attempt    integer NOT NULL DEFAULT 0,
    renditions        jsonb NOT NULL DEFAULT '["thumb"]',
    filename          text NOT NULL DEFAULT '',
    original_key      text,
    content_type      text,
    bytes             bigint,
    width             integer,
    height            integer,
    pages             integer,
    failure_stage     text,
    failure_code      text,
    failure_message   text,
    failure_retryable boolean,
    completed_at      timestamptz
);
CREATE INDEX photos_pending_created_at ON photos (created_at, uuid) WHERE status = 'pending';
CREATE INDEX photos_status_created_at ON photos (status, created_at);

CREATE TABLE photo_thumbnails (
    uuid       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    photo_uuid uuid NOT NULL REFERENCES photos (uuid) ON DELETE CASCADE,
    rendition  text NOT NULL DEFAULT 'thumb',
    page       integer NOT NULL DEFAULT 0,
    width      smallint NOT NULL,
    height     smallint NOT NULL,
    url        text NOT NULL,
    format     text NOT NULL DEFAULT '',
    bytes      bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT photo_thumbnails_photo_rendition_page UNIQUE (photo_uuid, rendition, page)
);

-- The transactional outbox of ingest-api: events written with the request
-- that caused them and published by a relay once committed.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    message_id text NOT NULL,
    payload    bytea NOT NULL,
    metadata   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE photo_thumbnails;
DROP TABLE photos;
DROP TYPE photo_status;
