//! Agencies' certificate identities at the storage boundary.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::{agency_code, micros, time};
use crate::domain::credential::{CertificateIdentity, CertificateIdentityId, CertificateMatch};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

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
pub(super) async fn insert(tx: &mut Tx<'_>, c: &CertificateIdentity) -> Result<(), StoreError> {
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
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "{} is already registered (an identity recognises one agency)",
            c.matcher
        )));
    }
    Ok(())
}

/// Revokes a certificate identity that is not revoked yet.
pub(super) async fn revoke(
    tx: &mut Tx<'_>,
    id: &CertificateIdentityId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE certificate_identities SET revoke_time = $1 WHERE id = $2 AND revoke_time IS NULL",
    )
    .bind(micros(at))
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "the certificate identity is already revoked".to_owned(),
        ));
    }
    Ok(())
}
