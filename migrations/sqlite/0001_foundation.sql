-- Agencies, the catalogue, subjects, versioned records and the audit
-- ledger with its Merkle tree. Times are microseconds since the Unix epoch (UTC).

CREATE TABLE agencies (
    code         TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    create_time  INTEGER NOT NULL,
    update_time  INTEGER NOT NULL,
    etag         TEXT NOT NULL
);

CREATE TABLE record_classes (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL,
    fields       TEXT NOT NULL, -- JSON array of field specs
    create_time  INTEGER NOT NULL
);

CREATE TABLE subjects (
    id              TEXT PRIMARY KEY,
    given_name      TEXT NOT NULL,
    family_name     TEXT NOT NULL,
    family_name_key TEXT NOT NULL, -- lower-cased, for matching
    birth_date      TEXT NOT NULL,
    gender          TEXT NOT NULL,
    postcode        TEXT NOT NULL, -- '' when not known
    uprn            TEXT NOT NULL, -- '' when not known
    registered_by   TEXT NOT NULL REFERENCES agencies (code),
    create_time     INTEGER NOT NULL
);
CREATE INDEX subjects_family_name_key ON subjects (family_name_key);
CREATE INDEX subjects_birth_date ON subjects (birth_date);

CREATE TABLE subject_identifiers (
    system     TEXT NOT NULL,
    assigner   TEXT NOT NULL, -- '' for national systems
    value      TEXT NOT NULL,
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    linked_by  TEXT NOT NULL REFERENCES agencies (code),
    link_time  INTEGER NOT NULL,
    PRIMARY KEY (system, assigner, value)
);
CREATE INDEX subject_identifiers_subject ON subject_identifiers (subject_id);

CREATE TABLE records (
    id           TEXT PRIMARY KEY,
    subject_id   TEXT NOT NULL REFERENCES subjects (id),
    record_class TEXT NOT NULL REFERENCES record_classes (id),
    controller   TEXT NOT NULL REFERENCES agencies (code),
    version      INTEGER NOT NULL,
    etag         TEXT NOT NULL,
    create_time  INTEGER NOT NULL,
    update_time  INTEGER NOT NULL
);
CREATE INDEX records_subject ON records (subject_id, controller, update_time);

CREATE TABLE record_versions (
    record_id  TEXT NOT NULL REFERENCES records (id),
    version    INTEGER NOT NULL,
    fields     TEXT NOT NULL, -- JSON object of typed values
    etag       TEXT NOT NULL,
    write_time INTEGER NOT NULL,
    written_by TEXT NOT NULL,
    PRIMARY KEY (record_id, version)
);

CREATE TRIGGER record_versions_append_only_update BEFORE UPDATE ON record_versions
BEGIN SELECT RAISE(ABORT, 'record versions are append-only'); END;
CREATE TRIGGER record_versions_append_only_delete BEFORE DELETE ON record_versions
BEGIN SELECT RAISE(ABORT, 'record versions are append-only'); END;

CREATE TABLE ledger_entries (
    idx           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    time          INTEGER NOT NULL,
    request_id    TEXT NOT NULL,
    agency        TEXT NOT NULL,
    principal     TEXT NOT NULL,
    roles         TEXT NOT NULL, -- JSON array
    action        TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    records       TEXT NOT NULL, -- JSON array
    fields        TEXT NOT NULL, -- JSON array
    outcome       TEXT NOT NULL,
    reason_code   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    controller    TEXT NOT NULL
);
CREATE INDEX ledger_entries_subject ON ledger_entries (subject, idx);
CREATE INDEX ledger_entries_agency ON ledger_entries (agency, idx);
CREATE INDEX ledger_entries_controller ON ledger_entries (controller, idx);
CREATE INDEX ledger_entries_time ON ledger_entries (time);

CREATE TRIGGER ledger_entries_append_only_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_entries_append_only_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Which subjects each entry concerns: its subject, and every subject a
-- search disclosed (listed in its records). Derived from the entries, for
-- subject access reports.
CREATE TABLE ledger_subjects (
    subject TEXT NOT NULL,
    idx     INTEGER NOT NULL,
    PRIMARY KEY (subject, idx)
) WITHOUT ROWID;

CREATE TRIGGER ledger_subjects_append_only_update BEFORE UPDATE ON ledger_subjects
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_subjects_append_only_delete BEFORE DELETE ON ledger_subjects
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- The Merkle tree over the entries (RFC 6962): the hash of every perfect
-- subtree, 2^level leaves from leaf idx * 2^level, stored once it is
-- complete. Level 0 holds the leaf hashes.
CREATE TABLE ledger_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TRIGGER ledger_nodes_append_only_update BEFORE UPDATE ON ledger_nodes
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_nodes_append_only_delete BEFORE DELETE ON ledger_nodes
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- The head of the tree: one row, locked by every append.
CREATE TABLE ledger_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      INTEGER NOT NULL,
    root_hash BLOB NOT NULL
);
-- The root of the empty tree is SHA-256 of nothing.
INSERT INTO ledger_head (id, size, root_hash)
VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');

-- Signed checkpoints: the tree head at a size, as a signed note.
CREATE TABLE ledger_checkpoints (
    size      INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    time      INTEGER NOT NULL,
    note      TEXT NOT NULL
);

CREATE TRIGGER ledger_checkpoints_append_only_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_checkpoints_append_only_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Alerts for an agency's IG lead; acknowledgement columns are NULL until
-- someone looks at it.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    recipient   TEXT NOT NULL REFERENCES agencies (code),
    agency      TEXT NOT NULL,
    principal   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    entry_index INTEGER NOT NULL,
    raise_time  INTEGER NOT NULL,
    ack_by      TEXT,
    ack_time    INTEGER,
    ack_note    TEXT
);
CREATE INDEX alerts_recipient ON alerts (recipient, raise_time, id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
