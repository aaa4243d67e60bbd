-- Reports that arrived at the bounce domain and could not be read as a
-- delivery status notification or a complaint about an email sent: kept
-- whole for an operator (never bounced back).
CREATE TABLE unclassified_reports (
    id          UUID PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    mail_from   TEXT NOT NULL,
    rcpt_to     TEXT NOT NULL,
    email_id    UUID,
    reason      TEXT NOT NULL,
    message     BYTEA NOT NULL
);
