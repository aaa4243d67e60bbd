-- A delivery row describes its latest try (when, how long, the answer),
-- and webhook_attempts keeps only the tries that did not deliver: an event
-- delivered at the first try costs no attempt row. The history of a
-- delivered event is its failed tries plus the delivery's latest one
-- (rows delivered before this migration have an attempt row for every try
-- and no `last_attempted_at`, so none is counted twice). The outbox keeps
-- its foreign keys here: SQLite checks them without writing.
ALTER TABLE webhook_deliveries ADD COLUMN last_attempted_at INTEGER;
ALTER TABLE webhook_deliveries ADD COLUMN last_duration_ms INTEGER;
