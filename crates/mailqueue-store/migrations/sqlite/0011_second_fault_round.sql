-- Every rotated-out signing secret signs until its own grace ends: a JSON
-- array of {"secret", "until_ms"} replaces the single previous secret, so
-- a second rotation no longer cuts the first one's grace short.
ALTER TABLE webhooks ADD COLUMN previous_secrets TEXT;
UPDATE webhooks
   SET previous_secrets = json_array(json_object(
         'secret', previous_secret, 'until_ms', previous_secret_until))
 WHERE previous_secret IS NOT NULL AND previous_secret_until IS NOT NULL;
ALTER TABLE webhooks DROP COLUMN previous_secret;
ALTER TABLE webhooks DROP COLUMN previous_secret_until;

-- The request that holds an idempotency key. Its emails and its answer are
-- committed only while the key still carries its fence, so a request taken
-- over while it was stalled cannot commit a second email.
ALTER TABLE idempotency_keys ADD COLUMN fence TEXT;

-- Suppressions are compared without case: one entry per address, the
-- oldest kept, every key in lower case.
DELETE FROM suppressions
 WHERE EXISTS (
   SELECT 1 FROM suppressions AS t
    WHERE lower(t.email) = lower(suppressions.email)
      AND (t.created_at, t.id) < (suppressions.created_at, suppressions.id));
UPDATE suppressions SET email = lower(email) WHERE email <> lower(email);

-- Readiness probes write and commit this row, so a probe reaches the disk
-- the way an accepted email does.
CREATE TABLE write_probe (
    id         INTEGER PRIMARY KEY,
    written_at INTEGER NOT NULL,
    pad        BLOB NOT NULL
) STRICT;
