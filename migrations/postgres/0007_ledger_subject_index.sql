-- Entries are found by subject through ledger_subjects (which also holds
-- the subjects a search disclosed); this index was never used, and every
-- batch of the ledger paid for a page of it.
DROP INDEX ledger_entries_subject;
