//! Possible duplicates at the storage boundary.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, code, limit, micros, time};
use super::{After, StoreError};
use crate::domain::SubjectId;
use crate::domain::duplicate::{
    DuplicateCause, DuplicateResolution, DuplicateState, PossibleDuplicate, PossibleDuplicateId,
};

fn duplicate_from(row: &AnyRow) -> Result<PossibleDuplicate, StoreError> {
    let cause: String = row.try_get("cause")?;
    let state: String = row.try_get("state")?;
    let state = code(DuplicateState::from_code(&state), "duplicate state", &state)?;
    let resolution = match row.try_get::<Option<String>, _>("resolved_by")? {
        Some(principal) => Some(DuplicateResolution {
            state,
            principal,
            time: time(
                row.try_get::<Option<i64>, _>("resolve_time")?
                    .unwrap_or_default(),
            )?,
            note: row
                .try_get::<Option<String>, _>("resolve_note")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(PossibleDuplicate {
        id: PossibleDuplicateId::from_stored(row.try_get("id")?),
        subject: SubjectId::from_stored(row.try_get("subject_id")?),
        candidate: SubjectId::from_stored(row.try_get("candidate_id")?),
        cause: code(DuplicateCause::from_code(&cause), "duplicate cause", &cause)?,
        raised_by: agency_code(&row.try_get::<String, _>("raised_by")?)?,
        create_time: time(row.try_get("create_time")?)?,
        resolution,
    })
}

pub(super) async fn possible_duplicate(
    db: &AnyPool,
    id: &PossibleDuplicateId,
) -> Result<Option<PossibleDuplicate>, StoreError> {
    let row = sqlx::query("SELECT * FROM possible_duplicates WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(duplicate_from).transpose()
}

/// Possible duplicates in `state`, oldest first (by id within one
/// instant), after `after`.
pub(super) async fn possible_duplicates(
    db: &AnyPool,
    state: DuplicateState,
    after: After<(i64, String)>,
    n: u32,
) -> Result<Vec<PossibleDuplicate>, StoreError> {
    let (t, id) = match after {
        After::Start => (i64::MIN, String::new()),
        After::Key(key) => key,
    };
    let rows = sqlx::query(
        "SELECT * FROM possible_duplicates WHERE state = $1 \
         AND (create_time > $2 OR (create_time = $2 AND id > $3)) \
         ORDER BY create_time, id LIMIT $4",
    )
    .bind(state.code())
    .bind(t)
    .bind(id)
    .bind(limit(n))
    .fetch_all(db)
    .await?;
    rows.iter().map(duplicate_from).collect()
}

/// Raises `d`, unless its pair was raised before (then nothing changes:
/// a pair is raised once, and one resolved stays resolved).
pub(super) async fn insert(tx: &mut Tx, d: &PossibleDuplicate) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO possible_duplicates (id, subject_id, candidate_id, pair_key, cause, \
         raised_by, create_time, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (pair_key) DO NOTHING",
    )
    .bind(d.id.as_str())
    .bind(d.subject.as_str())
    .bind(d.candidate.as_str())
    .bind(d.pair_key())
    .bind(d.cause.code())
    .bind(d.raised_by.as_str())
    .bind(micros(d.create_time))
    .bind(d.state().code())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Resolves an open possible duplicate, once.
pub(super) async fn resolve(
    tx: &mut Tx,
    id: &PossibleDuplicateId,
    resolution: &DuplicateResolution,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE possible_duplicates SET state = $1, resolved_by = $2, resolve_time = $3, \
         resolve_note = $4 WHERE id = $5 AND state = 'open'",
    )
    .bind(resolution.state.code())
    .bind(resolution.principal.as_str())
    .bind(micros(resolution.time))
    .bind(resolution.note.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "{} is not open",
            id.resource_name()
        )));
    }
    Ok(())
}
