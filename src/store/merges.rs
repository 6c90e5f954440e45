//! Subject merges at the storage boundary.
//!
//! A merge and an unmerge each run in the transaction of their ledger
//! entry, after checking that what they move is exactly what the call
//! decided on (their plan, read again under the batch's lock): anything
//! linked, recorded or sealed meanwhile makes the call stale, and it is
//! decided again. The lists of what moved are kept on the merge's row, as
//! JSON, for the unmerge.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::codec::{Tx, agency_code, from_json, json, micros, time};
use super::{StoreError, consents, subjects};
use crate::domain::consent::ConsentId;
use crate::domain::duplicate::PossibleDuplicateId;
use crate::domain::merge::{
    Holdings, MergeAct, SealKey, StoredSeal, SubjectMerge, SubjectMergeId, Unmerge,
};
use crate::domain::{AgencyCode, Identifier, RecordId, SubjectId};

/// A seal as a merge's row keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct SealJson {
    agency: String,
    /// Empty: all the agency's records about the subject.
    record: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    sealed_by: String,
    #[serde(default)]
    seal_time: i64,
}

/// [`Holdings`] as a merge's row keeps them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct HoldingsJson {
    /// `[system, assigner ('' for national systems), value]`.
    identifiers: Vec<[String; 3]>,
    records: Vec<String>,
    consents: Vec<String>,
    seals: Vec<SealJson>,
    set_aside: Vec<SealJson>,
}

/// What an unmerge did, as a merge's row keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct RestoredJson {
    restored: HoldingsJson,
    copied_seals: Vec<SealJson>,
}

fn key_json(key: &SealKey) -> SealJson {
    SealJson {
        agency: key.agency.as_str().to_owned(),
        record: key.record.as_ref().map_or("", RecordId::as_str).to_owned(),
        reason: String::new(),
        sealed_by: String::new(),
        seal_time: 0,
    }
}

fn seal_json(seal: &StoredSeal) -> SealJson {
    SealJson {
        reason: seal.reason.clone(),
        sealed_by: seal.sealed_by.clone(),
        seal_time: micros(seal.seal_time),
        ..key_json(&seal.key)
    }
}

fn key_of(s: &SealJson) -> Result<SealKey, StoreError> {
    Ok(SealKey {
        agency: agency_code(&s.agency)?,
        record: Some(s.record.as_str())
            .filter(|r| !r.is_empty())
            .map(|r| RecordId::from_stored(r.to_owned())),
    })
}

fn seal_of(s: &SealJson) -> Result<StoredSeal, StoreError> {
    Ok(StoredSeal {
        key: key_of(s)?,
        reason: s.reason.clone(),
        sealed_by: s.sealed_by.clone(),
        seal_time: time(s.seal_time)?,
    })
}

fn holdings_json(h: &Holdings) -> HoldingsJson {
    HoldingsJson {
        identifiers: h
            .identifiers
            .iter()
            .map(|i| {
                [
                    i.system().code().to_owned(),
                    i.assigner().map_or("", AgencyCode::as_str).to_owned(),
                    i.value().to_owned(),
                ]
            })
            .collect(),
        records: h.records.iter().map(|r| r.as_str().to_owned()).collect(),
        consents: h.consents.iter().map(|c| c.as_str().to_owned()).collect(),
        seals: h.seals.iter().map(key_json).collect(),
        set_aside: h.set_aside.iter().map(seal_json).collect(),
    }
}

fn holdings_of(j: &HoldingsJson) -> Result<Holdings, StoreError> {
    Ok(Holdings {
        identifiers: j
            .identifiers
            .iter()
            .map(|[system, assigner, value]| subjects::identifier_of(system, assigner, value))
            .collect::<Result<_, _>>()?,
        records: j
            .records
            .iter()
            .map(|r| RecordId::from_stored(r.clone()))
            .collect(),
        consents: j
            .consents
            .iter()
            .map(|c| ConsentId::from_stored(c.clone()))
            .collect(),
        seals: j.seals.iter().map(key_of).collect::<Result<_, _>>()?,
        set_aside: j.set_aside.iter().map(seal_of).collect::<Result<_, _>>()?,
    })
}

fn merge_from(row: &AnyRow) -> Result<SubjectMerge, StoreError> {
    let moved: HoldingsJson = from_json(&row.try_get::<String, _>("moved")?)?;
    let unmerge = match row.try_get::<Option<i64>, _>("unmerge_time")? {
        None => None,
        Some(at) => {
            let restored: RestoredJson = from_json(
                &row.try_get::<Option<String>, _>("restored")?
                    .unwrap_or_default(),
            )?;
            Some(Unmerge {
                act: MergeAct {
                    principal: row
                        .try_get::<Option<String>, _>("unmerge_principal")?
                        .unwrap_or_default(),
                    agency: agency_code(
                        &row.try_get::<Option<String>, _>("unmerge_agency")?
                            .unwrap_or_default(),
                    )?,
                    time: time(at)?,
                    note: row
                        .try_get::<Option<String>, _>("unmerge_note")?
                        .unwrap_or_default(),
                },
                restored: holdings_of(&restored.restored)?,
                copied_seals: restored
                    .copied_seals
                    .iter()
                    .map(seal_of)
                    .collect::<Result<_, _>>()?,
            })
        }
    };
    Ok(SubjectMerge {
        id: SubjectMergeId::from_stored(row.try_get("id")?),
        survivor: SubjectId::from_stored(row.try_get("survivor_id")?),
        merged: SubjectId::from_stored(row.try_get("merged_id")?),
        act: MergeAct {
            principal: row.try_get("principal")?,
            agency: agency_code(&row.try_get::<String, _>("agency")?)?,
            time: time(row.try_get("merge_time")?)?,
            note: row.try_get("note")?,
        },
        moved: holdings_of(&moved)?,
        possible_duplicate: row
            .try_get::<Option<String>, _>("possible_duplicate")?
            .map(PossibleDuplicateId::from_stored),
        unmerge,
    })
}

pub(super) async fn subject_merge(
    db: &AnyPool,
    id: &SubjectMergeId,
) -> Result<Option<SubjectMerge>, StoreError> {
    let row = sqlx::query("SELECT * FROM subject_merges WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(merge_from).transpose()
}

/// The merges `subject` took part in, either side, oldest first.
pub(super) async fn merges_of(
    db: &AnyPool,
    subject: &SubjectId,
) -> Result<Vec<SubjectMerge>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM subject_merges WHERE survivor_id = $1 OR merged_id = $1 \
         ORDER BY merge_time, id",
    )
    .bind(subject.as_str())
    .fetch_all(db)
    .await?;
    rows.iter().map(merge_from).collect()
}

/// The seals on `subject`'s records and on the subject.
async fn seals_on(conn: &mut AnyConnection, subject: &str) -> Result<Vec<StoredSeal>, StoreError> {
    let rows = sqlx::query(
        "SELECT agency, record_id, reason, sealed_by, seal_time FROM seals WHERE subject_id = $1",
    )
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let record: String = row.try_get("record_id")?;
            Ok(StoredSeal {
                key: SealKey {
                    agency: agency_code(&row.try_get::<String, _>("agency")?)?,
                    record: Some(record)
                        .filter(|r| !r.is_empty())
                        .map(RecordId::from_stored),
                },
                reason: row.try_get("reason")?,
                sealed_by: row.try_get("sealed_by")?,
                seal_time: time(row.try_get("seal_time")?)?,
            })
        })
        .collect()
}

/// The ids in column `id` of `sql`, run for `subject`.
async fn ids(
    conn: &mut AnyConnection,
    sql: &str,
    subject: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(sql).bind(subject).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| r.try_get("id").map_err(StoreError::from))
        .collect()
}

/// Whether `id` is registered and not merged into another subject.
async fn standing(conn: &mut AnyConnection, id: &SubjectId) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM subjects WHERE id = $1 AND merged_into IS NULL")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// What merging `merged` into `survivor` would move now; `None` unless
/// both are registered, distinct and not merged.
pub(super) async fn merge_plan(
    conn: &mut AnyConnection,
    survivor: &SubjectId,
    merged: &SubjectId,
) -> Result<Option<Holdings>, StoreError> {
    if survivor == merged || !standing(conn, survivor).await? || !standing(conn, merged).await? {
        return Ok(None);
    }
    let identifiers = sqlx::query(
        "SELECT system, assigner, value FROM subject_identifiers WHERE subject_id = $1",
    )
    .bind(merged.as_str())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(subjects::identifier_from)
    .collect::<Result<_, _>>()?;
    let records = ids(
        conn,
        "SELECT id FROM records WHERE subject_id = $1",
        merged.as_str(),
    )
    .await?
    .into_iter()
    .map(RecordId::from_stored)
    .collect();
    let consents = ids(
        conn,
        "SELECT id FROM consents WHERE subject_id = $1",
        merged.as_str(),
    )
    .await?
    .into_iter()
    .map(ConsentId::from_stored)
    .collect();
    let survivor_sealed: HashSet<AgencyCode> = seals_on(conn, survivor.as_str())
        .await?
        .into_iter()
        .filter(|s| s.key.record.is_none())
        .map(|s| s.key.agency)
        .collect();
    let (set_aside, moved): (Vec<StoredSeal>, Vec<StoredSeal>) = seals_on(conn, merged.as_str())
        .await?
        .into_iter()
        .partition(|s| s.key.record.is_none() && survivor_sealed.contains(&s.key.agency));
    Ok(Some(
        Holdings {
            identifiers,
            records,
            consents,
            seals: moved.into_iter().map(|s| s.key).collect(),
            set_aside,
        }
        .sorted(),
    ))
}

/// What undoing `merge` would move back now, and the seals it would copy;
/// `None` unless the merge stands and its survivor is not merged since.
pub(super) async fn unmerge_plan(
    conn: &mut AnyConnection,
    merge: &SubjectMerge,
) -> Result<Option<(Holdings, Vec<StoredSeal>)>, StoreError> {
    let standing_merge =
        sqlx::query("SELECT 1 FROM subject_merges WHERE id = $1 AND unmerge_time IS NULL")
            .bind(merge.id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
    if !standing_merge || !standing(conn, &merge.survivor).await? {
        return Ok(None);
    }
    let survivor = merge.survivor.as_str();
    let held: Vec<Identifier> = sqlx::query(
        "SELECT system, assigner, value FROM subject_identifiers WHERE subject_id = $1",
    )
    .bind(survivor)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(subjects::identifier_from)
    .collect::<Result<_, _>>()?;
    let records: HashSet<String> = ids(
        conn,
        "SELECT id FROM records WHERE subject_id = $1",
        survivor,
    )
    .await?
    .into_iter()
    .collect();
    let consents: HashSet<String> = ids(
        conn,
        "SELECT id FROM consents WHERE subject_id = $1",
        survivor,
    )
    .await?
    .into_iter()
    .collect();
    let moved = &merge.moved;
    let moved_records: HashSet<&str> = moved.records.iter().map(RecordId::as_str).collect();
    let set_aside: HashSet<&AgencyCode> = moved.set_aside.iter().map(|s| &s.key.agency).collect();
    let mut seals = vec![];
    let mut copied = vec![];
    for seal in seals_on(conn, survivor).await? {
        match &seal.key.record {
            Some(record) if moved_records.contains(record.as_str()) => seals.push(seal.key),
            Some(_) => {}
            // Made while the merge stood: kept on both (unless the merged
            // subject's own seal by that agency is restored instead).
            None if seal.seal_time > merge.act.time && !set_aside.contains(&seal.key.agency) => {
                copied.push(seal);
            }
            None if moved.seals.contains(&seal.key) => seals.push(seal.key),
            None => {}
        }
    }
    copied.sort_by(|a, b| a.key.cmp(&b.key));
    let restored = Holdings {
        identifiers: moved
            .identifiers
            .iter()
            .filter(|i| held.contains(i))
            .cloned()
            .collect(),
        records: moved
            .records
            .iter()
            .filter(|r| records.contains(r.as_str()))
            .cloned()
            .collect(),
        consents: moved
            .consents
            .iter()
            .filter(|c| consents.contains(c.as_str()))
            .cloned()
            .collect(),
        seals,
        set_aside: moved.set_aside.clone(),
    }
    .sorted();
    Ok(Some((restored, copied)))
}

/// Merges `m.merged` into `m.survivor`, moving exactly `m.moved`: if the
/// plan read now differs, nothing is written and the call is stale.
pub(super) async fn merge(tx: &mut Tx, m: &SubjectMerge) -> Result<(), StoreError> {
    let plan = merge_plan(tx, &m.survivor, &m.merged).await?;
    if plan.as_ref() != Some(&m.moved) {
        return Err(StoreError::Stale(format!(
            "{} or {} changed while their merge was decided",
            m.survivor.resource_name(),
            m.merged.resource_name()
        )));
    }
    let (survivor, merged) = (m.survivor.as_str(), m.merged.as_str());
    for sql in [
        "UPDATE subject_identifiers SET subject_id = $1 WHERE subject_id = $2",
        "UPDATE records SET subject_id = $1 WHERE subject_id = $2",
    ] {
        sqlx::query(sql)
            .bind(survivor)
            .bind(merged)
            .execute(&mut *tx)
            .await?;
    }
    if !m.moved.consents.is_empty() {
        let seq = consents::advance_version(tx).await?;
        sqlx::query("UPDATE consents SET subject_id = $1, seq = $2 WHERE subject_id = $3")
            .bind(survivor)
            .bind(seq)
            .bind(merged)
            .execute(&mut *tx)
            .await?;
    }
    for seal in &m.moved.set_aside {
        sqlx::query("DELETE FROM seals WHERE agency = $1 AND subject_id = $2 AND record_id = ''")
            .bind(seal.key.agency.as_str())
            .bind(merged)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE seals SET subject_id = $1 WHERE subject_id = $2")
        .bind(survivor)
        .bind(merged)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE subjects SET merged_into = $1 WHERE id = $2")
        .bind(survivor)
        .bind(merged)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO subject_merges (id, survivor_id, merged_id, principal, agency, merge_time, \
         note, moved, possible_duplicate) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(m.id.as_str())
    .bind(survivor)
    .bind(merged)
    .bind(m.act.principal.as_str())
    .bind(m.act.agency.as_str())
    .bind(micros(m.act.time))
    .bind(m.act.note.as_str())
    .bind(json(&holdings_json(&m.moved))?)
    .bind(m.possible_duplicate.as_ref().map(|d| d.as_str().to_owned()))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts `seal` on `subject`, unless the agency's seal is there already.
async fn restore_seal(tx: &mut Tx, subject: &str, seal: &StoredSeal) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO seals (agency, subject_id, record_id, reason, sealed_by, seal_time) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(seal.key.agency.as_str())
    .bind(subject)
    .bind(seal.key.record.as_ref().map_or("", RecordId::as_str))
    .bind(seal.reason.as_str())
    .bind(seal.sealed_by.as_str())
    .bind(micros(seal.seal_time))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Undoes the merge `m` (as read, with its unmerge set), moving back
/// exactly what its unmerge says: if the plan read now differs, nothing
/// is written and the call is stale.
pub(super) async fn unmerge(tx: &mut Tx, m: &SubjectMerge) -> Result<(), StoreError> {
    let Some(u) = &m.unmerge else {
        return Err(StoreError::Corrupt("an unmerge without its act".to_owned()));
    };
    let plan = unmerge_plan(tx, m).await?;
    if plan.as_ref() != Some(&(u.restored.clone(), u.copied_seals.clone())) {
        return Err(StoreError::Stale(format!(
            "{} changed while its unmerge was decided",
            m.id.resource_name()
        )));
    }
    let (survivor, merged) = (m.survivor.as_str(), m.merged.as_str());
    for i in &u.restored.identifiers {
        sqlx::query(
            "UPDATE subject_identifiers SET subject_id = $1 \
             WHERE system = $2 AND assigner = $3 AND value = $4 AND subject_id = $5",
        )
        .bind(merged)
        .bind(i.system().code())
        .bind(i.assigner().map_or("", AgencyCode::as_str))
        .bind(i.value())
        .bind(survivor)
        .execute(&mut *tx)
        .await?;
    }
    for r in &u.restored.records {
        sqlx::query("UPDATE records SET subject_id = $1 WHERE id = $2")
            .bind(merged)
            .bind(r.as_str())
            .execute(&mut *tx)
            .await?;
    }
    if !u.restored.consents.is_empty() {
        let seq = consents::advance_version(tx).await?;
        for c in &u.restored.consents {
            sqlx::query("UPDATE consents SET subject_id = $1, seq = $2 WHERE id = $3")
                .bind(merged)
                .bind(seq)
                .bind(c.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    for key in &u.restored.seals {
        sqlx::query(
            "UPDATE seals SET subject_id = $1 WHERE agency = $2 AND subject_id = $3 AND record_id = $4",
        )
        .bind(merged)
        .bind(key.agency.as_str())
        .bind(survivor)
        .bind(key.record.as_ref().map_or("", RecordId::as_str))
        .execute(&mut *tx)
        .await?;
    }
    for seal in u.restored.set_aside.iter().chain(&u.copied_seals) {
        restore_seal(tx, merged, seal).await?;
    }
    sqlx::query("UPDATE subjects SET merged_into = NULL WHERE id = $1")
        .bind(merged)
        .execute(&mut *tx)
        .await?;
    let restored = RestoredJson {
        restored: holdings_json(&u.restored),
        copied_seals: u.copied_seals.iter().map(seal_json).collect(),
    };
    sqlx::query(
        "UPDATE subject_merges SET unmerge_principal = $1, unmerge_agency = $2, \
         unmerge_time = $3, unmerge_note = $4, restored = $5 WHERE id = $6",
    )
    .bind(u.act.principal.as_str())
    .bind(u.act.agency.as_str())
    .bind(micros(u.act.time))
    .bind(u.act.note.as_str())
    .bind(json(&restored)?)
    .bind(m.id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
