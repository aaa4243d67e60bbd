-- Which process of the fleet runs the fleet-wide maintenance (the rescuer,
-- the reconciler, housekeeping): one row per task, held until `expires_at`
-- and renewed by its holder; anyone may take an expired one.
CREATE TABLE maintenance_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
