-- An agency's own rate limit (calls a second, and the burst allowed), set
-- by the operator; NULL: the configured default.
ALTER TABLE agencies ADD COLUMN rate_per_second INTEGER;
ALTER TABLE agencies ADD COLUMN rate_burst INTEGER;
