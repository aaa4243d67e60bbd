-- mailqueue schema, PostgreSQL. The emails table is the source of truth;
-- every queue can be rebuilt from the rows whose status is queued or scheduled.

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    token_prefix text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

CREATE TABLE emails (
    id               uuid PRIMARY KEY,
    api_key_id       uuid,
    status           text NOT NULL CHECK (status IN ('queued', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
    priority         smallint NOT NULL DEFAULT 1,
    message_id       text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    scheduled_at     timestamptz,
    -- When the next attempt is due; set while queued or scheduled.
    next_attempt_at  timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    lease_holder     text,
    lease_expires_at timestamptz,
    last_error       text,
    last_smtp_reply  text,
    sent_at          timestamptz
);

CREATE INDEX emails_status_id_idx ON emails (status, id);
CREATE INDEX emails_lease_idx ON emails (lease_expires_at) WHERE status = 'sending';

-- The email's fields as JSON, written once. Kept apart from `emails` so
-- the status updates of delivery rewrite a small row, not the whole email.
CREATE TABLE email_contents (
    email_id uuid PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE,
    content  jsonb NOT NULL
);

CREATE TABLE email_attachments (
    email_id     uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    position     smallint NOT NULL,
    filename     text NOT NULL,
    content_type text NOT NULL,
    content_id   text,
    content      bytea NOT NULL,
    PRIMARY KEY (email_id, position)
);

CREATE TABLE email_attempts (
    id          bigserial PRIMARY KEY,
    email_id    uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('sent', 'transient_failure', 'permanent_failure', 'lease_expired')),
    smtp_code   integer,
    detail      text NOT NULL
);

CREATE INDEX email_attempts_email_idx ON email_attempts (email_id, id);

CREATE TABLE idempotency_keys (
    api_key_id      uuid NOT NULL,
    key             text NOT NULL,
    request_hash    bytea NOT NULL,
    -- NULL while the first request is in progress.
    response_status smallint,
    response_body   text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
