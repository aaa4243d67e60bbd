-- Reports that arrived at the bounce domain and could not be read as a
-- delivery status notification or a complaint about an email sent: kept
-- whole for an operator (never bounced back).
CREATE TABLE unclassified_reports (
    id          TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    mail_from   TEXT NOT NULL,
    rcpt_to     TEXT NOT NULL,
    email_id    TEXT,
    reason      TEXT NOT NULL,
    message     BLOB NOT NULL
) STRICT;
