-- mailqueue schema, SQLite. Same tables as PostgreSQL; identifiers are
-- hyphenated UUID text (UUIDv7 text sorts by creation time) and times are
-- Unix milliseconds.

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_prefix TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;

CREATE TABLE emails (
    id               TEXT PRIMARY KEY,
    api_key_id       TEXT,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
    priority         INTEGER NOT NULL DEFAULT 1,
    message_id       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    scheduled_at     INTEGER,
    next_attempt_at  INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    last_attempt_at  INTEGER,
    lease_holder     TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    last_smtp_reply  TEXT,
    sent_at          INTEGER
) STRICT;

CREATE INDEX emails_status_id_idx ON emails (status, id);
CREATE INDEX emails_lease_idx ON emails (lease_expires_at) WHERE status = 'sending';

-- The email's fields as JSON, written once. Kept apart from `emails` so
-- the status updates of delivery rewrite a small row, not the whole email.
CREATE TABLE email_contents (
    email_id TEXT PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE,
    content  TEXT NOT NULL
) STRICT;

CREATE TABLE email_attachments (
    email_id     TEXT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_id   TEXT,
    content      BLOB NOT NULL,
    PRIMARY KEY (email_id, position)
) STRICT;

CREATE TABLE email_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email_id    TEXT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('sent', 'transient_failure', 'permanent_failure', 'lease_expired')),
    smtp_code   INTEGER,
    detail      TEXT NOT NULL
) STRICT;

CREATE INDEX email_attempts_email_idx ON email_attempts (email_id, id);

CREATE TABLE idempotency_keys (
    api_key_id      TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
) STRICT;

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
