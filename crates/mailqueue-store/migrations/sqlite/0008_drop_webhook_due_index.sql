-- Claims read each webhook's due deliveries from webhook_deliveries_claim_idx
-- (0007); the index on the due time alone served no statement and cost a
-- write on every insert and every change of a delivery.
DROP INDEX webhook_deliveries_due_idx;
