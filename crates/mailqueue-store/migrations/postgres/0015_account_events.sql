-- Events about the account rather than one email (domain.created, …),
-- stored with the payload their webhooks receive. Their deliveries share
-- webhook_deliveries with the email events (it has no foreign keys here,
-- see 0010); retention deletes both together.
CREATE TABLE account_events (
    id         UUID PRIMARY KEY,
    type       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    payload    TEXT NOT NULL
);

CREATE INDEX account_events_created_idx ON account_events (created_at);
