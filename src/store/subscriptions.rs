//! Subscriptions to events at the storage boundary.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, code, from_json, json, limit, micros, time};
use super::{After, StoreError};
use crate::domain::event::{Cohort, EventKind, Subscription, SubscriptionId};
use crate::domain::{AgencyCode, Purpose, RecordClassId, Role, SubjectId};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn subscription_from(row: &AnyRow) -> Result<Subscription, StoreError> {
    let kinds = from_json::<Vec<String>>(&row.try_get::<String, _>("kinds")?)?
        .iter()
        .map(|k| code(EventKind::from_code(k), "event kind", k))
        .collect::<Result<_, _>>()?;
    let record_classes = from_json::<Vec<String>>(&row.try_get::<String, _>("record_classes")?)?
        .iter()
        .map(|c| RecordClassId::parse(c).map_err(|_| corrupt("record class", c)))
        .collect::<Result<_, _>>()?;
    let purpose: String = row.try_get("purpose")?;
    let role: String = row.try_get("role")?;
    let cohort: String = row.try_get("cohort")?;
    let subjects = from_json::<Vec<String>>(&row.try_get::<String, _>("subjects")?)?;
    Ok(Subscription {
        id: SubscriptionId::from_stored(row.try_get("id")?),
        agency: agency_code(&row.try_get::<String, _>("agency")?)?,
        kinds,
        record_classes,
        purpose: code(Purpose::from_code(&purpose), "purpose", &purpose)?,
        role: Role::parse(&role).map_err(|_| corrupt("role", &role))?,
        cohort: match cohort.as_str() {
            "all" => Cohort::All,
            "held" => Cohort::Held,
            "listed" => Cohort::Listed(subjects.into_iter().map(SubjectId::from_stored).collect()),
            other => return Err(corrupt("cohort", other)),
        },
        created_by: row.try_get("created_by")?,
        create_time: time(row.try_get("create_time")?)?,
        entry_index: row.try_get("entry_idx")?,
    })
}

/// A subscription, unless it was deleted.
pub(super) async fn subscription(
    db: &AnyPool,
    id: &SubscriptionId,
) -> Result<Option<Subscription>, StoreError> {
    let row = sqlx::query("SELECT * FROM subscriptions WHERE id = $1 AND delete_time IS NULL")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(subscription_from).transpose()
}

/// An agency's subscriptions that are not deleted, oldest first (by id
/// within one instant), after `after`.
pub(super) async fn subscriptions_of(
    db: &AnyPool,
    agency: &AgencyCode,
    after: After<(i64, String)>,
    n: u32,
) -> Result<Vec<Subscription>, StoreError> {
    let (t, id) = match after {
        After::Start => (i64::MIN, String::new()),
        After::Key(key) => key,
    };
    let rows = sqlx::query(
        "SELECT * FROM subscriptions WHERE agency = $1 AND delete_time IS NULL \
         AND (create_time > $2 OR (create_time = $2 AND id > $3)) \
         ORDER BY create_time, id LIMIT $4",
    )
    .bind(agency.as_str())
    .bind(t)
    .bind(id)
    .bind(limit(n))
    .fetch_all(db)
    .await?;
    rows.iter().map(subscription_from).collect()
}

/// Inserts `s`, created by the entry at ledger `index`.
pub(super) async fn insert(tx: &mut Tx, s: &Subscription, index: i64) -> Result<(), StoreError> {
    let kinds: Vec<&str> = s.kinds.iter().map(|k| k.code()).collect();
    let classes: Vec<&str> = s.record_classes.iter().map(RecordClassId::as_str).collect();
    let (cohort, subjects): (&str, Vec<&str>) = match &s.cohort {
        Cohort::All => ("all", vec![]),
        Cohort::Held => ("held", vec![]),
        Cohort::Listed(list) => ("listed", list.iter().map(SubjectId::as_str).collect()),
    };
    sqlx::query(
        "INSERT INTO subscriptions (id, agency, kinds, record_classes, purpose, role, cohort, \
         subjects, created_by, create_time, entry_idx) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(s.id.as_str())
    .bind(s.agency.as_str())
    .bind(json(&kinds)?)
    .bind(json(&classes)?)
    .bind(s.purpose.code())
    .bind(s.role.as_str())
    .bind(cohort)
    .bind(json(&subjects)?)
    .bind(s.created_by.as_str())
    .bind(micros(s.create_time))
    .bind(index)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes a subscription that is not deleted yet.
pub(super) async fn delete(
    tx: &mut Tx,
    id: &SubscriptionId,
    deleted_by: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE subscriptions SET delete_time = $1, deleted_by = $2 \
         WHERE id = $3 AND delete_time IS NULL",
    )
    .bind(micros(at))
    .bind(deleted_by)
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(id.resource_name()));
    }
    Ok(())
}
