-- A claim no longer counts an attempt. `claims` numbers the claims of an
-- email and fences what each claim's worker writes; `attempts` counts the
-- attempts that ended (an outcome, or a lease that expired), so a claim
-- given back unsent (a deferral) has nothing to undo.
ALTER TABLE emails ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
UPDATE emails SET claims = attempts;
-- An email being sent counted its attempt when it was claimed; it now
-- counts it when the attempt ends.
UPDATE emails SET attempts = attempts - 1 WHERE status = 'sending' AND attempts > 0;
