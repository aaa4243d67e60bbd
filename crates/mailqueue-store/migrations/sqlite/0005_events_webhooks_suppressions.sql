-- Events, webhooks and suppressions; see the PostgreSQL migration for what
-- each holds. Identifiers are UUID text, times Unix milliseconds, lists
-- (a webhook's events) JSON arrays.
CREATE TABLE email_events (
    id         TEXT PRIMARY KEY,
    email_id   TEXT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}'
) STRICT;

-- Ordered by rowid: the order events were written in (ids are random
-- within a millisecond); the index holds it after email_id.
CREATE INDEX email_events_email_idx ON email_events (email_id);

CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY,
    endpoint              TEXT NOT NULL,
    events                TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    signing_secret        TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    created_at            INTEGER NOT NULL,
    failing_since         INTEGER,
    disabled_reason       TEXT
) STRICT;

CREATE TABLE webhook_deliveries (
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES email_events (id) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_holder     TEXT,
    lease_expires_at INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
) STRICT;

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    status_code  INTEGER,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    FOREIGN KEY (webhook_id, event_id) REFERENCES webhook_deliveries (webhook_id, event_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (webhook_id, event_id, id);

CREATE TABLE suppressions (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    origin     TEXT NOT NULL CHECK (origin IN ('bounce', 'complaint', 'manual')),
    reason     TEXT,
    email_id   TEXT,
    created_at INTEGER NOT NULL
) STRICT;
