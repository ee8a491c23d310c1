-- +goose Up
-- Callbacks: a photo or job may name a URL that receives a signed POST when
-- it reaches a final state. The recorder writes one callbacks row, with the
-- payload, in the transaction that makes the photo or job final; its
-- dispatcher delivers it and records every try in callback_attempts.
ALTER TABLE photos ADD COLUMN callback_url text;

CREATE TABLE callbacks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind IN ('photo', 'job')),
    subject_id      uuid NOT NULL,
    -- The photo's processing attempt that finished (1 for jobs): a
    -- reprocessed photo reports again, a duplicate event never does.
    subject_attempt integer NOT NULL DEFAULT 1,
    url             text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A dispatcher holds a claimed row until locked_until; if it dies, the
    -- row is due again after that.
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (kind, subject_id, subject_attempt)
);
CREATE INDEX callbacks_due ON callbacks (next_attempt_at) WHERE status = 'pending';

CREATE TABLE callback_attempts (
    callback_id uuid NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    status_code integer,
    error       text,
    PRIMARY KEY (callback_id, attempt)
);

-- +goose Down
DROP TABLE callback_attempts;
DROP TABLE callbacks;
ALTER TABLE photos DROP COLUMN callback_url;
