-- Resend's API key permissions. Keys made before this migration keep full
-- access through the default; the application always writes the column.
ALTER TABLE api_keys
    ADD COLUMN permission text NOT NULL DEFAULT 'full_access'
    CHECK (permission IN ('full_access', 'sending_access'));
