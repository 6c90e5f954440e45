-- How agencies' systems are recognised: client-certificate identities,
-- matched by certificate fingerprint, SPKI pin or subject alternative name.
-- One value belongs to one agency; revoked identities stay, as history.
CREATE TABLE certificate_identities (
    id          TEXT PRIMARY KEY,
    agency      TEXT NOT NULL REFERENCES agencies (code),
    kind        TEXT NOT NULL, -- certificate_sha256, spki_sha256 or subject_alt_name
    value       TEXT NOT NULL, -- lowercase hex for digests; the name as given
    note        TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    revoke_time BIGINT,
    UNIQUE (kind, value)
);
CREATE INDEX certificate_identities_agency ON certificate_identities (agency, create_time);

-- The identity providers whose signed tokens identify an agency's staff.
-- One issuer (iss) vouches for one agency. Removing one deletes its row;
-- the ledger keeps the history.
CREATE TABLE token_issuers (
    id            TEXT PRIMARY KEY,
    agency        TEXT NOT NULL REFERENCES agencies (code),
    issuer        TEXT NOT NULL UNIQUE,
    jwks_kind     TEXT NOT NULL, -- document or path
    jwks          TEXT NOT NULL, -- the JWKS document, or the path of the file holding it
    subject_claim TEXT NOT NULL,
    roles_claim   TEXT NOT NULL,
    create_time   BIGINT NOT NULL
);
CREATE INDEX token_issuers_agency ON token_issuers (agency, create_time);
