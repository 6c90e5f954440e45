-- The health probe's write: after a batch of writes failed as a whole, the
-- probe inserts and deletes one row here, in one committed transaction, to
-- learn whether the database takes writes again. It is always empty.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY,
    payload BLOB NOT NULL
);
