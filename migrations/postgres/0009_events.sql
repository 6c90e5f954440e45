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
    -- For an event addressed to one agency (a review): its code.
    recipient    TEXT NOT NULL,
    PRIMARY KEY (entry_idx, ord)
);

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION accord_refuse_change();

-- Agencies' subscriptions to events. Lists are JSON arrays (of event kind
-- codes, record class ids, subject ids); entry_idx is the ledger index of
-- the entry that created it (its events are those after it); a deleted
-- subscription is kept, with when and by whom, as history.
CREATE TABLE subscriptions (
    id             TEXT PRIMARY KEY,
    agency         TEXT NOT NULL,
    kinds          TEXT NOT NULL,
    record_classes TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    role           TEXT NOT NULL,
    cohort         TEXT NOT NULL,
    subjects       TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    create_time    BIGINT NOT NULL,
    entry_idx      BIGINT NOT NULL,
    delete_time    BIGINT,
    deleted_by     TEXT
);
CREATE INDEX subscriptions_agency ON subscriptions (agency, create_time, id);

-- What each entry that disclosed fields to an agency other than their
-- controller rested on and was of: the records (`records/{id}`), the
-- consent and the agreements. Derived from the entries, like
-- ledger_subjects: how the agencies that received data under a ground are
-- found when that ground ends.
CREATE TABLE ledger_disclosures (
    key TEXT NOT NULL,
    idx BIGINT NOT NULL,
    PRIMARY KEY (key, idx)
);

CREATE TRIGGER ledger_disclosures_append_only BEFORE UPDATE OR DELETE ON ledger_disclosures
FOR EACH ROW EXECUTE FUNCTION accord_refuse_change();

-- Requests to agencies to review what they received under a ground that
-- has ended, with what they received (a JSON array, from the ledger) and
-- its acknowledgement. One per recipient agency and controller of the data for
-- each change that ended a ground.
CREATE TABLE reviews (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    controller      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    cause           TEXT NOT NULL,
    ground          TEXT NOT NULL,
    cause_entry     BIGINT NOT NULL,
    cause_ord       BIGINT NOT NULL,
    received        TEXT NOT NULL,
    raise_time      BIGINT NOT NULL,
    ack_by       TEXT,
    ack_time     BIGINT,
    ack_outcome  TEXT,
    ack_note     TEXT,
    overdue_alerted BIGINT NOT NULL DEFAULT 0,
    UNIQUE (cause_entry, cause_ord, recipient, controller)
);
CREATE INDEX reviews_recipient ON reviews (recipient, raise_time, id);
CREATE INDEX reviews_unacknowledged ON reviews (raise_time) WHERE ack_by IS NULL;

-- Agreement versions whose period has ended, once noticed: expiry follows
-- from the period, and is written here once (by whichever process notices
-- it first) so that its event is written once.
CREATE TABLE agreement_expiries (
    agreement_id TEXT NOT NULL,
    version      BIGINT NOT NULL,
    entry_idx    BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, version)
);
