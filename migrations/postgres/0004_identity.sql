-- Every ledger entry names the client certificate (SHA-256, hex) its call
-- came over; empty in development mode or when none was presented.
-- Auditors list the calls made with one certificate.
ALTER TABLE ledger_entries ADD COLUMN client_certificate TEXT NOT NULL DEFAULT '';
CREATE INDEX ledger_entries_client_certificate ON ledger_entries (client_certificate, idx);

-- Advanced with every change to certificate identities and token issuers,
-- in the same transaction: how a process knows its view of them is stale.
ALTER TABLE policy_state ADD COLUMN registry_version BIGINT NOT NULL DEFAULT 0;
