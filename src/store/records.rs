//! Records, their versions and seals at the storage boundary.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, from_json, json, limit, micros, time};
use super::query::{Arg, Query};
use super::{After, StoreError};
use crate::domain::{AgencyCode, Record, RecordClassId, RecordId, SubjectId};

fn record_from(row: &AnyRow) -> Result<Record, StoreError> {
    let class: String = row.try_get("record_class")?;
    let controller: String = row.try_get("controller")?;
    Ok(Record {
        id: RecordId::from_stored(row.try_get("id")?),
        subject: SubjectId::from_stored(row.try_get("subject_id")?),
        record_class: RecordClassId::parse(&class)
            .map_err(|e| StoreError::Corrupt(format!("record class {class:?}: {e}")))?,
        controller: agency_code(&controller)?,
        version: row.try_get("version")?,
        fields: from_json(&row.try_get::<String, _>("fields")?)?,
        etag: row.try_get("etag")?,
        create_time: time(row.try_get("create_time")?)?,
        update_time: time(row.try_get("write_time")?)?,
        sealed: row.try_get::<i64, _>("sealed")? != 0,
    })
}

/// Whether the record `r` is sealed (by its controller, itself or all its
/// records about the subject), as 1 or 0: a literal, for `concat!`.
macro_rules! sealed {
    () => {
        "CAST(CASE WHEN EXISTS (SELECT 1 FROM seals s \
         WHERE s.agency = r.controller AND s.subject_id = r.subject_id \
         AND (s.record_id = '' OR s.record_id = r.id)) THEN 1 ELSE 0 END AS BIGINT)"
    };
}

/// Whether the record `r` is sealed, as 1 or 0.
pub(super) const SEALED: &str = sealed!();

const RECORD_COLUMNS: &str = concat!(
    "r.id, r.subject_id, r.record_class, r.controller, r.create_time, \
     v.version, v.fields, v.etag, v.write_time, ",
    sealed!(),
    " AS sealed"
);

pub(super) async fn record(
    db: &AnyPool,
    id: &RecordId,
    version: Option<i64>,
) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records r JOIN record_versions v ON v.record_id = r.id \
         WHERE r.id = $1 AND v.version = {}",
        if version.is_some() { "$2" } else { "r.version" }
    );
    let mut q = sqlx::query(&sql).bind(id.as_str());
    if let Some(v) = version {
        q = q.bind(v);
    }
    let row = q.fetch_optional(db).await?;
    row.as_ref().map(record_from).transpose()
}

pub(super) async fn records_of_subject(
    db: &AnyPool,
    subject: &SubjectId,
    after: After<(i64, String)>,
    n: u32,
) -> Result<Vec<Record>, StoreError> {
    let mut q = Query::new(&format!(
        "SELECT {RECORD_COLUMNS} FROM records r JOIN record_versions v ON v.record_id = r.id AND v.version = r.version \
         WHERE "
    ));
    q.push("r.subject_id = ?", Arg::Text(subject.as_str().to_owned()));
    if let After::Key((t, id)) = after {
        q.push(" AND (r.update_time < ?", Arg::Int(t))
            .push(" OR (r.update_time = ?", Arg::Int(t))
            .push(" AND r.id < ?))", Arg::Text(id));
    }
    q.raw(" ORDER BY r.update_time DESC, r.id DESC")
        .push(" LIMIT ?", Arg::Int(limit(n)));
    let rows = q.build().fetch_all(db).await?;
    rows.iter().map(record_from).collect()
}

/// Creates `r` at version 1.
pub(super) async fn insert(tx: &mut Tx, r: &Record, written_by: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO records (id, subject_id, record_class, controller, version, etag, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.id.as_str())
    .bind(r.subject.as_str())
    .bind(r.record_class.as_str())
    .bind(r.controller.as_str())
    .bind(r.version)
    .bind(r.etag.as_str())
    .bind(micros(r.create_time))
    .bind(micros(r.update_time))
    .execute(&mut *tx)
    .await?;
    insert_version(tx, r, written_by).await
}

/// Adds `r` as the new version if the current etag is still
/// `expected_etag`.
pub(super) async fn update(
    tx: &mut Tx,
    r: &Record,
    expected_etag: &str,
    written_by: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE records SET version = $1, etag = $2, update_time = $3 WHERE id = $4 AND etag = $5",
    )
    .bind(r.version)
    .bind(r.etag.as_str())
    .bind(micros(r.update_time))
    .bind(r.id.as_str())
    .bind(expected_etag)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        let current: Option<String> = sqlx::query_scalar("SELECT etag FROM records WHERE id = $1")
            .bind(r.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match current {
            None => StoreError::NotFound(r.id.resource_name()),
            Some(current) => StoreError::StaleEtag {
                given: expected_etag.to_owned(),
                current,
            },
        });
    }
    insert_version(tx, r, written_by).await
}

async fn insert_version(tx: &mut Tx, r: &Record, written_by: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO record_versions (record_id, version, fields, etag, write_time, written_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(r.id.as_str())
    .bind(r.version)
    .bind(json(&r.fields)?)
    .bind(r.etag.as_str())
    .bind(micros(r.update_time))
    .bind(written_by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A seal: `record` (or, if `None`, all of `agency`'s records about
/// `subject`), sealed to its controller `agency`.
pub(super) struct Seal<'a> {
    pub agency: &'a AgencyCode,
    pub subject: &'a SubjectId,
    pub record: Option<&'a RecordId>,
}

/// Seals, unless it is sealed already.
pub(super) async fn seal(
    tx: &mut Tx,
    target: Seal<'_>,
    reason: &str,
    sealed_by: &str,
    time: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO seals (agency, subject_id, record_id, reason, sealed_by, seal_time) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(target.agency.as_str())
    .bind(target.subject.as_str())
    .bind(target.record.map_or("", RecordId::as_str))
    .bind(reason)
    .bind(sealed_by)
    .bind(micros(time))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict("it is already sealed".to_owned()));
    }
    Ok(())
}

/// Removes a seal, if there is one.
pub(super) async fn unseal(tx: &mut Tx, target: Seal<'_>) -> Result<(), StoreError> {
    let done =
        sqlx::query("DELETE FROM seals WHERE agency = $1 AND subject_id = $2 AND record_id = $3")
            .bind(target.agency.as_str())
            .bind(target.subject.as_str())
            .bind(target.record.map_or("", RecordId::as_str))
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict("it is not sealed".to_owned()));
    }
    Ok(())
}
