-- Which process runs the maintenance (see the PostgreSQL migration). The
-- embedded mode has one process, but the same statements serve both.
CREATE TABLE maintenance_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
