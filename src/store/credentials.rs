//! Agencies' certificate identities and token issuers at the storage
//! boundary.

use sqlx::Row;
use sqlx::any::AnyRow;

use sqlx::AnyPool;

use super::StoreError;
use super::codec::Tx;
use super::codec::{agency_code, micros, time};
use crate::domain::AgencyCode;
use crate::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, JwksSource, TokenIssuer,
    TokenIssuerId,
};

/// The columns [`identity_from`] reads.
pub(super) const COLUMNS: &str = "id, agency, kind, value, note, create_time, revoke_time";

/// A certificate identity from a row of `certificate_identities`.
pub(super) fn identity_from(row: &AnyRow) -> Result<CertificateIdentity, StoreError> {
    let kind: String = row.try_get("kind")?;
    let value: String = row.try_get("value")?;
    let revoke_time: Option<i64> = row.try_get("revoke_time")?;
    Ok(CertificateIdentity {
        id: CertificateIdentityId::from_stored(row.try_get("id")?),
        agency: agency_code(&row.try_get::<String, _>("agency")?)?,
        matcher: CertificateMatch::from_stored(&kind, &value)
            .ok_or_else(|| StoreError::Corrupt(format!("certificate identity {kind} {value:?}")))?,
        note: row.try_get("note")?,
        create_time: time(row.try_get("create_time")?)?,
        revoke_time: revoke_time.map(time).transpose()?,
    })
}

/// Registers a certificate identity; its value must be new.
pub(super) async fn insert(tx: &mut Tx, c: &CertificateIdentity) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO certificate_identities (id, agency, kind, value, note, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(c.id.as_str())
    .bind(c.agency.as_str())
    .bind(c.matcher.kind())
    .bind(c.matcher.value())
    .bind(c.note.as_str())
    .bind(micros(c.create_time))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "{} is already registered (an identity recognises one agency)",
            c.matcher
        )));
    }
    changed(tx).await
}

/// Revokes a certificate identity that is not revoked yet.
pub(super) async fn revoke(
    tx: &mut Tx,
    id: &CertificateIdentityId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE certificate_identities SET revoke_time = $1 WHERE id = $2 AND revoke_time IS NULL",
    )
    .bind(micros(at))
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "the certificate identity is already revoked".to_owned(),
        ));
    }
    changed(tx).await
}

/// The columns [`issuer_from`] reads.
pub(super) const ISSUER_COLUMNS: &str =
    "id, agency, issuer, jwks_kind, jwks, subject_claim, roles_claim, create_time";

/// A token issuer from a row of `token_issuers`.
pub(super) fn issuer_from(row: &AnyRow) -> Result<TokenIssuer, StoreError> {
    let kind: String = row.try_get("jwks_kind")?;
    let jwks: String = row.try_get("jwks")?;
    Ok(TokenIssuer {
        id: TokenIssuerId::from_stored(row.try_get("id")?),
        agency: agency_code(&row.try_get::<String, _>("agency")?)?,
        issuer: row.try_get("issuer")?,
        jwks: match kind.as_str() {
            "document" => JwksSource::Document(jwks),
            "path" => JwksSource::Path(jwks),
            "discovery" => JwksSource::Discovery(jwks),
            _ => return Err(StoreError::Corrupt(format!("jwks kind {kind:?}"))),
        },
        subject_claim: row.try_get("subject_claim")?,
        roles_claim: row.try_get("roles_claim")?,
        create_time: time(row.try_get("create_time")?)?,
    })
}

/// Registers a token issuer; its `iss` must be new.
pub(super) async fn insert_issuer(tx: &mut Tx, t: &TokenIssuer) -> Result<(), StoreError> {
    let (kind, jwks) = match &t.jwks {
        JwksSource::Document(d) => ("document", d.as_str()),
        JwksSource::Path(p) => ("path", p.as_str()),
        JwksSource::Discovery(u) => ("discovery", u.as_str()),
    };
    let done = sqlx::query(
        "INSERT INTO token_issuers (id, agency, issuer, jwks_kind, jwks, subject_claim, \
         roles_claim, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(t.id.as_str())
    .bind(t.agency.as_str())
    .bind(t.issuer.as_str())
    .bind(kind)
    .bind(jwks)
    .bind(t.subject_claim.as_str())
    .bind(t.roles_claim.as_str())
    .bind(micros(t.create_time))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "issuer {:?} is already registered (an issuer vouches for one agency)",
            t.issuer
        )));
    }
    changed(tx).await
}

/// Removes a token issuer.
pub(super) async fn remove_issuer(tx: &mut Tx, id: &TokenIssuerId) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM token_issuers WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(id.resource_name()));
    }
    changed(tx).await
}

/// Advances `policy_state.registry_version` in the transaction of a change
/// to certificate identities or token issuers.
async fn changed(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("UPDATE policy_state SET registry_version = registry_version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn certificate_identities(
    db: &AnyPool,
    agency: &AgencyCode,
) -> Result<Vec<CertificateIdentity>, StoreError> {
    let sql = format!(
        "SELECT {} FROM certificate_identities WHERE agency = $1 ORDER BY create_time, id",
        COLUMNS
    );
    sqlx::query(&sql)
        .bind(agency.as_str())
        .fetch_all(db)
        .await?
        .iter()
        .map(identity_from)
        .collect()
}

pub(super) async fn certificate_identities_matching(
    db: &AnyPool,
    matchers: &[CertificateMatch],
) -> Result<Vec<CertificateIdentity>, StoreError> {
    if matchers.is_empty() {
        return Ok(vec![]);
    }
    let conditions: Vec<String> = (0..matchers.len())
        .map(|i| format!("(kind = ${} AND value = ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let sql = format!(
        "SELECT {} FROM certificate_identities WHERE {} ORDER BY create_time, id",
        COLUMNS,
        conditions.join(" OR ")
    );
    let mut q = sqlx::query(&sql);
    for m in matchers {
        q = q.bind(m.kind()).bind(m.value());
    }
    q.fetch_all(db).await?.iter().map(identity_from).collect()
}

pub(super) async fn token_issuers(
    db: &AnyPool,
    agency: &AgencyCode,
) -> Result<Vec<TokenIssuer>, StoreError> {
    let sql = format!(
        "SELECT {} FROM token_issuers WHERE agency = $1 ORDER BY create_time, id",
        ISSUER_COLUMNS
    );
    sqlx::query(&sql)
        .bind(agency.as_str())
        .fetch_all(db)
        .await?
        .iter()
        .map(issuer_from)
        .collect()
}

pub(super) async fn token_issuer(
    db: &AnyPool,
    iss: &str,
) -> Result<Option<TokenIssuer>, StoreError> {
    let sql = format!(
        "SELECT {} FROM token_issuers WHERE issuer = $1",
        ISSUER_COLUMNS
    );
    sqlx::query(&sql)
        .bind(iss)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(issuer_from)
        .transpose()
}

pub(super) async fn registry_version(db: &AnyPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT registry_version FROM policy_state WHERE id = 1")
            .fetch_one(db)
            .await?,
    )
}
