//! Reviews at the storage boundary.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, code, from_json, json, limit, micros, time};
use super::{After, StoreError};
use crate::domain::event::EventPosition;
use crate::domain::review::{Review, ReviewAcknowledgement, ReviewCause, ReviewId, ReviewOutcome};
use crate::domain::{AgencyCode, SubjectId};

fn review_from(row: &AnyRow) -> Result<Review, StoreError> {
    let cause: String = row.try_get("cause")?;
    let subject: String = row.try_get("subject")?;
    let acknowledgement = match row.try_get::<Option<String>, _>("ack_by")? {
        Some(principal) => {
            let outcome: String = row
                .try_get::<Option<String>, _>("ack_outcome")?
                .unwrap_or_default();
            Some(ReviewAcknowledgement {
                principal,
                time: time(
                    row.try_get::<Option<i64>, _>("ack_time")?
                        .unwrap_or_default(),
                )?,
                outcome: code(
                    ReviewOutcome::from_code(&outcome),
                    "review outcome",
                    &outcome,
                )?,
                note: row
                    .try_get::<Option<String>, _>("ack_note")?
                    .unwrap_or_default(),
            })
        }
        None => None,
    };
    Ok(Review {
        id: ReviewId::from_stored(row.try_get("id")?),
        recipient: agency_code(&row.try_get::<String, _>("recipient")?)?,
        controller: agency_code(&row.try_get::<String, _>("controller")?)?,
        subject: (!subject.is_empty()).then(|| SubjectId::from_stored(subject)),
        cause: code(ReviewCause::from_code(&cause), "review cause", &cause)?,
        ground: row.try_get("ground")?,
        caused_by: EventPosition {
            entry: row.try_get("cause_entry")?,
            ord: row.try_get("cause_ord")?,
        },
        received: from_json(&row.try_get::<String, _>("received")?)?,
        raise_time: time(row.try_get("raise_time")?)?,
        acknowledgement,
        overdue_alerted: row.try_get::<i64, _>("overdue_alerted")? != 0,
    })
}

pub(super) async fn review(db: &AnyPool, id: &ReviewId) -> Result<Option<Review>, StoreError> {
    let row = sqlx::query("SELECT * FROM reviews WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(review_from).transpose()
}

/// The reviews asked of `recipient`, oldest first (by id within one
/// instant), after `after`; only unacknowledged ones if `unacknowledged_only`.
pub(super) async fn reviews_of(
    db: &AnyPool,
    recipient: &AgencyCode,
    unacknowledged_only: bool,
    after: After<(i64, String)>,
    n: u32,
) -> Result<Vec<Review>, StoreError> {
    let (t, id) = match after {
        After::Start => (i64::MIN, String::new()),
        After::Key(key) => key,
    };
    let rows = sqlx::query(
        "SELECT * FROM reviews WHERE recipient = $1 AND ($2 = 0 OR ack_by IS NULL) \
         AND (raise_time > $3 OR (raise_time = $3 AND id > $4)) \
         ORDER BY raise_time, id LIMIT $5",
    )
    .bind(recipient.as_str())
    .bind(i64::from(unacknowledged_only))
    .bind(t)
    .bind(id)
    .bind(limit(n))
    .fetch_all(db)
    .await?;
    rows.iter().map(review_from).collect()
}

/// Unacknowledged reviews raised before `before` whose lateness has not been
/// alerted, oldest first, at most `n`.
pub(super) async fn overdue_reviews(
    db: &AnyPool,
    before: DateTime<Utc>,
    n: u32,
) -> Result<Vec<Review>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM reviews WHERE ack_by IS NULL AND raise_time < $1 \
         AND overdue_alerted = 0 ORDER BY raise_time, id LIMIT $2",
    )
    .bind(micros(before))
    .bind(limit(n))
    .fetch_all(db)
    .await?;
    rows.iter().map(review_from).collect()
}

/// Inserts `r`; a second review of one change for one agency is refused.
pub(super) async fn insert(tx: &mut Tx, r: &Review) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO reviews (id, recipient, controller, subject, cause, ground, cause_entry, \
         cause_ord, received, raise_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (cause_entry, cause_ord, recipient, controller) DO NOTHING",
    )
    .bind(r.id.as_str())
    .bind(r.recipient.as_str())
    .bind(r.controller.as_str())
    .bind(r.subject.as_ref().map_or("", SubjectId::as_str))
    .bind(r.cause.code())
    .bind(r.ground.as_str())
    .bind(r.caused_by.entry)
    .bind(r.caused_by.ord)
    .bind(json(&r.received)?)
    .bind(micros(r.raise_time))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "a review of that change for agency {} already exists",
            r.recipient
        )));
    }
    Ok(())
}

/// Records the recipient's acknowledgement, once.
pub(super) async fn acknowledge(
    tx: &mut Tx,
    id: &ReviewId,
    a: &ReviewAcknowledgement,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE reviews SET ack_by = $1, ack_time = $2, ack_outcome = $3, \
         ack_note = $4 WHERE id = $5 AND ack_by IS NULL",
    )
    .bind(a.principal.as_str())
    .bind(micros(a.time))
    .bind(a.outcome.code())
    .bind(a.note.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "{} does not exist or was already acknowledged",
            id.resource_name()
        )));
    }
    Ok(())
}

/// Marks a review's lateness as alerted.
pub(super) async fn mark_overdue(tx: &mut Tx, id: &ReviewId) -> Result<(), StoreError> {
    let done =
        sqlx::query("UPDATE reviews SET overdue_alerted = 1 WHERE id = $1 AND overdue_alerted = 0")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "the lateness of {} was already alerted",
            id.resource_name()
        )));
    }
    Ok(())
}
