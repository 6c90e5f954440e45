-- Possible duplicates: a subject registered last, and one registered
-- before that person matching found may be the same person, for the
-- operator's data-quality staff. `pair_key` is the two subject ids sorted
-- and joined, so that a pair is raised once whichever came first; a pair
-- resolved as different people keeps its row, and so is not raised again.
CREATE TABLE possible_duplicates (
    id            TEXT PRIMARY KEY,
    subject_id    TEXT NOT NULL REFERENCES subjects (id),
    candidate_id  TEXT NOT NULL REFERENCES subjects (id),
    pair_key      TEXT NOT NULL UNIQUE,
    cause         TEXT NOT NULL,
    raised_by     TEXT NOT NULL REFERENCES agencies (code),
    create_time   BIGINT NOT NULL,
    state         TEXT NOT NULL, -- open, different_people
    resolved_by   TEXT,
    resolve_time  BIGINT,
    resolve_note  TEXT
);
CREATE INDEX possible_duplicates_state ON possible_duplicates (state, create_time, id);
