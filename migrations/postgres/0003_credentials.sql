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
