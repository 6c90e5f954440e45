-- Every ledger entry names the client certificate (SHA-256, hex) its call
-- came over; empty in development mode or when none was presented.
ALTER TABLE ledger_entries ADD COLUMN client_certificate TEXT NOT NULL DEFAULT '';
