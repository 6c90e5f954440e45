//! Consents at the storage boundary. Every write advances
//! `policy_state.consents_version` and stamps the row with the new value
//! (`seq`): the row lock on `policy_state` orders consent changes, so a
//! process that has seen counter value V has seen every row with
//! `seq <= V` once it reads the rows changed since.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use sqlx::AnyPool;

use super::codec::{Tx, limit};
use super::codec::{agency_code, from_json, json, micros, time};
use super::query::{Arg, Query};
use super::{After, StoreError};
use crate::domain::consent::{Channel, Consent, ConsentId, ConsentKind, ConsentScope, Withdrawal};
use crate::domain::{AgencyCode, Purpose, RecordClassId, SubjectId};

#[derive(Serialize, Deserialize)]
struct StoredWithdrawal {
    agency: String,
    principal: String,
    time: i64,
    reason: String,
}

/// The columns [`consent_from`] reads.
pub(super) const COLUMNS: &str = "id, subject_id, kind, purposes, record_classes, recipients, \
     channel, valid_from, valid_until, note, recorded_by, recorded_principal, record_time, \
     withdrawal";

/// Recipients as stored: `''` for any agency, else `,a,b,` so that one
/// agency can be matched with `LIKE '%,code,%'` on either backend.
fn stored_recipients(scope: &ConsentScope) -> String {
    if scope.recipients.is_empty() {
        String::new()
    } else {
        let codes: Vec<&str> = scope.recipients.iter().map(|a| a.as_str()).collect();
        format!(",{},", codes.join(","))
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("consent {what} {value:?}"))
}

/// A consent from a row of `consents`.
pub(super) fn consent_from(row: &AnyRow) -> Result<Consent, StoreError> {
    let kind: String = row.try_get("kind")?;
    let channel: String = row.try_get("channel")?;
    let purposes: Vec<String> = from_json(&row.try_get::<String, _>("purposes")?)?;
    let classes: Vec<String> = from_json(&row.try_get::<String, _>("record_classes")?)?;
    let recipients: String = row.try_get("recipients")?;
    let withdrawal: Option<String> = row.try_get("withdrawal")?;
    let withdrawal = match withdrawal {
        None => None,
        Some(text) => {
            let w: StoredWithdrawal = from_json(&text)?;
            Some(Withdrawal {
                agency: agency_code(&w.agency)?,
                principal: w.principal,
                time: time(w.time)?,
                reason: w.reason,
            })
        }
    };
    let valid_until: Option<i64> = row.try_get("valid_until")?;
    Ok(Consent {
        id: ConsentId::from_stored(row.try_get("id")?),
        subject: SubjectId::from_stored(row.try_get("subject_id")?),
        kind: ConsentKind::from_code(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        scope: ConsentScope {
            purposes: purposes
                .iter()
                .map(|p| Purpose::from_code(p).ok_or_else(|| corrupt("purpose", p)))
                .collect::<Result<_, _>>()?,
            record_classes: classes
                .iter()
                .map(|c| RecordClassId::parse(c).map_err(|_| corrupt("record class", c)))
                .collect::<Result<_, _>>()?,
            recipients: recipients
                .split(',')
                .filter(|c| !c.is_empty())
                .map(agency_code)
                .collect::<Result<_, _>>()?,
        },
        channel: Channel::from_code(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        valid_from: time(row.try_get("valid_from")?)?,
        valid_until: valid_until.map(time).transpose()?,
        note: row.try_get("note")?,
        recorded_by: agency_code(&row.try_get::<String, _>("recorded_by")?)?,
        recorded_principal: row.try_get("recorded_principal")?,
        record_time: time(row.try_get("record_time")?)?,
        withdrawal,
    })
}

/// Advances the consents counter; returns its new value.
pub(super) async fn advance_version(tx: &mut Tx) -> Result<i64, StoreError> {
    sqlx::query("UPDATE policy_state SET consents_version = consents_version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT consents_version FROM policy_state WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?,
    )
}

/// Records a consent.
pub(super) async fn insert(tx: &mut Tx, c: &Consent) -> Result<(), StoreError> {
    let seq = advance_version(tx).await?;
    let purposes: Vec<&str> = c.scope.purposes.iter().map(|p| p.code()).collect();
    let classes: Vec<&str> = c.scope.record_classes.iter().map(|r| r.as_str()).collect();
    sqlx::query(
        "INSERT INTO consents (id, subject_id, kind, purposes, record_classes, recipients, \
         channel, valid_from, valid_until, note, recorded_by, recorded_principal, record_time, \
         withdrawal, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, $14)",
    )
    .bind(c.id.as_str())
    .bind(c.subject.as_str())
    .bind(c.kind.code())
    .bind(json(&purposes)?)
    .bind(json(&classes)?)
    .bind(stored_recipients(&c.scope))
    .bind(c.channel.code())
    .bind(micros(c.valid_from))
    .bind(c.valid_until.map(micros))
    .bind(c.note.as_str())
    .bind(c.recorded_by.as_str())
    .bind(c.recorded_principal.as_str())
    .bind(micros(c.record_time))
    .bind(seq)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records the withdrawal of a consent that is not withdrawn yet.
pub(super) async fn withdraw(
    tx: &mut Tx,
    id: &ConsentId,
    w: &Withdrawal,
) -> Result<(), StoreError> {
    let seq = advance_version(tx).await?;
    let text = json(&StoredWithdrawal {
        agency: w.agency.as_str().to_owned(),
        principal: w.principal.clone(),
        time: micros(w.time),
        reason: w.reason.clone(),
    })?;
    let done = sqlx::query(
        "UPDATE consents SET withdrawal = $1, seq = $2 WHERE id = $3 AND withdrawal IS NULL",
    )
    .bind(text)
    .bind(seq)
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "{} was withdrawn by another request",
            id.resource_name()
        )));
    }
    Ok(())
}

pub(super) async fn consent(db: &AnyPool, id: &ConsentId) -> Result<Option<Consent>, StoreError> {
    let sql = format!("SELECT {} FROM consents WHERE id = $1", COLUMNS);
    sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(consent_from)
        .transpose()
}

pub(super) async fn consents_of(
    db: &AnyPool,
    subject: &SubjectId,
    agency: &AgencyCode,
    after: After<(i64, String)>,
    n: u32,
) -> Result<Vec<Consent>, StoreError> {
    let mut q = Query::new(&format!("SELECT {} FROM consents WHERE ", COLUMNS));
    let code = agency.as_str().to_owned();
    q.push("subject_id = ?", Arg::Text(subject.as_str().to_owned()))
        .push(" AND (recorded_by = ?", Arg::Text(code.clone()))
        .push(
            " OR recipients = '' OR recipients LIKE ?)",
            Arg::Text(format!("%,{code},%")),
        );
    if let After::Key((t, id)) = after {
        q.push(" AND (record_time < ?", Arg::Int(t))
            .push(" OR (record_time = ?", Arg::Int(t))
            .push(" AND id < ?))", Arg::Text(id));
    }
    q.raw(" ORDER BY record_time DESC, id DESC")
        .push(" LIMIT ?", Arg::Int(limit(n)));
    let rows = q.build().fetch_all(db).await?;
    rows.iter().map(consent_from).collect()
}

pub(super) async fn consents_changed(db: &AnyPool, since: i64) -> Result<Vec<Consent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM consents WHERE seq > $1 ORDER BY seq",
        COLUMNS
    );
    sqlx::query(&sql)
        .bind(since)
        .fetch_all(db)
        .await?
        .iter()
        .map(consent_from)
        .collect()
}
