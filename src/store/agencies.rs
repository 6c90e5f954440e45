//! Agencies at the storage boundary: their rows, reads and writes.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, code, limit, micros, text_after, time};
use super::{After, StoreError};
use crate::domain::agency::RateLimit;
use crate::domain::{Agency, AgencyCode, AgencyKind, AgencyStatus};

fn agency_from(row: &AnyRow) -> Result<Agency, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(Agency {
        code: agency_code(&row.try_get::<String, _>("code")?)?,
        display_name: row.try_get("display_name")?,
        kind: code(AgencyKind::from_code(&kind), "agency kind", &kind)?,
        status: code(AgencyStatus::from_code(&status), "agency status", &status)?,
        create_time: time(row.try_get("create_time")?)?,
        update_time: time(row.try_get("update_time")?)?,
        etag: row.try_get("etag")?,
        rate_limit: match (
            row.try_get::<Option<i64>, _>("rate_per_second")?,
            row.try_get::<Option<i64>, _>("rate_burst")?,
        ) {
            (Some(per_second), Some(burst)) => Some(RateLimit {
                per_second: u32::try_from(per_second)
                    .map_err(|_| StoreError::Corrupt(format!("rate {per_second}")))?,
                burst: u32::try_from(burst)
                    .map_err(|_| StoreError::Corrupt(format!("burst {burst}")))?,
            }),
            _ => None,
        },
    })
}

/// An agency's rate limit as its two columns (NULL: the default).
fn rate_columns(a: &Agency) -> (Option<i64>, Option<i64>) {
    match a.rate_limit {
        Some(r) => (Some(i64::from(r.per_second)), Some(i64::from(r.burst))),
        None => (None, None),
    }
}

pub(super) async fn agency(db: &AnyPool, code: &AgencyCode) -> Result<Option<Agency>, StoreError> {
    let row = sqlx::query("SELECT * FROM agencies WHERE code = $1")
        .bind(code.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(agency_from).transpose()
}

pub(super) async fn agencies(
    db: &AnyPool,
    after: After<String>,
    n: u32,
) -> Result<Vec<Agency>, StoreError> {
    let rows = sqlx::query("SELECT * FROM agencies WHERE code > $1 ORDER BY code LIMIT $2")
        .bind(text_after(after))
        .bind(limit(n))
        .fetch_all(db)
        .await?;
    rows.iter().map(agency_from).collect()
}

/// Registers `a`, unless its code is taken.
pub(super) async fn insert(tx: &mut Tx, a: &Agency) -> Result<(), StoreError> {
    let exists = sqlx::query("SELECT 1 FROM agencies WHERE code = $1")
        .bind(a.code.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "agency {} already exists",
            a.code.resource_name()
        )));
    }
    sqlx::query(
        "INSERT INTO agencies (code, display_name, kind, status, create_time, update_time, etag, \
         rate_per_second, rate_burst) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.code.as_str())
    .bind(a.display_name.as_str())
    .bind(a.kind.code())
    .bind(a.status.code())
    .bind(micros(a.create_time))
    .bind(micros(a.update_time))
    .bind(a.etag.as_str())
    .bind(rate_columns(a).0)
    .bind(rate_columns(a).1)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Replaces `a`'s mutable fields if its etag is still `expected_etag`.
pub(super) async fn update(tx: &mut Tx, a: &Agency, expected_etag: &str) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE agencies SET display_name = $1, status = $2, update_time = $3, etag = $4, \
         rate_per_second = $7, rate_burst = $8 WHERE code = $5 AND etag = $6",
    )
    .bind(a.display_name.as_str())
    .bind(a.status.code())
    .bind(micros(a.update_time))
    .bind(a.etag.as_str())
    .bind(a.code.as_str())
    .bind(expected_etag)
    .bind(rate_columns(a).0)
    .bind(rate_columns(a).1)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    let current: Option<String> = sqlx::query_scalar("SELECT etag FROM agencies WHERE code = $1")
        .bind(a.code.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    Err(match current {
        None => StoreError::NotFound(a.code.resource_name()),
        Some(current) => StoreError::StaleEtag {
            given: expected_etag.to_owned(),
            current,
        },
    })
}
