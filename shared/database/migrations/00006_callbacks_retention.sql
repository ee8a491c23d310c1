-- +goose NO TRANSACTION
-- +goose Up
-- The recorder purges final callbacks (and, by the cascade, their
-- attempts) CALLBACK_RETENTION after they became final (finished_at). This
-- index lets each bounded purge batch find them without scanning the table.
-- It only covers final rows, and finished_at changes only when a row
-- becomes final, so claiming pending rows stays as cheap as before.
-- Built concurrently: callbacks grew without bound before this migration,
-- and a plain CREATE INDEX would block the writes that queue callbacks
-- (the recorder's final-state transactions) for the whole build. A failed
-- concurrent build leaves an invalid index behind; the DROP clears it when
-- the migration runs again.
DROP INDEX CONCURRENTLY IF EXISTS callbacks_final;
CREATE INDEX CONCURRENTLY callbacks_final ON callbacks (finished_at) WHERE status IN ('delivered', 'failed');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS callbacks_final;
