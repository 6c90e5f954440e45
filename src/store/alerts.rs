//! Alerts at the storage boundary.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, code, limit, micros, time};
use super::query::{Arg, Query};
use super::{After, StoreError};
use crate::domain::{Acknowledgement, AgencyCode, Alert, AlertId, AlertKind};

fn alert_from(row: &AnyRow) -> Result<Alert, StoreError> {
    let kind: String = row.try_get("kind")?;
    let ack_by: Option<String> = row.try_get("ack_by")?;
    let acknowledgement = match ack_by {
        Some(principal) => Some(Acknowledgement {
            principal,
            time: time(
                row.try_get::<Option<i64>, _>("ack_time")?
                    .unwrap_or_default(),
            )?,
            note: row
                .try_get::<Option<String>, _>("ack_note")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Alert {
        id: AlertId::from_stored(row.try_get("id")?),
        kind: code(AlertKind::from_code(&kind), "alert kind", &kind)?,
        recipient: agency_code(&row.try_get::<String, _>("recipient")?)?,
        agency: row.try_get("agency")?,
        principal: row.try_get("principal")?,
        subject: row.try_get("subject")?,
        summary: row.try_get("summary")?,
        entry_index: row.try_get("entry_index")?,
        raise_time: time(row.try_get("raise_time")?)?,
        acknowledgement,
    })
}

pub(super) async fn alert(db: &AnyPool, id: &AlertId) -> Result<Option<Alert>, StoreError> {
    let row = sqlx::query("SELECT * FROM alerts WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(alert_from).transpose()
}

pub(super) async fn alerts(
    db: &AnyPool,
    recipient: &AgencyCode,
    unacknowledged_only: bool,
    after: After<(i64, String)>,
    n: u32,
) -> Result<Vec<Alert>, StoreError> {
    let mut q = Query::new("SELECT * FROM alerts WHERE ");
    q.push("recipient = ?", Arg::Text(recipient.as_str().to_owned()));
    if unacknowledged_only {
        q.raw(" AND ack_by IS NULL");
    }
    if let After::Key((t, id)) = after {
        q.push(" AND (raise_time > ?", Arg::Int(t))
            .push(" OR (raise_time = ?", Arg::Int(t))
            .push(" AND id > ?))", Arg::Text(id));
    }
    q.raw(" ORDER BY raise_time, id")
        .push(" LIMIT ?", Arg::Int(limit(n)));
    let rows = q.build().fetch_all(db).await?;
    rows.iter().map(alert_from).collect()
}

/// Raises `a`, tied to the entry at ledger `index`.
pub(super) async fn raise(tx: &mut Tx, a: &Alert, index: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alerts (id, kind, recipient, agency, principal, subject, summary, entry_index, raise_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.id.as_str())
    .bind(a.kind.code())
    .bind(a.recipient.as_str())
    .bind(a.agency.as_str())
    .bind(a.principal.as_str())
    .bind(a.subject.as_str())
    .bind(a.summary.as_str())
    .bind(index)
    .bind(micros(a.raise_time))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records that an alert was looked at, once: a second acknowledgement
/// leaves the first in place.
pub(super) async fn acknowledge(
    tx: &mut Tx,
    id: &AlertId,
    ack: &Acknowledgement,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE alerts SET ack_by = $1, ack_time = $2, ack_note = $3 WHERE id = $4 AND ack_by IS NULL",
    )
    .bind(ack.principal.as_str())
    .bind(micros(ack.time))
    .bind(ack.note.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        let exists = sqlx::query("SELECT 1 FROM alerts WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(id.resource_name()));
        }
    }
    Ok(())
}
