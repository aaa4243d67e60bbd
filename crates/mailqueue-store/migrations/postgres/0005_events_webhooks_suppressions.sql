-- Every transition of an email, written in the transaction of the status
-- change that causes it (so a crash can neither lose an event nor invent
-- one). `type` is Resend's event name (`email.delivered`, …); `data` holds
-- what the event adds to the email: the recipients it concerns (`to`) and
-- `bounce`, `failed` or `suppressed` details.
CREATE TABLE email_events (
    id         UUID PRIMARY KEY,
    email_id   UUID NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    data       JSONB NOT NULL DEFAULT '{}',
    -- The order events were written in (ids are random within a millisecond).
    seq        BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX email_events_email_idx ON email_events (email_id, seq);

CREATE TABLE webhooks (
    id                    UUID PRIMARY KEY,
    endpoint              TEXT NOT NULL,
    events                TEXT[] NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    -- `whsec_` + base64 of the key; after a rotation the previous secret
    -- keeps signing alongside the new one until `previous_secret_until`.
    signing_secret        TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    -- Since when every delivery has failed (NULL while deliveries succeed),
    -- and why the webhook was disabled, if it was.
    failing_since         TIMESTAMPTZ,
    disabled_reason       TEXT
);

-- The outbox: one row per event and webhook subscribed to it, written with
-- the event. Delivered at least once by the workers, with retries.
CREATE TABLE webhook_deliveries (
    webhook_id       UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         UUID NOT NULL REFERENCES email_events (id) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    lease_holder     TEXT,
    lease_expires_at TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    webhook_id   UUID NOT NULL,
    event_id     UUID NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    status_code  INTEGER,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    FOREIGN KEY (webhook_id, event_id) REFERENCES webhook_deliveries (webhook_id, event_id) ON DELETE CASCADE
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (webhook_id, event_id, id);

-- Addresses not to send to: the local part as given, the domain in lower
-- case (see `mailqueue_core::suppression`).
CREATE TABLE suppressions (
    id         UUID PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    origin     TEXT NOT NULL CHECK (origin IN ('bounce', 'complaint', 'manual')),
    reason     TEXT,
    email_id   UUID,
    created_at TIMESTAMPTZ NOT NULL
);
