-- Merges: a subject found to be the same person as another is merged into
-- it (the survivor). Its row stays, naming the survivor, so that its name
-- keeps resolving; everything held about it moves to the survivor, and the
-- merge keeps the exact lists of what moved (JSON, see
-- src/store/merges.rs) so that an unmerge can move exactly that back.
-- One merge of a subject stands at a time.
ALTER TABLE subjects ADD COLUMN merged_into TEXT REFERENCES subjects (id);
CREATE INDEX subjects_merged_into ON subjects (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE subject_merges (
    id                 TEXT PRIMARY KEY,
    survivor_id        TEXT NOT NULL REFERENCES subjects (id),
    merged_id          TEXT NOT NULL REFERENCES subjects (id),
    principal          TEXT NOT NULL,
    agency             TEXT NOT NULL,
    merge_time         INTEGER NOT NULL,
    note               TEXT NOT NULL,
    moved              TEXT NOT NULL,
    possible_duplicate TEXT, -- the possible duplicate it resolved, if any
    unmerge_principal  TEXT,
    unmerge_agency     TEXT,
    unmerge_time       INTEGER,
    unmerge_note       TEXT,
    restored           TEXT, -- JSON: what moved back, and the seals copied
    CHECK (survivor_id <> merged_id)
);
CREATE UNIQUE INDEX subject_merges_standing ON subject_merges (merged_id) WHERE unmerge_time IS NULL;
CREATE INDEX subject_merges_survivor ON subject_merges (survivor_id, merge_time);
