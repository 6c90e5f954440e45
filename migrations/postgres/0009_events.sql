-- Change notifications, the outbox: written by the batch's append in the
-- transaction of the change that causes them, and ordered by the ledger
-- index of the entry committed with that change, then by their place
-- among that entry's events. Empty texts stand for "none".
CREATE TABLE events (
    entry_idx    BIGINT NOT NULL,
    ord          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    resource     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    time         BIGINT NOT NULL,
    controller   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    record_class TEXT NOT NULL,
    agreement    TEXT NOT NULL,
    PRIMARY KEY (entry_idx, ord)
);

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION accord_refuse_change();
