-- A delivery row describes its latest try (when, how long, the answer),
-- and webhook_attempts keeps only the tries that did not deliver: an event
-- delivered at the first try costs no attempt row. The history of a
-- delivered event is its failed tries plus the delivery's latest one
-- (rows delivered before this migration have an attempt row for every try
-- and no `last_attempted_at`, so none is counted twice).
ALTER TABLE webhook_deliveries
    ADD COLUMN last_attempted_at TIMESTAMPTZ,
    ADD COLUMN last_duration_ms INTEGER;

-- Each outbox row's foreign keys cost a key-share lock on the webhook and
-- on the event (a tuple lock, written to the WAL) for every row inserted.
-- The outbox is deleted explicitly instead: with its webhook (in the same
-- transaction) and with its emails by retention (in the same statement).
-- A delivery whose webhook was deleted while its event was being written
-- is never claimed (claims join the enabled webhooks) and goes with its
-- email.
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_webhook_id_fkey,
    DROP CONSTRAINT webhook_deliveries_event_id_fkey;
