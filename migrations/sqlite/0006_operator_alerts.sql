-- Alerts about calls refused before any agency was established go to the
-- operator, which is not a member agency: an alert's recipient is an
-- agency's code or the operator's name. (SQLite cannot drop a constraint:
-- the table is rebuilt without it.)
CREATE TABLE alerts_new (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    recipient   TEXT NOT NULL,
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
INSERT INTO alerts_new
    SELECT id, kind, recipient, agency, principal, subject, summary, entry_index,
           raise_time, ack_by, ack_time, ack_note
    FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_new RENAME TO alerts;
CREATE INDEX alerts_recipient ON alerts (recipient, raise_time, id);
