-- Flat cost as the store grows, and retention of finished emails.
--
-- Delivery only ever looks at unfinished emails, so the statements of the
-- hot path (the reconciler's pages, the queue metrics) read partial indexes
-- that hold unfinished emails alone: a finished email leaves them, and
-- their size follows the backlog, not the history. Claims and outcomes
-- find their rows by primary key, whatever the statistics say.
CREATE INDEX emails_unfinished_idx ON emails (status, id)
    WHERE status IN ('queued', 'scheduled', 'sending');
CREATE INDEX emails_due_idx ON emails (next_attempt_at) WHERE status = 'queued';

-- Retention walks finished emails by when they finished (`updated_at` is
-- last written by the change that finished them); contents still kept are
-- a second, shrinking index.
ALTER TABLE emails ADD COLUMN content_purged_at timestamptz;
CREATE INDEX emails_finished_idx ON emails (updated_at)
    WHERE status IN ('sent', 'failed', 'cancelled');
CREATE INDEX emails_content_kept_idx ON emails (updated_at)
    WHERE status IN ('sent', 'failed', 'cancelled') AND content_purged_at IS NULL;

-- The queue tables change all day: autovacuum and autoanalyze look at them
-- after a small share of changes rather than the default 20% and 10%, so
-- dead rows and statistics never lag by a large multiple of the backlog.
-- The maintenance leader also analyses and vacuums these tables when their
-- statistics are stale (autovacuum may be off).
ALTER TABLE emails SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE email_attempts SET (autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.1);
ALTER TABLE email_events SET (autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.1);
ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE idempotency_keys SET (autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05);
