-- Events about the account rather than one email (domain.created, …),
-- stored with the payload their webhooks receive. Their deliveries share
-- webhook_deliveries with the email events.
CREATE TABLE account_events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload    TEXT NOT NULL
) STRICT;

CREATE INDEX account_events_created_idx ON account_events (created_at);

-- An outbox row's event is an email event or an account event, so the
-- outbox loses its foreign key to email_events (as on PostgreSQL, 0010):
-- rebuilt, with its attempts (whose foreign key names it). A trigger on
-- each kind of event deletes the deliveries with it, as the cascade did.
CREATE TABLE webhook_deliveries_new (
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    lease_holder      TEXT,
    lease_expires_at  INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    last_attempted_at INTEGER,
    last_duration_ms  INTEGER,
    PRIMARY KEY (webhook_id, event_id)
) STRICT;

INSERT INTO webhook_deliveries_new (webhook_id, event_id, status, attempts, next_attempt_at,
    lease_holder, lease_expires_at, last_status_code, last_error, created_at,
    last_attempted_at, last_duration_ms)
SELECT webhook_id, event_id, status, attempts, next_attempt_at, lease_holder, lease_expires_at,
    last_status_code, last_error, created_at, last_attempted_at, last_duration_ms
FROM webhook_deliveries;

CREATE TABLE webhook_attempts_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    status_code  INTEGER,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    FOREIGN KEY (webhook_id, event_id)
        REFERENCES webhook_deliveries_new (webhook_id, event_id) ON DELETE CASCADE
) STRICT;

INSERT INTO webhook_attempts_new (id, webhook_id, event_id, attempted_at, status_code,
    duration_ms, error)
SELECT id, webhook_id, event_id, attempted_at, status_code, duration_ms, error
FROM webhook_attempts;

DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
ALTER TABLE webhook_attempts_new RENAME TO webhook_attempts;

CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_claim_idx
    ON webhook_deliveries (webhook_id, next_attempt_at, event_id) WHERE status = 'pending';
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (webhook_id, event_id, id);

CREATE TRIGGER email_events_outbox_gone AFTER DELETE ON email_events
BEGIN
    DELETE FROM webhook_deliveries WHERE event_id = OLD.id;
END;

CREATE TRIGGER account_events_outbox_gone AFTER DELETE ON account_events
BEGIN
    DELETE FROM webhook_deliveries WHERE event_id = OLD.id;
END;
