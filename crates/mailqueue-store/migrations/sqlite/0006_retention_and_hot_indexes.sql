-- Retention of finished emails (see the PostgreSQL migration). SQLite uses
-- a partial index only when the statement repeats its condition word for
-- word, so the retention statements spell these conditions exactly.
ALTER TABLE emails ADD COLUMN content_purged_at INTEGER;
CREATE INDEX emails_finished_idx ON emails (updated_at)
    WHERE status IN ('sent', 'failed', 'cancelled');
CREATE INDEX emails_content_kept_idx ON emails (updated_at)
    WHERE status IN ('sent', 'failed', 'cancelled') AND content_purged_at IS NULL;
CREATE INDEX emails_due_idx ON emails (next_attempt_at) WHERE status = 'queued';
