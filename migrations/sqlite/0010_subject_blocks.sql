-- Person matching finds candidates through blocking keys (see
-- src/matching/blocking.rs), a few per subject, computed from the
-- demographics when the subject is registered; subjects registered before
-- this table existed are given theirs when the service starts (the `meta`
-- key `subject_blocks` records the version of the keys held).
CREATE TABLE subject_blocks (
    key        TEXT NOT NULL,
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    PRIMARY KEY (key, subject_id)
) WITHOUT ROWID;

-- The exact family-name and birth-date lookups the keys replace.
DROP INDEX subjects_family_name_key;
DROP INDEX subjects_birth_date;
ALTER TABLE subjects DROP COLUMN family_name_key;
