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
//! decided on it can be released. A batch reads what its jobs expect with
//! one statement per kind, and again only after a job of its own changed
//! data.

use std::collections::HashMap;

use sqlx::Row;

use super::codec::Tx;
use super::records::SEALED;
use super::sql::Backend;
use super::{PolicyVersions, StoreError};
use crate::domain::{AgencyCode, AgencyStatus, RecordId};

/// One fact a decision relied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The agreements and consents are as of these counters.
    Policy(PolicyVersions),
    /// Certificate identities and token issuers are as of this counter.
    Registry(i64),
    /// The agency is registered and active.
    AgencyActive(AgencyCode),
    /// The record exists, its current version is `current` (when the
    /// decision was about the current version) and it is sealed or not,
    /// as `sealed` says.
    Record {
        id: RecordId,
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
    /// Each record asked about that exists: its current version and
    /// whether it is sealed.
    records: HashMap<String, (i64, bool)>,
}

/// The values of a JSON array parameter `$1`, as rows of one column.
fn listed(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "SELECT json_array_elements_text($1::json)",
        Backend::Sqlite => "SELECT value FROM json_each($1)",
    }
}

impl Seen {
    /// Reads, in `tx`, what `expects` are about.
    pub(super) async fn read<'e>(
        tx: &mut Tx<'_>,
        backend: Backend,
        expects: impl Iterator<Item = &'e Expect>,
    ) -> Result<Self, StoreError> {
        let (mut agencies, mut records) = (Vec::new(), Vec::new());
        for e in expects {
            match e {
                Expect::AgencyActive(code) => agencies.push(code.as_str()),
                Expect::Record { id, .. } => records.push(id.as_str()),
                Expect::Policy(_) | Expect::Registry(_) => {}
            }
        }
        let row = sqlx::query(
            "SELECT agreements_version, consents_version, registry_version \
             FROM policy_state WHERE id = 1",
        )
        .fetch_one(&mut **tx)
        .await?;
        let mut seen = Self {
            policy: PolicyVersions {
                agreements: row.try_get("agreements_version")?,
                consents: row.try_get("consents_version")?,
            },
            registry: row.try_get("registry_version")?,
            ..Self::default()
        };
        if !agencies.is_empty() {
            let sql = format!(
                "SELECT code, status FROM agencies WHERE code IN ({})",
                listed(backend)
            );
            let rows = sqlx::query(&sql)
                .bind(super::codec::json(&agencies)?)
                .fetch_all(&mut **tx)
                .await?;
            for row in rows {
                let status: String = row.try_get("status")?;
                let status =
                    super::codec::code(AgencyStatus::from_code(&status), "agency status", &status)?;
                seen.agencies.insert(row.try_get("code")?, status);
            }
        }
        if !records.is_empty() {
            let sql = format!(
                "SELECT r.id, r.version, {SEALED} AS sealed FROM records r WHERE r.id IN ({})",
                listed(backend)
            );
            let rows = sqlx::query(&sql)
                .bind(super::codec::json(&records)?)
                .fetch_all(&mut **tx)
                .await?;
            for row in rows {
                let sealed = row.try_get::<i64, _>("sealed")? != 0;
                seen.records
                    .insert(row.try_get("id")?, (row.try_get("version")?, sealed));
            }
        }
        Ok(seen)
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
                Expect::Record {
                    id,
                    current,
                    sealed,
                } => self
                    .records
                    .get(id.as_str())
                    .is_some_and(|(v, s)| s == sealed && current.is_none_or(|c| c == *v)),
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
        Expect::Record { id, .. } => format!("{} changed", id.resource_name()),
    }
}
