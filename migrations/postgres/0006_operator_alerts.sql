-- Alerts about calls refused before any agency was established go to the
-- operator, which is not a member agency: an alert's recipient is an
-- agency's code or the operator's name.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_recipient_fkey;
