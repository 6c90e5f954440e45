//! Subjects and their identifiers at the storage boundary.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, agency_code, code, limit, micros, time, unsigned};
use super::{IdentifierLink, LinkedIdentifier, StoreError, SubjectTies, meta};
use crate::domain::{
    AgencyCode, Demographics, Gender, Identifier, IdentifierSystem, Subject, SubjectId,
};
use crate::matching::{Profile, blocking};

async fn identifiers_of(db: &AnyPool, subject: &SubjectId) -> Result<Vec<Identifier>, StoreError> {
    let rows = sqlx::query(
        "SELECT system, assigner, value FROM subject_identifiers WHERE subject_id = $1 \
         ORDER BY link_time, system, assigner, value",
    )
    .bind(subject.as_str())
    .fetch_all(db)
    .await?;
    rows.iter().map(identifier_from).collect()
}

pub(super) async fn linked_identifiers(
    db: &AnyPool,
    subject: &SubjectId,
) -> Result<Vec<LinkedIdentifier>, StoreError> {
    let rows = sqlx::query(
        "SELECT system, assigner, value, linked_by, link_time FROM subject_identifiers \
         WHERE subject_id = $1 ORDER BY link_time, system, assigner, value",
    )
    .bind(subject.as_str())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LinkedIdentifier {
                identifier: identifier_from(row)?,
                linked_by: agency_code(&row.try_get::<String, _>("linked_by")?)?,
                link_time: time(row.try_get("link_time")?)?,
            })
        })
        .collect()
}

/// The identifier in a row's `system`, `assigner` and `value`.
pub(super) fn identifier_from(row: &AnyRow) -> Result<Identifier, StoreError> {
    let system: String = row.try_get("system")?;
    let assigner: String = row.try_get("assigner")?;
    let value: String = row.try_get("value")?;
    identifier_of(&system, &assigner, &value)
}

/// The identifier stored as `system`, `assigner` ('' for national
/// systems) and `value`.
pub(super) fn identifier_of(
    system: &str,
    assigner: &str,
    value: &str,
) -> Result<Identifier, StoreError> {
    Ok(Identifier::from_stored(
        code(
            IdentifierSystem::from_code(system),
            "identifier system",
            system,
        )?,
        value.to_owned(),
        if assigner.is_empty() {
            None
        } else {
            Some(agency_code(assigner)?)
        },
    ))
}

async fn subject_from(db: &AnyPool, row: &AnyRow) -> Result<Subject, StoreError> {
    let id = SubjectId::from_stored(row.try_get("id")?);
    let identifiers = identifiers_of(db, &id).await?;
    subject_with(row, id, identifiers)
}

/// The subject in `row`, with `identifiers`.
fn subject_with(
    row: &AnyRow,
    id: SubjectId,
    identifiers: Vec<Identifier>,
) -> Result<Subject, StoreError> {
    let birth: String = row.try_get("birth_date")?;
    let gender: String = row.try_get("gender")?;
    let postcode: String = row.try_get("postcode")?;
    let uprn: String = row.try_get("uprn")?;
    let registered_by: String = row.try_get("registered_by")?;
    Ok(Subject {
        identifiers,
        demographics: Demographics {
            given_name: row.try_get("given_name")?,
            family_name: row.try_get("family_name")?,
            birth_date: NaiveDate::from_str(&birth)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            gender: code(Gender::from_code(&gender), "gender", &gender)?,
            postcode: Some(postcode).filter(|p| !p.is_empty()),
            uprn: Some(uprn).filter(|u| !u.is_empty()),
        },
        registered_by: agency_code(&registered_by)?,
        create_time: time(row.try_get("create_time")?)?,
        merged_into: row
            .try_get::<Option<String>, _>("merged_into")?
            .map(SubjectId::from_stored),
        id,
    })
}

pub(super) async fn subject(db: &AnyPool, id: &SubjectId) -> Result<Option<Subject>, StoreError> {
    let row = sqlx::query("SELECT * FROM subjects WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    match row {
        Some(row) => Ok(Some(subject_from(db, &row).await?)),
        None => Ok(None),
    }
}

/// The subjects merged into `subject`, directly or through others, in the
/// order they were registered (their identifiers are the survivor's now).
pub(super) async fn merged_subjects(
    db: &AnyPool,
    subject: &SubjectId,
) -> Result<Vec<Subject>, StoreError> {
    let rows = sqlx::query(
        "WITH RECURSIVE merged (id) AS (SELECT id FROM subjects WHERE merged_into = $1 \
         UNION SELECT s.id FROM subjects s JOIN merged m ON s.merged_into = m.id) \
         SELECT * FROM subjects WHERE id IN (SELECT id FROM merged) ORDER BY create_time, id",
    )
    .bind(subject.as_str())
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(subject_from(db, row).await?);
    }
    Ok(out)
}

pub(super) async fn subject_ties(
    db: &AnyPool,
    subject: &SubjectId,
) -> Result<SubjectTies, StoreError> {
    let rows = sqlx::query(
        "WITH RECURSIVE merged (id) AS (SELECT id FROM subjects WHERE merged_into = $1 \
         UNION SELECT s.id FROM subjects s JOIN merged m ON s.merged_into = m.id) \
         SELECT 'connected' AS tie, registered_by AS agency FROM subjects WHERE id = $1 \
         UNION SELECT 'connected', registered_by FROM subjects WHERE id IN (SELECT id FROM merged) \
         UNION SELECT 'connected', linked_by FROM subject_identifiers WHERE subject_id = $1 \
         UNION SELECT 'connected', controller FROM records WHERE subject_id = $1 \
         UNION SELECT 'sealed', agency FROM seals WHERE subject_id = $1 AND record_id = ''",
    )
    .bind(subject.as_str())
    .fetch_all(db)
    .await?;
    let mut ties = SubjectTies::default();
    for row in rows {
        let agency = agency_code(&row.try_get::<String, _>("agency")?)?;
        match row.try_get::<String, _>("tie")?.as_str() {
            "sealed" => ties.sealed_by.push(agency),
            _ => ties.connected.push(agency),
        }
    }
    Ok(ties)
}

pub(super) async fn identifier_link(
    db: &AnyPool,
    identifier: &Identifier,
) -> Result<Option<IdentifierLink>, StoreError> {
    let row = sqlx::query(
        "SELECT subject_id, linked_by FROM subject_identifiers WHERE system = $1 AND assigner = $2 AND value = $3",
    )
    .bind(identifier.system().code())
    .bind(identifier.assigner().map_or("", AgencyCode::as_str))
    .bind(identifier.value())
    .fetch_optional(db)
    .await?;
    match row {
        Some(row) => Ok(Some(IdentifierLink {
            subject: SubjectId::from_stored(row.try_get("subject_id")?),
            linked_by: agency_code(&row.try_get::<String, _>("linked_by")?)?,
        })),
        None => Ok(None),
    }
}

/// Subjects holding any of `keys`, with their identifiers, at most
/// `n` (in no particular order): one query.
pub(super) async fn match_candidates(
    db: &AnyPool,
    keys: &[String],
    n: u32,
) -> Result<Vec<Subject>, StoreError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT s.*, i.system, i.assigner, i.value FROM \
         (SELECT DISTINCT subject_id FROM subject_blocks WHERE key IN ({}) LIMIT ${}) c \
         JOIN subjects s ON s.id = c.subject_id AND s.merged_into IS NULL \
         LEFT JOIN subject_identifiers i ON i.subject_id = s.id \
         ORDER BY s.id, i.link_time, i.system, i.assigner, i.value",
        placeholders.join(", "),
        keys.len() + 1
    );
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query.bind(key.as_str());
    }
    let rows = query.bind(limit(n)).fetch_all(db).await?;
    let mut out: Vec<Subject> = vec![];
    for row in &rows {
        let id: String = row.try_get("id")?;
        let identifier = match row.try_get::<Option<String>, _>("system")? {
            Some(_) => Some(identifier_from(row)?),
            None => None,
        };
        match out.last_mut() {
            Some(last) if last.id.as_str() == id => last.identifiers.extend(identifier),
            _ => out.push(subject_with(
                row,
                SubjectId::from_stored(id),
                identifier.into_iter().collect(),
            )?),
        }
    }
    Ok(out)
}

/// The statement counting the subjects filed under `n` keys.
fn population_sql(n: usize) -> String {
    let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT COUNT(DISTINCT subject_id) AS n FROM subject_blocks WHERE key IN ({})",
        placeholders.join(", ")
    )
}

/// How many subjects are filed under any of `keys`.
pub(super) async fn block_population(db: &AnyPool, keys: &[String]) -> Result<u64, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let sql = population_sql(keys.len());
    let query = keys
        .iter()
        .fold(sqlx::query(&sql), |q, k| q.bind(k.as_str()));
    unsigned(query.fetch_one(db).await?.try_get("n")?)
}

/// Stale unless `population` subjects are filed under `keys` now, in `tx`.
pub(super) async fn check_block_population(
    tx: &mut Tx,
    keys: &[String],
    population: u64,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = population_sql(keys.len());
    let query = keys
        .iter()
        .fold(sqlx::query(&sql), |q, k| q.bind(k.as_str()));
    let now = unsigned(query.fetch_one(&mut *tx).await?.try_get("n")?)?;
    if now == population {
        Ok(())
    } else {
        Err(StoreError::Stale(
            "a subject like the one being registered was registered meanwhile".to_owned(),
        ))
    }
}

/// The version of the blocking keys [`insert`] writes; [`index_blocks`]
/// brings subjects registered before it up to date.
const BLOCKS_VERSION: &str = "1";
const BLOCKS_META_KEY: &str = "subject_blocks";
/// Subjects given their keys per transaction by [`index_blocks`].
const BLOCKS_PAGE: u32 = 5000;

/// Gives every subject the blocking keys of [`BLOCKS_VERSION`], unless
/// that was done already; returns how many subjects were indexed. Safe to
/// run by several processes at once (the keys are the same; a key held
/// already is left).
pub(super) async fn index_blocks(db: &AnyPool) -> Result<u64, StoreError> {
    if meta::meta(db, BLOCKS_META_KEY).await?.as_deref() == Some(BLOCKS_VERSION) {
        return Ok(0);
    }
    let mut after = String::new();
    let mut indexed = 0;
    loop {
        let rows = sqlx::query(
            "SELECT id, given_name, family_name, birth_date, postcode FROM subjects \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.as_str())
        .bind(limit(BLOCKS_PAGE))
        .fetch_all(db)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        let mut filed: Vec<(String, String)> = Vec::with_capacity(rows.len() * 5);
        for row in &rows {
            let id: String = row.try_get("id")?;
            let birth: String = row.try_get("birth_date")?;
            let birth_date =
                NaiveDate::from_str(&birth).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let postcode: String = row.try_get("postcode")?;
            let keys = blocking::keys(
                &row.try_get::<String, _>("family_name")?,
                &row.try_get::<String, _>("given_name")?,
                birth_date,
                Some(postcode.as_str()).filter(|p| !p.is_empty()),
            );
            filed.extend(keys.into_iter().map(|key| (key, id.clone())));
        }
        let mut tx = db.begin().await?;
        insert_blocks(&mut tx, &filed).await?;
        tx.commit().await?;
        indexed += rows.len() as u64;
    }
    let mut tx = db.begin().await?;
    meta::set(&mut tx, BLOCKS_META_KEY, BLOCKS_VERSION).await?;
    tx.commit().await?;
    Ok(indexed)
}

/// How many (key, subject) rows one statement files at most.
const BLOCK_ROWS_PER_STATEMENT: usize = 400;

/// Files each subject under its key, `(key, subject id)` (a subject filed
/// under a key already is left), a few hundred rows a statement.
async fn insert_blocks(tx: &mut Tx, rows: &[(String, String)]) -> Result<(), StoreError> {
    for chunk in rows.chunks(BLOCK_ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO subject_blocks (key, subject_id) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (key, subject) in chunk {
            query = query.bind(key.as_str()).bind(subject.as_str());
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Registers `s` with its identifiers.
pub(super) async fn insert(tx: &mut Tx, s: &Subject) -> Result<(), StoreError> {
    let d = &s.demographics;
    sqlx::query(
        "INSERT INTO subjects (id, given_name, family_name, birth_date, gender, \
         postcode, uprn, registered_by, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(s.id.as_str())
    .bind(d.given_name.as_str())
    .bind(d.family_name.as_str())
    .bind(d.birth_date.to_string())
    .bind(d.gender.code())
    .bind(d.postcode.clone().unwrap_or_default())
    .bind(d.uprn.clone().unwrap_or_default())
    .bind(s.registered_by.as_str())
    .bind(micros(s.create_time))
    .execute(&mut *tx)
    .await?;
    let keys: Vec<(String, String)> = Profile::of(s)
        .blocking_keys()
        .into_iter()
        .map(|key| (key, s.id.as_str().to_owned()))
        .collect();
    insert_blocks(tx, &keys).await?;
    for identifier in &s.identifiers {
        link(tx, &s.id, identifier, &s.registered_by, s.create_time).await?;
    }
    Ok(())
}

/// Links `identifier` to `subject`, unless another subject holds it.
pub(super) async fn link(
    tx: &mut Tx,
    subject: &SubjectId,
    identifier: &Identifier,
    linked_by: &AgencyCode,
    time: DateTime<Utc>,
) -> Result<(), StoreError> {
    let assigner = identifier.assigner().map_or("", AgencyCode::as_str);
    let taken = sqlx::query(
        "SELECT 1 FROM subject_identifiers WHERE system = $1 AND assigner = $2 AND value = $3",
    )
    .bind(identifier.system().code())
    .bind(assigner)
    .bind(identifier.value())
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "identifier {identifier} already belongs to a subject"
        )));
    }
    sqlx::query(
        "INSERT INTO subject_identifiers (system, assigner, value, subject_id, linked_by, link_time) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(identifier.system().code())
    .bind(assigner)
    .bind(identifier.value())
    .bind(subject.as_str())
    .bind(linked_by.as_str())
    .bind(micros(time))
    .execute(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::AlreadyExists(
            format!("identifier {identifier} already belongs to a subject"),
        ),
        sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => {
            StoreError::NotFound(subject.resource_name())
        }
        other => StoreError::Database(other),
    })?;
    Ok(())
}

/// Removes `identifier` from `subject`.
pub(super) async fn unlink(
    tx: &mut Tx,
    subject: &SubjectId,
    identifier: &Identifier,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "DELETE FROM subject_identifiers WHERE system = $1 AND assigner = $2 AND value = $3 AND subject_id = $4",
    )
    .bind(identifier.system().code())
    .bind(identifier.assigner().map_or("", AgencyCode::as_str))
    .bind(identifier.value())
    .bind(subject.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "identifier {identifier} on {}",
            subject.resource_name()
        )));
    }
    Ok(())
}
