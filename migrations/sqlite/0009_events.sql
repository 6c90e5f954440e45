-- Change notifications, the outbox: written by the batch's append in the
-- transaction of the change that causes them, and ordered by the ledger
-- index of the entry committed with that change, then by their place
-- among that entry's events. Empty texts stand for "none".
CREATE TABLE events (
    entry_idx    INTEGER NOT NULL,
    ord          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    resource     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    time         INTEGER NOT NULL,
    controller   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    record_class TEXT NOT NULL,
    agreement    TEXT NOT NULL,
    PRIMARY KEY (entry_idx, ord)
) WITHOUT ROWID;

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
