-- Data sharing agreements (one row per version), subjects' consents and
-- objections, and the counters that tell every server process when what it
-- holds in memory for decisions is stale.

CREATE TABLE agreements (
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    provider    TEXT NOT NULL REFERENCES agencies (code),
    terms       TEXT NOT NULL, -- JSON: consumers and grants, classes, purposes, bases, period
    status      TEXT NOT NULL, -- draft, active, suspended or superseded
    approvals   TEXT NOT NULL, -- JSON array
    suspension  TEXT,          -- JSON, the last suspension
    created_by  TEXT NOT NULL REFERENCES agencies (code),
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    revision    INTEGER NOT NULL, -- lifecycle steps of this version
    PRIMARY KEY (id, version)
);
CREATE INDEX agreements_status ON agreements (status);

-- Every party of every version, for listing an agency's agreements.
CREATE TABLE agreement_parties (
    agency       TEXT NOT NULL REFERENCES agencies (code),
    agreement_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (agency, agreement_id, version)
);

-- Consents and objections. A withdrawal is recorded on the row; the row
-- stays. `seq` is the consents_version of the row's last change, so that a
-- process can load only what changed since it last looked.
CREATE TABLE consents (
    id                 TEXT PRIMARY KEY,
    subject_id         TEXT NOT NULL REFERENCES subjects (id),
    kind               TEXT NOT NULL, -- consent or objection
    purposes           TEXT NOT NULL, -- JSON array; empty: any
    record_classes     TEXT NOT NULL, -- JSON array; empty: any
    recipients         TEXT NOT NULL, -- ',a,b,' or '' for any agency
    channel            TEXT NOT NULL,
    valid_from         INTEGER NOT NULL,
    valid_until        INTEGER,
    note               TEXT NOT NULL,
    recorded_by        TEXT NOT NULL REFERENCES agencies (code),
    recorded_principal TEXT NOT NULL,
    record_time        INTEGER NOT NULL,
    withdrawal         TEXT, -- JSON, once withdrawn
    seq                INTEGER NOT NULL
);
CREATE INDEX consents_subject ON consents (subject_id, record_time, id);
CREATE INDEX consents_seq ON consents (seq);

-- One row. Each counter grows in the transaction of every change to
-- agreements (or consents); a process compares them with those its cache
-- was built at before each decision.
CREATE TABLE policy_state (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    agreements_version INTEGER NOT NULL,
    consents_version   INTEGER NOT NULL
);
INSERT INTO policy_state (id, agreements_version, consents_version) VALUES (1, 0, 0);

-- What each ledger entry says of the grounds of a sharing decision: the
-- agreements (JSON array of `agreements/{id}@{v}`), their lawful bases
-- (JSON array of codes), the consent relied on or named, and the reason
-- given for emergency access. Part of each entry's canonical encoding (v2).
ALTER TABLE ledger_entries ADD COLUMN agreements TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ledger_entries ADD COLUMN lawful_bases TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ledger_entries ADD COLUMN consent TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger_entries ADD COLUMN break_glass TEXT NOT NULL DEFAULT '';

-- Seals: a controller restricts its records about a subject (record_id '')
-- or one record to itself; only an agreement that covers sealed records
-- shares them. Unsealing deletes the row; the ledger keeps the history.
CREATE TABLE seals (
    agency     TEXT NOT NULL REFERENCES agencies (code),
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    record_id  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    sealed_by  TEXT NOT NULL,
    seal_time  INTEGER NOT NULL,
    PRIMARY KEY (agency, subject_id, record_id)
);
