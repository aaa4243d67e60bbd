-- A claim now bounds each webhook by what the claiming process holds (it
-- passes its own counts), not by counting leases in the outbox, so no
-- statement reads webhook_deliveries_leased_idx. Without it no index
-- covers the lease columns, and taking or renewing a lease can be a
-- heap-only update: no new index entries, no dead ones for the next claim
-- to cross. Pages keep room for those updates.
DROP INDEX webhook_deliveries_leased_idx;
ALTER TABLE webhook_deliveries SET (fillfactor = 80);
