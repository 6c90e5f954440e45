//! Data sharing agreements: proposing, approving, suspending, reinstating
//! and revising them, each step by a party's IG lead.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::agreement::{
    Agreement, AgreementId, AgreementStatus, AgreementTerms, LifecycleError,
};
use crate::domain::{AgencyStatus, Purpose, Role, Violations, check_text};
use crate::ledger::{DisclosureCount, EntryFilter};
use crate::store::Write;

/// How an agreement was used over a period: its disclosures counted by
/// consumer agency, purpose and role, as far as the caller may see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementUsage {
    pub agreement: AgreementId,
    /// By agency, then purpose, then role.
    pub rows: Vec<UsageRow>,
    /// Disclosures in all (each once, whatever its roles).
    pub total: u64,
}

/// One count of [`AgreementUsage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The consumer's agency code.
    pub agency: String,
    pub purpose: Option<Purpose>,
    /// A role the agreement grants (to that consumer, in any version) that
    /// the callers held; empty when they held none of them.
    pub role: String,
    pub disclosures: u64,
}

/// `counts` by agency, purpose and granted role: a count whose callers held
/// several granted roles is added under each.
fn usage_rows(
    counts: &[DisclosureCount],
    granted: &HashMap<String, HashSet<String>>,
) -> Vec<UsageRow> {
    let mut rows: BTreeMap<(String, &'static str, String), (Option<Purpose>, u64)> =
        BTreeMap::new();
    for c in counts {
        let roles_granted = granted.get(&c.agency);
        let mut roles: Vec<&str> = c
            .roles
            .iter()
            .map(String::as_str)
            .filter(|r| roles_granted.is_some_and(|g| g.contains(*r)))
            .collect();
        roles.sort_unstable();
        roles.dedup();
        if roles.is_empty() {
            roles.push("");
        }
        for role in roles {
            let key = (
                c.agency.clone(),
                c.purpose.map(Purpose::code).unwrap_or_default(),
                role.to_owned(),
            );
            let row = rows.entry(key).or_insert((c.purpose, 0));
            row.1 += c.disclosures;
        }
    }
    rows.into_iter()
        .map(|((agency, _, role), (purpose, disclosures))| UsageRow {
            agency,
            purpose,
            role,
            disclosures,
        })
        .collect()
}

impl From<LifecycleError> for ServiceError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::NotAParty { .. } => Self::denied("NOT_A_PARTY", e.to_string()),
            LifecycleError::WrongStatus { .. } => Self::Precondition {
                code: "AGREEMENT_WRONG_STATE",
                message: e.to_string(),
            },
            LifecycleError::AlreadyApproved { .. } => Self::Precondition {
                code: "ALREADY_APPROVED",
                message: e.to_string(),
            },
        }
    }
}

/// A lifecycle request's optional etag: when given, it must be current.
fn check_etag(agreement: &Agreement, etag: &str) -> Result<(), ServiceError> {
    if etag.is_empty() || etag == agreement.etag() {
        Ok(())
    } else {
        Err(ServiceError::StaleEtag(format!(
            "etag {etag:?} is not the current one of {}: read it again",
            agreement.version_name()
        )))
    }
}

impl Services {
    /// Checks terms against the registry and the catalogue: every party
    /// registered and active, every class in the catalogue, every granted
    /// field one of its class's, the period not over.
    async fn check_terms(&self, call: &Call, terms: &AgreementTerms) -> Result<(), ServiceError> {
        terms.check("agreement")?;
        let mut v = Violations::new();
        if terms.valid_until <= call.time {
            v.add("agreement.valid_until", "must be in the future");
        }
        let parties = std::iter::once(("agreement.provider".to_owned(), &terms.provider)).chain(
            terms
                .consumers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("agreement.consumers[{i}].agency"), &c.agency)),
        );
        for (field, code) in parties {
            match self.store.agency(code).await? {
                None => v.add(field, format!("{} is not registered", code.resource_name())),
                Some(a) if a.status == AgencyStatus::Suspended => {
                    v.add(field, format!("{} is suspended", code.resource_name()));
                }
                Some(_) => {}
            }
        }
        let mut classes = std::collections::HashMap::new();
        for (i, id) in terms.record_classes.iter().enumerate() {
            match self.store.record_class(id).await? {
                None => v.add(
                    format!("agreement.record_classes[{i}]"),
                    format!("{} is not in the catalogue", id.resource_name()),
                ),
                Some(class) => {
                    classes.insert(id.clone(), class);
                }
            }
        }
        for (i, consumer) in terms.consumers.iter().enumerate() {
            for (j, grant) in consumer.grants.iter().enumerate() {
                let Some(class) = classes.get(&grant.record_class) else {
                    continue;
                };
                for field in &grant.fields {
                    if !class.fields.iter().any(|f| &f.name == field) {
                        v.add(
                            format!("agreement.consumers[{i}].grants[{j}].fields"),
                            format!("{field:?} is not a field of {}", class.id),
                        );
                    }
                }
            }
        }
        Ok(v.into_result(|| Some(()))?)
    }

    /// Reads the latest version of an agreement the caller's agency is a
    /// party to; other agencies are told it does not exist.
    async fn party_agreement(
        &self,
        call: &Call,
        id: &AgreementId,
        version: Option<i64>,
    ) -> Result<Agreement, ServiceError> {
        let not_found = || {
            ServiceError::NotFound(match version {
                Some(v) => format!("version {v} of {}", id.resource_name()),
                None => id.resource_name(),
            })
        };
        let agreement = self
            .store
            .agreement(id, version)
            .await?
            .ok_or_else(not_found)?;
        call.note_records(vec![agreement.version_name()]);
        call.note_controller(agreement.terms.provider.as_str().to_owned());
        if agreement.terms.is_party(&call.caller.agency) {
            Ok(agreement)
        } else {
            Err(not_found())
        }
    }

    /// Proposes a new agreement as a draft; the caller's agency must be a
    /// party.
    pub async fn create_agreement(
        &self,
        call: &Call,
        terms: AgreementTerms,
    ) -> Result<Audited<Agreement>, ServiceError> {
        call.note_controller(terms.provider.as_str().to_owned());
        call.require_role(Role::IG_LEAD)?;
        if !terms.is_party(&call.caller.agency) {
            return Err(ServiceError::denied(
                "NOT_A_PARTY",
                format!(
                    "agency {} can only propose agreements it is a party to",
                    call.caller.agency
                ),
            ));
        }
        self.check_terms(call, &terms).await?;
        let agreement = Agreement::draft(
            AgreementId::generate(),
            1,
            terms,
            call.caller.agency.clone(),
            call.time,
        );
        call.note_records(vec![agreement.version_name()]);
        self.commit(
            call,
            vec![Write::InsertAgreement(agreement.clone())],
            agreement,
        )
        .await
    }

    /// Proposes new terms as a new draft version. The version in force
    /// stays in force until the new one is approved; an earlier draft
    /// still awaiting approval is abandoned (superseded).
    pub async fn revise_agreement(
        &self,
        call: &Call,
        id: &AgreementId,
        terms: AgreementTerms,
    ) -> Result<Audited<Agreement>, ServiceError> {
        call.require_role(Role::IG_LEAD)?;
        let latest = self.party_agreement(call, id, None).await?;
        latest.check_revisable(&call.caller.agency, call.time)?;
        if terms.provider != latest.terms.provider {
            return Err(Violations::one(
                "agreement.provider",
                format!(
                    "cannot change from {}: propose a new agreement instead",
                    latest.terms.provider.resource_name()
                ),
            )
            .into());
        }
        if !terms.is_party(&call.caller.agency) {
            return Err(Violations::one(
                "agreement.consumers",
                format!(
                    "must keep agency {} (the caller's) as a party",
                    call.caller.agency
                ),
            )
            .into());
        }
        self.check_terms(call, &terms).await?;
        let next = Agreement::draft(
            id.clone(),
            latest.version + 1,
            terms,
            call.caller.agency.clone(),
            call.time,
        );
        call.note_records(vec![latest.version_name(), next.version_name()]);
        let mut writes = vec![Write::InsertAgreement(next.clone())];
        if latest.status == AgreementStatus::Draft {
            writes.push(Write::UpdateAgreement {
                agreement: latest.superseded(call.time),
                expected_revision: latest.revision,
            });
        }
        self.commit(call, writes, next).await
    }

    /// Records the caller's agency's approval of the latest version, a
    /// draft. The last approval makes it active and supersedes the
    /// version it replaces.
    pub async fn approve_agreement(
        &self,
        call: &Call,
        id: &AgreementId,
        version: i64,
        etag: &str,
    ) -> Result<Audited<Agreement>, ServiceError> {
        call.require_role(Role::IG_LEAD)?;
        let latest = self.party_agreement(call, id, None).await?;
        if version != latest.version {
            return Err(ServiceError::Precondition {
                code: "NOT_LATEST_VERSION",
                message: format!(
                    "only the latest version of {} ({}) can be approved",
                    id.resource_name(),
                    latest.version
                ),
            });
        }
        check_etag(&latest, etag)?;
        let approved = latest.approve(
            &call.caller.agency,
            call.caller.principal.as_str(),
            call.time,
        )?;
        let mut writes = vec![Write::UpdateAgreement {
            agreement: approved.clone(),
            expected_revision: latest.revision,
        }];
        if approved.status == AgreementStatus::Active {
            for earlier in self.store.agreement_versions(id).await? {
                let replaced = matches!(
                    earlier.status,
                    AgreementStatus::Active | AgreementStatus::Suspended
                );
                if earlier.version < approved.version && replaced {
                    writes.push(Write::UpdateAgreement {
                        agreement: earlier.superseded(call.time),
                        expected_revision: earlier.revision,
                    });
                }
            }
        }
        self.commit(call, writes, approved).await
    }

    /// The version of an agreement whose stored state is `status`.
    async fn version_in(
        &self,
        call: &Call,
        id: &AgreementId,
        status: AgreementStatus,
        step: &'static str,
    ) -> Result<Agreement, ServiceError> {
        let versions = self.store.agreement_versions(id).await?;
        if !versions
            .iter()
            .any(|a| a.terms.is_party(&call.caller.agency))
        {
            return Err(ServiceError::NotFound(id.resource_name()));
        }
        let found = versions
            .into_iter()
            .rev()
            .find(|a| a.status == status)
            .ok_or_else(|| ServiceError::Precondition {
                code: "AGREEMENT_WRONG_STATE",
                message: format!(
                    "{} has no {} version to be {step}",
                    id.resource_name(),
                    status.code()
                ),
            })?;
        call.note_controller(found.terms.provider.as_str().to_owned());
        call.note_records(vec![found.version_name()]);
        Ok(found)
    }

    /// Suspends the active version at once.
    pub async fn suspend_agreement(
        &self,
        call: &Call,
        id: &AgreementId,
        reason: &str,
        etag: &str,
    ) -> Result<Audited<Agreement>, ServiceError> {
        call.require_role(Role::IG_LEAD)?;
        if let Err(e) = check_text(reason, 1, 500) {
            return Err(Violations::one("reason", e).into());
        }
        let active = self
            .version_in(call, id, AgreementStatus::Active, "suspended")
            .await?;
        check_etag(&active, etag)?;
        let suspended = active.suspend(
            &call.caller.agency,
            call.caller.principal.as_str(),
            reason.trim(),
            call.time,
        )?;
        self.commit(
            call,
            vec![Write::UpdateAgreement {
                agreement: suspended.clone(),
                expected_revision: active.revision,
            }],
            suspended,
        )
        .await
    }

    /// Reinstates the suspended version.
    pub async fn reinstate_agreement(
        &self,
        call: &Call,
        id: &AgreementId,
        etag: &str,
    ) -> Result<Audited<Agreement>, ServiceError> {
        call.require_role(Role::IG_LEAD)?;
        let suspended = self
            .version_in(call, id, AgreementStatus::Suspended, "reinstated")
            .await?;
        check_etag(&suspended, etag)?;
        let reinstated = suspended.reinstate(&call.caller.agency, call.time)?;
        self.commit(
            call,
            vec![Write::UpdateAgreement {
                agreement: reinstated.clone(),
                expected_revision: suspended.revision,
            }],
            reinstated,
        )
        .await
    }

    /// Reads an agreement version the caller's agency is a party to.
    pub async fn get_agreement(
        &self,
        call: &Call,
        id: &AgreementId,
        version: Option<i64>,
    ) -> Result<Audited<Agreement>, ServiceError> {
        let agreement = self.party_agreement(call, id, version).await?;
        self.commit(call, vec![], agreement).await
    }

    /// How `id` was used within `[start, end)`: the disclosures under any
    /// of its versions that the caller's agency may see (its provider sees
    /// every consumer's, a consumer its own), for its auditors and IG
    /// leads.
    pub async fn agreement_usage(
        &self,
        call: &Call,
        id: &AgreementId,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Audited<AgreementUsage>, ServiceError> {
        call.require_any_role(&[Role::AUDITOR, Role::IG_LEAD])?;
        self.party_agreement(call, id, None).await?;
        let versions = self.store.agreement_versions(id).await?;
        let mut granted: HashMap<String, HashSet<String>> = HashMap::new();
        for version in &versions {
            for consumer in &version.terms.consumers {
                granted
                    .entry(consumer.agency.as_str().to_owned())
                    .or_default()
                    .extend(consumer.roles().into_iter().map(|r| r.as_str().to_owned()));
            }
        }
        let keys: Vec<String> = versions.iter().map(Agreement::version_name).collect();
        let filter = EntryFilter {
            start,
            end,
            visible_to: Some(call.caller.agency.as_str().to_owned()),
            ..EntryFilter::default()
        };
        let counts = self.store.disclosure_counts(&keys, &filter).await?;
        let usage = AgreementUsage {
            agreement: id.clone(),
            rows: usage_rows(&counts, &granted),
            total: counts.iter().map(|c| c.disclosures).sum(),
        };
        self.commit(call, vec![], usage).await
    }

    /// Lists the latest version of each agreement the caller's agency is
    /// a party to.
    pub async fn list_agreements(
        &self,
        call: &Call,
        req: &PageRequest,
    ) -> Result<Audited<Page<Agreement>>, ServiceError> {
        let paging = self.tokens.paging(call, "ListAgreements", req)?;
        let items = self
            .store
            .agreements_of(&call.caller.agency, paging.after(), paging.size() + 1)
            .await?;
        let page = paging.page(items, |a| a.id.as_str().to_owned());
        call.note_records(page.items.iter().map(Agreement::version_name).collect());
        call.note_controller(call.caller.agency.as_str().to_owned());
        self.commit(call, vec![], page).await
    }
}
