-- The tree's nodes are stored by their place in the order appends
-- complete them (post-order: a leaf, then the subtrees it completes,
-- lowest first), so that the nodes one batch completes are neighbours and
-- share a page or two, rather than one page per level of the tree. For the
-- node of 2^level leaves from leaf idx << level, the position is
-- 2 * (((idx + 1) << level) - 1) - popcount(idx); popcount is written out
-- bit by bit, as neither database has it in every supported version.
CREATE TABLE ledger_nodes_by_position (
    pos   INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL
);
INSERT INTO ledger_nodes_by_position (pos, level, idx, hash)
    SELECT 2 * (((idx + 1) << level) - 1) - (
        ((idx >> 0) & 1) + ((idx >> 1) & 1) + ((idx >> 2) & 1) + ((idx >> 3) & 1) +
        ((idx >> 4) & 1) + ((idx >> 5) & 1) + ((idx >> 6) & 1) + ((idx >> 7) & 1) +
        ((idx >> 8) & 1) + ((idx >> 9) & 1) + ((idx >> 10) & 1) + ((idx >> 11) & 1) +
        ((idx >> 12) & 1) + ((idx >> 13) & 1) + ((idx >> 14) & 1) + ((idx >> 15) & 1) +
        ((idx >> 16) & 1) + ((idx >> 17) & 1) + ((idx >> 18) & 1) + ((idx >> 19) & 1) +
        ((idx >> 20) & 1) + ((idx >> 21) & 1) + ((idx >> 22) & 1) + ((idx >> 23) & 1) +
        ((idx >> 24) & 1) + ((idx >> 25) & 1) + ((idx >> 26) & 1) + ((idx >> 27) & 1) +
        ((idx >> 28) & 1) + ((idx >> 29) & 1) + ((idx >> 30) & 1) + ((idx >> 31) & 1) +
        ((idx >> 32) & 1) + ((idx >> 33) & 1) + ((idx >> 34) & 1) + ((idx >> 35) & 1) +
        ((idx >> 36) & 1) + ((idx >> 37) & 1) + ((idx >> 38) & 1) + ((idx >> 39) & 1) +
        ((idx >> 40) & 1) + ((idx >> 41) & 1) + ((idx >> 42) & 1) + ((idx >> 43) & 1) +
        ((idx >> 44) & 1) + ((idx >> 45) & 1) + ((idx >> 46) & 1) + ((idx >> 47) & 1) +
        ((idx >> 48) & 1) + ((idx >> 49) & 1) + ((idx >> 50) & 1) + ((idx >> 51) & 1) +
        ((idx >> 52) & 1) + ((idx >> 53) & 1) + ((idx >> 54) & 1) + ((idx >> 55) & 1) +
        ((idx >> 56) & 1) + ((idx >> 57) & 1) + ((idx >> 58) & 1) + ((idx >> 59) & 1) +
        ((idx >> 60) & 1) + ((idx >> 61) & 1) + ((idx >> 62) & 1)
    ), level, idx, hash
    FROM ledger_nodes;
DROP TABLE ledger_nodes;
ALTER TABLE ledger_nodes_by_position RENAME TO ledger_nodes;

CREATE TRIGGER ledger_nodes_append_only_update BEFORE UPDATE ON ledger_nodes
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_nodes_append_only_delete BEFORE DELETE ON ledger_nodes
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
