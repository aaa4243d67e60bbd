-- A claim now bounds each webhook by what the claiming process holds (it
-- passes its own counts), not by counting leases in the outbox, so no
-- statement reads webhook_deliveries_leased_idx, and taking a lease no
-- longer writes to it.
DROP INDEX webhook_deliveries_leased_idx;
