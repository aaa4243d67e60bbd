-- Sending domains (Resend's /v1/domains). A domain is one row, written
-- whole under an optimistic revision: its DKIM keys (private keys sealed
-- under MAILQUEUE_SECRET_KEY) and its records' statuses are JSON text.
CREATE TABLE domains (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,
    region              TEXT NOT NULL,
    custom_return_path  TEXT NOT NULL,
    -- open_tracking, click_tracking, tls, tracking_subdomain
    settings            TEXT NOT NULL,
    dkim_keys           TEXT NOT NULL,
    records             TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    verify_requested_at INTEGER,
    checked_at          INTEGER,
    next_check_at       INTEGER,
    revision            INTEGER NOT NULL
) STRICT;

CREATE INDEX domains_next_check_idx ON domains (next_check_at) WHERE next_check_at IS NOT NULL;

-- A sending_access key may be limited to one domain's senders.
ALTER TABLE api_keys ADD COLUMN domain_id TEXT;
