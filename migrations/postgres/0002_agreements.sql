-- Data sharing agreements, one row per version, and the state counters
-- that tell every server process when its cached policies are stale.

CREATE TABLE agreements (
    id          TEXT NOT NULL,
    version     BIGINT NOT NULL,
    provider    TEXT NOT NULL REFERENCES agencies (code),
    terms       TEXT NOT NULL, -- JSON: consumers and grants, classes, purposes, bases, period
    status      TEXT NOT NULL, -- draft, active, suspended or superseded
    approvals   TEXT NOT NULL, -- JSON array
    suspension  TEXT,          -- JSON, the last suspension
    created_by  TEXT NOT NULL REFERENCES agencies (code),
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    revision    BIGINT NOT NULL, -- lifecycle steps of this version
    PRIMARY KEY (id, version)
);
CREATE INDEX agreements_status ON agreements (status);

-- Every party of every version, for listing an agency's agreements.
CREATE TABLE agreement_parties (
    agency       TEXT NOT NULL REFERENCES agencies (code),
    agreement_id TEXT NOT NULL,
    version      BIGINT NOT NULL,
    PRIMARY KEY (agency, agreement_id, version)
);

-- One row. Each counter grows in the transaction of every change to
-- agreements (or consents); a process compares them with those its cache
-- was built at before each decision.
CREATE TABLE policy_state (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    agreements_version BIGINT NOT NULL,
    consents_version   BIGINT NOT NULL
);
INSERT INTO policy_state (id, agreements_version, consents_version) VALUES (1, 0, 0);
