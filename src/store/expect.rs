//! What a decision relied on, checked again when its entry commits.
//!
//! A call may decide on state it holds in memory (agencies, agreements,
//! consents, records) rather than read it afresh. It then commits its entry
//! with [`Expect`]ations naming what it relied on, and the write path checks
//! them inside the batch's transaction, under the ledger head's lock, after
//! every change committed before it (by this process or any other) and
//! after the changes of the jobs ahead of it in the same batch. A job whose
//! expectations no longer hold is not committed: it gets
//! [`StoreError::Stale`], writes nothing and has no entry, so nothing
//! decided on it can be released. A batch reads the counters and the
//! agencies, subjects and records its jobs name in one statement, after
//! the lock, in the same trip as the lock (on PostgreSQL as a statement of
//! its own after the lock's: a statement's snapshot there is taken when it
//! starts, before it waits for the row lock, so the lock statement itself
//! could miss the very commit it waited for). A job of the batch that changes
//! data updates what was read by what it wrote (a record's new version, an
//! agency's status); only a change whose effect on it is not known that
//! way (agreements, consents, credentials, seals) has it read again.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::codec::{Tx, code, json};
use super::records::SEALED;
use super::simple::{Literal, Named, Prepared};
use super::sql::Backend;
use super::{PolicyVersions, StoreError, Write};
use crate::domain::{AgencyCode, AgencyStatus, RecordId, SubjectId};

/// One fact a decision relied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The agreements and consents are as of these counters.
    Policy(PolicyVersions),
    /// Certificate identities and token issuers are as of this counter.
    Registry(i64),
    /// The agency is registered and active.
    AgencyActive(AgencyCode),
    /// The subject is registered and not merged into another.
    Subject(SubjectId),
    /// The record exists, is about `subject` (a merge moves records to
    /// another subject, whose consents then apply), its current version
    /// is `current` (when the decision was about the current version) and
    /// it is sealed or not, as `sealed` says.
    Record {
        id: RecordId,
        subject: SubjectId,
        current: Option<i64>,
        sealed: bool,
    },
}

/// The state a batch's expectations are checked against.
#[derive(Debug, Default)]
pub(super) struct Seen {
    policy: PolicyVersions,
    registry: i64,
    /// Each agency asked about that is registered, with its status.
    agencies: HashMap<String, AgencyStatus>,
    /// Each subject asked about that is registered and not merged.
    subjects: HashSet<String>,
    /// Each record asked about that exists, as it is now.
    records: HashMap<String, Current>,
}

/// One row of the statement a [`StateQuery`] runs, whichever driver read
/// it (see [`COUNTER_ROWS`] for what the columns hold on the counters'
/// rows).
pub(super) struct StateRow {
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) status: String,
    pub(super) version: i64,
    pub(super) etag: String,
    pub(super) sealed: i64,
}

impl StateRow {
    /// The row as sqlx read it.
    pub(super) fn of(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            kind: row.try_get("kind")?,
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            version: row.try_get("version")?,
            etag: row.try_get("etag")?,
            sealed: row.try_get("sealed")?,
        })
    }
}

/// A record's current version, as the batch's checks see it.
#[derive(Debug)]
struct Current {
    version: i64,
    etag: String,
    subject: String,
    /// Whether it is sealed; `None` for a record created in the batch,
    /// whose seal (by its subject's) is not known here: a decision relying
    /// on it is made again.
    sealed: Option<bool>,
}

/// The counters as rows of the statement that reads what a batch's
/// checks name (its first part): the policy counters in the `version` and
/// `sealed` columns, the registry's in `version`. (A record's row holds
/// its subject in the `status` column.)
const COUNTER_ROWS: &str = "\
    SELECT 'policy' AS kind, '' AS name, '' AS status, agreements_version AS version, \
    '' AS etag, consents_version AS sealed FROM policy_state WHERE id = 1 \
    UNION ALL \
    SELECT 'registry', '', '', registry_version, '', 0 FROM policy_state WHERE id = 1 \
    UNION ALL ";

/// The values of the JSON array parameter `$n`, as rows of one column.
fn listed(backend: Backend, n: u8) -> String {
    match backend {
        Backend::Postgres => format!("SELECT json_array_elements_text(${n}::json)"),
        Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
    }
}

/// The text of the statement that reads the state a batch's checks need
/// on `backend`: the same for every batch, so built once per process.
fn state_text(backend: Backend) -> &'static str {
    static TEXTS: LazyLock<[String; 2]> = LazyLock::new(|| {
        [Backend::Sqlite, Backend::Postgres].map(|backend| {
            format!(
                "{COUNTER_ROWS}SELECT 'agency' AS kind, code AS name, status, 0 AS version, '' AS etag, 0 AS sealed \
                 FROM agencies WHERE code IN ({}) \
                 UNION ALL \
                 SELECT 'subject', id, '', 0, '', 0 FROM subjects WHERE merged_into IS NULL AND id IN ({}) \
                 UNION ALL \
                 SELECT 'record', r.id, r.subject_id, r.version, r.etag, {SEALED} FROM records r WHERE r.id IN ({})",
                listed(backend, 1),
                listed(backend, 2),
                listed(backend, 3)
            )
        })
    });
    match backend {
        Backend::Sqlite => &TEXTS[0],
        Backend::Postgres => &TEXTS[1],
    }
}

/// The statement that reads the state a batch's checks need, and its
/// parameters: the agencies, subjects and records named, as JSON lists
/// (`$1` to `$3`). Its text depends only on the backend, so it is
/// prepared once per connection.
pub(super) struct StateQuery {
    pub(super) sql: &'static str,
    pub(super) params: [String; 3],
}

impl StateQuery {
    /// The statement for what `jobs` (their expectations and writes)
    /// name (in their expectations, and in the record writes checked
    /// here: see [`Seen::admit`]).
    pub(super) fn of<'e>(
        backend: Backend,
        jobs: impl Iterator<Item = (&'e [Expect], &'e [Write])>,
    ) -> Result<Self, StoreError> {
        let (mut agencies, mut subjects, mut records) = (Vec::new(), Vec::new(), Vec::new());
        for (expects, writes) in jobs {
            for e in expects {
                match e {
                    Expect::AgencyActive(code) => agencies.push(code.as_str()),
                    Expect::Subject(id) => subjects.push(id.as_str()),
                    Expect::Record { id, .. } => records.push(id.as_str()),
                    Expect::Policy(_) | Expect::Registry(_) => {}
                }
            }
            for w in writes {
                match w {
                    Write::InsertRecord { record, .. } => {
                        agencies.push(record.controller.as_str());
                        subjects.push(record.subject.as_str());
                    }
                    Write::UpdateRecord { record, .. } => records.push(record.id.as_str()),
                    _ => {}
                }
            }
        }
        Ok(Self {
            sql: state_text(backend),
            params: [json(&agencies)?, json(&subjects)?, json(&records)?],
        })
    }

    /// On PostgreSQL, appends to `sql` the statement as an `EXECUTE` of its
    /// text prepared on the connection (see [`super::simple`]), with its
    /// parameters written in.
    pub(super) fn execute(
        &self,
        sql: &mut String,
        prepared: &mut Prepared,
    ) -> Result<(), StoreError> {
        let statement = Named {
            name: "accord_state",
            types: "json, json, json",
            text: self.sql,
        };
        let values = self.params.each_ref().map(|p| Literal::Text(p));
        prepared.execute(sql, statement, &values)
    }

    /// `sql`, the statement's text or a text of several statements that
    /// holds it after statements without parameters, with its parameters
    /// bound.
    pub(super) fn bound<'q>(
        &'q self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        self.params
            .iter()
            .fold(sqlx::query(sql), |q, p| q.bind(p.as_str()))
    }
}

impl Seen {
    /// Reads, in `tx` and one statement, the counters and what `jobs`
    /// (their expectations and writes) name.
    pub(super) async fn read<'e>(
        tx: &mut Tx,
        backend: Backend,
        jobs: impl Iterator<Item = (&'e [Expect], &'e [Write])>,
    ) -> Result<Self, StoreError> {
        let query = StateQuery::of(backend, jobs)?;
        let rows = query.bound(query.sql).fetch_all(&mut *tx).await?;
        Self::from_rows(rows.iter().map(StateRow::of))
    }

    /// The state in `rows`, read by a [`StateQuery`]: one row per agency,
    /// subject and record found, and one per counter kind.
    pub(super) fn from_rows(
        rows: impl IntoIterator<Item = Result<StateRow, StoreError>>,
    ) -> Result<Self, StoreError> {
        let mut seen = Self::default();
        let mut policy_read = false;
        for row in rows {
            let row = row?;
            match row.kind.as_str() {
                "policy" => {
                    seen.policy = PolicyVersions {
                        agreements: row.version,
                        consents: row.sealed,
                    };
                    policy_read = true;
                }
                "registry" => seen.registry = row.version,
                "agency" => {
                    let status = code(
                        AgencyStatus::from_code(&row.status),
                        "agency status",
                        &row.status,
                    )?;
                    seen.agencies.insert(row.name, status);
                }
                "subject" => {
                    seen.subjects.insert(row.name);
                }
                _ => {
                    let current = Current {
                        version: row.version,
                        etag: row.etag,
                        subject: row.status,
                        sealed: Some(row.sealed != 0),
                    };
                    seen.records.insert(row.name, current);
                }
            }
        }
        if !policy_read {
            return Err(StoreError::Corrupt(
                "the policy counters are missing".to_owned(),
            ));
        }
        Ok(seen)
    }

    /// Whether the record writes `writes` can be written as rows of the
    /// batch's append, without statements of their own: their agencies,
    /// subjects and records exist and each changed record's etag is the
    /// one expected. A write that cannot be refuses its job alone (nothing
    /// of it was written).
    pub(super) fn admit(&self, writes: &[Write]) -> Result<(), StoreError> {
        for w in writes {
            match w {
                Write::InsertRecord { record, .. } => {
                    if !self.agencies.contains_key(record.controller.as_str()) {
                        return Err(StoreError::NotFound(record.controller.resource_name()));
                    }
                    if !self.subjects.contains(record.subject.as_str()) {
                        return Err(StoreError::NotFound(record.subject.resource_name()));
                    }
                }
                Write::UpdateRecord {
                    record,
                    expected_etag,
                    ..
                } => match self.records.get(record.id.as_str()) {
                    None => return Err(StoreError::NotFound(record.id.resource_name())),
                    Some(current) if current.etag != *expected_etag => {
                        return Err(StoreError::StaleEtag {
                            given: expected_etag.clone(),
                            current: current.etag.clone(),
                        });
                    }
                    Some(_) => {}
                },
                _ => {
                    return Err(StoreError::Corrupt(
                        "only record writes are written as rows".to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Takes in the effect of `writes`, committed by a job of the batch
    /// after this state was read; `None` when their effect on it is not
    /// known here, so that it must be read again.
    pub(super) fn after(mut self, writes: &[Write]) -> Option<Self> {
        for write in writes {
            match write {
                Write::UpdateRecord { record, .. } => {
                    if let Some(current) = self.records.get_mut(record.id.as_str()) {
                        current.version = record.version;
                        current.etag.clone_from(&record.etag);
                    }
                }
                Write::InsertAgency(agency) | Write::UpdateAgency { agency, .. } => {
                    self.agencies
                        .insert(agency.code.as_str().to_owned(), agency.status);
                }
                Write::InsertSubject(subject) => {
                    self.subjects.insert(subject.id.as_str().to_owned());
                }
                Write::InsertRecord { record, .. } => {
                    let current = Current {
                        version: record.version,
                        etag: record.etag.clone(),
                        subject: record.subject.as_str().to_owned(),
                        sealed: None,
                    };
                    self.records.insert(record.id.as_str().to_owned(), current);
                }
                Write::InsertRecordClass(_)
                | Write::CheckBlockPopulation { .. }
                | Write::LinkIdentifier { .. }
                | Write::UnlinkIdentifier { .. }
                | Write::SetMeta { .. }
                | Write::RaiseAlert(_)
                | Write::AcknowledgeAlert { .. }
                | Write::InsertSubscription(_)
                | Write::DeleteSubscription { .. }
                | Write::InsertReview(_)
                | Write::AcknowledgeReview { .. }
                | Write::MarkReviewOverdue(_)
                | Write::NoteAgreementExpired(_)
                | Write::InsertPossibleDuplicate(_)
                | Write::ResolvePossibleDuplicate { .. } => {}
                Write::Seal { .. }
                | Write::Unseal { .. }
                | Write::InsertAgreement(_)
                | Write::UpdateAgreement { .. }
                | Write::InsertCertificateIdentity(_)
                | Write::RevokeCertificateIdentity { .. }
                | Write::InsertTokenIssuer(_)
                | Write::RemoveTokenIssuer(_)
                | Write::InsertConsent(_)
                | Write::WithdrawConsent { .. }
                | Write::MergeSubjects(_)
                | Write::UnmergeSubjects(_) => return None,
            }
        }
        Some(self)
    }

    /// Whether every one of `expects` holds; if not, what moved.
    pub(super) fn check(&self, expects: &[Expect]) -> Result<(), StoreError> {
        for e in expects {
            let holds = match e {
                Expect::Policy(v) => *v == self.policy,
                Expect::Registry(v) => *v == self.registry,
                Expect::AgencyActive(code) => {
                    self.agencies.get(code.as_str()) == Some(&AgencyStatus::Active)
                }
                Expect::Subject(id) => self.subjects.contains(id.as_str()),
                Expect::Record {
                    id,
                    subject,
                    current,
                    sealed,
                } => self.records.get(id.as_str()).is_some_and(|r| {
                    r.sealed == Some(*sealed)
                        && r.subject == subject.as_str()
                        && current.is_none_or(|c| c == r.version)
                }),
            };
            if !holds {
                return Err(StoreError::Stale(describe(e)));
            }
        }
        Ok(())
    }
}

/// What moved, for the log and the caller's retry.
fn describe(e: &Expect) -> String {
    match e {
        Expect::Policy(_) => "agreements or consents changed".to_owned(),
        Expect::Registry(_) => "the registry of credentials changed".to_owned(),
        Expect::AgencyActive(code) => format!("agency {} changed", code.resource_name()),
        Expect::Subject(id) => format!("{} is not registered, or was merged", id.resource_name()),
        Expect::Record { id, .. } => format!("{} changed", id.resource_name()),
    }
}
