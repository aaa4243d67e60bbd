-- A webhook delivery claim reads, per enabled webhook, only the oldest due
-- pending deliveries it may take, and counts only the ones under lease:
-- its cost follows what it takes, not the outbox's length.
CREATE INDEX webhook_deliveries_claim_idx
    ON webhook_deliveries (webhook_id, next_attempt_at, event_id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_leased_idx
    ON webhook_deliveries (webhook_id, lease_expires_at)
    WHERE status = 'pending' AND lease_expires_at IS NOT NULL;
