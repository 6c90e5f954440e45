-- The W3C trace id (32 lowercase hex digits) of the call's `traceparent`,
-- beside its request id, so that one disclosure can be followed across
-- agencies' systems; empty when the caller sent none (or an invalid one).
-- Part of an entry's canonical encoding when not empty (version 4).
ALTER TABLE ledger_entries ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
CREATE INDEX ledger_entries_trace ON ledger_entries (trace_id, idx) WHERE trace_id <> '';
