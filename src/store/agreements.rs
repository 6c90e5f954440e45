//! Agreements at the storage boundary: their stored (JSON) form, reading
//! them back, and the writes that change them. Every write also advances
//! `policy_state.agreements_version`, so that every process sees that its
//! compiled policies are stale.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use sqlx::AnyPool;

use super::codec::{Tx, limit};
use super::codec::{agency_code, from_json, json, micros, time};
use super::{After, PolicyVersions, StoreError};
use crate::domain::agreement::{
    Agreement, AgreementId, AgreementStatus, AgreementTerms, Approval, ConsentRequirement,
    ConsumerTerms, FieldGrant, LawfulBasis, LawfulBasisCode, Suspension,
};
use crate::domain::{AgencyCode, Purpose, RecordClassId, Role};

#[derive(Serialize, Deserialize)]
struct StoredGrant {
    role: String,
    record_class: String,
    fields: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredConsumer {
    agency: String,
    grants: Vec<StoredGrant>,
}

#[derive(Serialize, Deserialize)]
struct StoredBasis {
    code: String,
    reference: String,
}

#[derive(Serialize, Deserialize)]
struct StoredTerms {
    title: String,
    consumers: Vec<StoredConsumer>,
    record_classes: Vec<String>,
    purposes: Vec<String>,
    lawful_bases: Vec<StoredBasis>,
    consent: String,
    covers_sealed: bool,
    valid_from: i64,
    valid_until: i64,
    review_date: NaiveDate,
}

#[derive(Serialize, Deserialize)]
struct StoredApproval {
    agency: String,
    principal: String,
    time: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredSuspension {
    agency: String,
    principal: String,
    time: i64,
    reason: String,
}

fn stored_terms(t: &AgreementTerms) -> StoredTerms {
    StoredTerms {
        title: t.title.clone(),
        consumers: t
            .consumers
            .iter()
            .map(|c| StoredConsumer {
                agency: c.agency.as_str().to_owned(),
                grants: c
                    .grants
                    .iter()
                    .map(|g| StoredGrant {
                        role: g.role.as_str().to_owned(),
                        record_class: g.record_class.as_str().to_owned(),
                        fields: g.fields.iter().cloned().collect(),
                    })
                    .collect(),
            })
            .collect(),
        record_classes: t
            .record_classes
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        purposes: t.purposes.iter().map(|p| p.code().to_owned()).collect(),
        lawful_bases: t
            .lawful_bases
            .iter()
            .map(|b| StoredBasis {
                code: b.code.code().to_owned(),
                reference: b.reference.clone(),
            })
            .collect(),
        consent: t.consent.code().to_owned(),
        covers_sealed: t.covers_sealed,
        valid_from: micros(t.valid_from),
        valid_until: micros(t.valid_until),
        review_date: t.review_date,
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("agreement {what} {value:?}"))
}

fn class(value: &str) -> Result<RecordClassId, StoreError> {
    RecordClassId::parse(value).map_err(|_| corrupt("record class", value))
}

fn terms_from(s: StoredTerms, provider: &str) -> Result<AgreementTerms, StoreError> {
    let consumers = s
        .consumers
        .into_iter()
        .map(|c| {
            let grants = c
                .grants
                .into_iter()
                .map(|g| {
                    Ok(FieldGrant {
                        role: Role::parse(&g.role).map_err(|_| corrupt("role", &g.role))?,
                        record_class: class(&g.record_class)?,
                        fields: g.fields.into_iter().collect(),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(ConsumerTerms {
                agency: agency_code(&c.agency)?,
                grants,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(AgreementTerms {
        title: s.title,
        provider: agency_code(provider)?,
        consumers,
        record_classes: s
            .record_classes
            .iter()
            .map(|c| class(c))
            .collect::<Result<_, _>>()?,
        purposes: s
            .purposes
            .iter()
            .map(|p| Purpose::from_code(p).ok_or_else(|| corrupt("purpose", p)))
            .collect::<Result<_, _>>()?,
        lawful_bases: s
            .lawful_bases
            .into_iter()
            .map(|b| {
                Ok(LawfulBasis {
                    code: LawfulBasisCode::from_code(&b.code)
                        .ok_or_else(|| corrupt("lawful basis", &b.code))?,
                    reference: b.reference,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        consent: ConsentRequirement::from_code(&s.consent)
            .ok_or_else(|| corrupt("consent requirement", &s.consent))?,
        covers_sealed: s.covers_sealed,
        valid_from: time(s.valid_from)?,
        valid_until: time(s.valid_until)?,
        review_date: s.review_date,
    })
}

/// The columns [`agreement_from`] reads.
pub(super) const COLUMNS: &str = "id, version, provider, terms, status, approvals, suspension, \
     created_by, create_time, update_time, revision";

/// An agreement version from a row of `agreements`.
pub(super) fn agreement_from(row: &AnyRow) -> Result<Agreement, StoreError> {
    let provider: String = row.try_get("provider")?;
    let status: String = row.try_get("status")?;
    let approvals: Vec<StoredApproval> = from_json(&row.try_get::<String, _>("approvals")?)?;
    let suspension: Option<String> = row.try_get("suspension")?;
    let suspension = match suspension {
        None => None,
        Some(text) => {
            let s: StoredSuspension = from_json(&text)?;
            Some(Suspension {
                agency: agency_code(&s.agency)?,
                principal: s.principal,
                time: time(s.time)?,
                reason: s.reason,
            })
        }
    };
    Ok(Agreement {
        id: AgreementId::from_stored(row.try_get("id")?),
        version: row.try_get("version")?,
        terms: terms_from(from_json(&row.try_get::<String, _>("terms")?)?, &provider)?,
        status: AgreementStatus::from_code(&status).ok_or_else(|| corrupt("status", &status))?,
        approvals: approvals
            .into_iter()
            .map(|a| {
                Ok(Approval {
                    agency: agency_code(&a.agency)?,
                    principal: a.principal,
                    time: time(a.time)?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        suspension,
        created_by: agency_code(&row.try_get::<String, _>("created_by")?)?,
        create_time: time(row.try_get("create_time")?)?,
        update_time: time(row.try_get("update_time")?)?,
        revision: row.try_get("revision")?,
    })
}

fn stored_approvals(a: &Agreement) -> Result<String, StoreError> {
    json(
        &a.approvals
            .iter()
            .map(|p| StoredApproval {
                agency: p.agency.as_str().to_owned(),
                principal: p.principal.clone(),
                time: micros(p.time),
            })
            .collect::<Vec<_>>(),
    )
}

fn stored_suspension(a: &Agreement) -> Result<Option<String>, StoreError> {
    a.suspension
        .as_ref()
        .map(|s| {
            json(&StoredSuspension {
                agency: s.agency.as_str().to_owned(),
                principal: s.principal.clone(),
                time: micros(s.time),
                reason: s.reason.clone(),
            })
        })
        .transpose()
}

async fn advance_version(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("UPDATE policy_state SET agreements_version = agreements_version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Inserts a new agreement version with its parties.
pub(super) async fn insert(tx: &mut Tx, a: &Agreement) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO agreements (id, version, provider, terms, status, approvals, suspension, \
         created_by, create_time, update_time, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(a.id.as_str())
    .bind(a.version)
    .bind(a.terms.provider.as_str())
    .bind(json(&stored_terms(&a.terms))?)
    .bind(a.status.code())
    .bind(stored_approvals(a)?)
    .bind(stored_suspension(a)?)
    .bind(a.created_by.as_str())
    .bind(micros(a.create_time))
    .bind(micros(a.update_time))
    .bind(a.revision)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "{} already exists: another change made it first",
            a.version_name()
        )));
    }
    for party in a.terms.parties() {
        sqlx::query(
            "INSERT INTO agreement_parties (agency, agreement_id, version) VALUES ($1, $2, $3)",
        )
        .bind(party.as_str())
        .bind(a.id.as_str())
        .bind(a.version)
        .execute(&mut *tx)
        .await?;
    }
    advance_version(tx).await
}

/// Stores a lifecycle step of a version if it is still at
/// `expected_revision`.
pub(super) async fn update(
    tx: &mut Tx,
    a: &Agreement,
    expected_revision: i64,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE agreements SET status = $1, approvals = $2, suspension = $3, update_time = $4, \
         revision = $5 WHERE id = $6 AND version = $7 AND revision = $8",
    )
    .bind(a.status.code())
    .bind(stored_approvals(a)?)
    .bind(stored_suspension(a)?)
    .bind(micros(a.update_time))
    .bind(a.revision)
    .bind(a.id.as_str())
    .bind(a.version)
    .bind(expected_revision)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::StaleEtag {
            given: format!("{}.{expected_revision}", a.version),
            current: "a later state".to_owned(),
        });
    }
    advance_version(tx).await
}

pub(super) async fn agreement(
    db: &AnyPool,
    id: &AgreementId,
    version: Option<i64>,
) -> Result<Option<Agreement>, StoreError> {
    let sql = format!(
        "SELECT {} FROM agreements WHERE id = $1 AND ($2 = 0 OR version = $2) \
         ORDER BY version DESC LIMIT 1",
        COLUMNS
    );
    sqlx::query(&sql)
        .bind(id.as_str())
        .bind(version.unwrap_or(0))
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(agreement_from)
        .transpose()
}

pub(super) async fn agreement_versions(
    db: &AnyPool,
    id: &AgreementId,
) -> Result<Vec<Agreement>, StoreError> {
    let sql = format!(
        "SELECT {} FROM agreements WHERE id = $1 ORDER BY version",
        COLUMNS
    );
    sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_all(db)
        .await?
        .iter()
        .map(agreement_from)
        .collect()
}

pub(super) async fn agreements_of(
    db: &AnyPool,
    agency: &AgencyCode,
    after: After<String>,
    n: u32,
) -> Result<Vec<Agreement>, StoreError> {
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
    let sql = format!(
        "SELECT {} FROM agreements a JOIN agreement_parties p \
         ON p.agreement_id = a.id AND p.version = a.version AND p.agency = $1 \
         WHERE a.version = (SELECT MAX(m.version) FROM agreements m WHERE m.id = a.id) \
         AND a.id > $2 ORDER BY a.id LIMIT $3",
        columns.join(", ")
    );
    let after = match after {
        After::Start => String::new(),
        After::Key(id) => id,
    };
    sqlx::query(&sql)
        .bind(agency.as_str())
        .bind(after)
        .bind(limit(n))
        .fetch_all(db)
        .await?
        .iter()
        .map(agreement_from)
        .collect()
}

pub(super) async fn live_agreements(db: &AnyPool) -> Result<Vec<Agreement>, StoreError> {
    let sql = format!(
        "SELECT {} FROM agreements WHERE status <> 'superseded' ORDER BY id, version",
        COLUMNS
    );
    sqlx::query(&sql)
        .fetch_all(db)
        .await?
        .iter()
        .map(agreement_from)
        .collect()
}

pub(super) async fn policy_versions(db: &AnyPool) -> Result<PolicyVersions, StoreError> {
    let row =
        sqlx::query("SELECT agreements_version, consents_version FROM policy_state WHERE id = 1")
            .fetch_one(db)
            .await?;
    Ok(PolicyVersions {
        agreements: row.try_get("agreements_version")?,
        consents: row.try_get("consents_version")?,
    })
}

/// Notes that version `a`'s period has ended, with the entry at ledger
/// `index`; once only.
pub(super) async fn note_expired(tx: &mut Tx, a: &Agreement, index: i64) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO agreement_expiries (agreement_id, version, entry_idx) VALUES ($1, $2, $3) \
         ON CONFLICT (agreement_id, version) DO NOTHING",
    )
    .bind(a.id.as_str())
    .bind(a.version)
    .bind(index)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "the expiry of {} was already noted",
            a.version_name()
        )));
    }
    Ok(())
}

/// The agreement versions whose expiry has been noted.
pub(super) async fn noted_expiries(db: &AnyPool) -> Result<Vec<(AgreementId, i64)>, StoreError> {
    let rows = sqlx::query("SELECT agreement_id, version FROM agreement_expiries")
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                AgreementId::from_stored(r.try_get("agreement_id")?),
                r.try_get("version")?,
            ))
        })
        .collect()
}
