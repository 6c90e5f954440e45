//! Agreements as Cedar policies.
//!
//! Each active agreement version compiles to one `permit` policy per
//! (consumer agency, role): the principal must belong to the consumer and
//! hold the role, the record must be the provider's and of a class the role
//! has a field grant for, the purpose one the agreement permits, the moment
//! within its period, the record not sealed (unless the agreement covers
//! sealed records) and, if the agreement needs consent, consent given or
//! emergency access invoked. The policies are validated against
//! [`SCHEMA`] in strict mode and grouped by (consumer, provider), so that a
//! decision evaluates only the few policies that could apply to it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, RestrictedExpression, Schema, ValidationMode, Validator,
};
use chrono::{DateTime, Utc};

use crate::bounded::BoundedMap;
use crate::domain::agreement::{Agreement, ConsentRequirement};
use crate::domain::{AgencyCode, Caller, Purpose, RecordClassId, Role};

/// Accord's entities and the one action agreements grant, in Cedar schema
/// syntax. `now` is microseconds since the Unix epoch; `consent` is
/// `given`, `objected` or `none`.
pub const SCHEMA: &str = r#"
namespace Accord {
  entity Agency;
  entity Principal in [Agency] = { roles: Set<String> };
  entity Record = { controller: Agency, class: String, sealed: Bool };
  action read appliesTo {
    principal: [Principal],
    resource: [Record],
    context: { purpose: String, now: Long, consent: String, break_glass: Bool }
  };
}
"#;

/// The parsed [`SCHEMA`], or why it does not parse.
static PARSED_SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| e.to_string())
});

fn schema() -> Result<&'static Schema, String> {
    PARSED_SCHEMA.as_ref().map_err(Clone::clone)
}

/// Why the policies could not be built. Either is a defect in Accord, not
/// in the agreements: their terms are checked before they are stored.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("the Cedar schema does not parse: {0}")]
    Schema(String),
    #[error("policy {id} does not parse: {message}")]
    Parse { id: String, message: String },
    #[error("the policies of {pair} do not validate against the schema: {message}")]
    Invalid { pair: String, message: String },
}

/// Why a request could not be evaluated (a defect in Accord).
#[derive(Debug, thiserror::Error)]
#[error("the access request could not be put to Cedar: {0}")]
pub struct EvaluateError(String);

/// What one policy grants: its agreement version and the role it is for.
/// (Only the agreement's terms and name are read: they never change within
/// a version, so a grant stays true while the version's state changes.)
#[derive(Debug, Clone)]
pub struct PolicyGrant {
    pub agreement: Arc<Agreement>,
    pub role: Role,
}

type Pair = (AgencyCode, AgencyCode);

/// One parsed policy, the pair of agencies it is between and what it grants.
#[derive(Debug)]
struct ParsedPolicy {
    pair: Pair,
    id: PolicyId,
    policy: Policy,
    grant: PolicyGrant,
}

/// The policies between one consumer and one provider, validated, and
/// the decisions already made with them.
#[derive(Debug)]
struct PairPolicies {
    set: PolicySet,
    grants: HashMap<PolicyId, PolicyGrant>,
    /// The roles the policies name: no other role of a caller's changes a
    /// decision.
    roles: BTreeSet<Role>,
    /// Every moment (microseconds) at which one of the policies starts or
    /// stops applying, in order: between two of them every comparison of
    /// `context.now` the policies make has the same outcome.
    boundaries: Vec<i64>,
    /// Decisions made, by everything the policies read; see
    /// [`Decided`].
    decided: BoundedMap<Decided, Vec<PolicyGrant>>,
}

/// Everything a pair's policies read of a request, so that two requests
/// with the same `Decided` are decided alike: the caller's roles among
/// those the policies name, the record's class and seal, the purpose, the
/// consent, emergency access, and which of the periods between the
/// policies' boundaries the moment falls in. The pair fixes the caller's
/// agency and the record's controller; the principal's own identity and
/// the record's are not read by any policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Decided {
    roles: Vec<Role>,
    class: RecordClassId,
    sealed: bool,
    purpose: Purpose,
    consent: &'static str,
    break_glass: bool,
    period: usize,
}

/// How many decisions a pair keeps; when full it starts again.
const DECIDED_PER_PAIR: usize = 4096;

impl PairPolicies {
    fn decided_key(&self, facts: &ReadFacts<'_>) -> Decided {
        let mut roles: Vec<Role> = facts
            .caller
            .roles
            .iter()
            .filter(|r| self.roles.contains(*r))
            .cloned()
            .collect();
        roles.sort();
        roles.dedup();
        let now = facts.now.timestamp_micros();
        Decided {
            roles,
            class: facts.record_class.clone(),
            sealed: facts.sealed,
            purpose: facts.purpose,
            consent: facts.consent,
            break_glass: facts.break_glass,
            period: self.boundaries.partition_point(|b| *b <= now),
        }
    }
}

/// Every active agreement as Cedar policies, grouped by (consumer,
/// provider).
///
/// Parsing is the costly step (about 0.15 ms a policy), so compiling again
/// after a change reuses what an earlier compilation parsed — an agreement
/// version's terms, and so its policies, never change — and keeps every
/// pair whose policies are the same as before, already validated: a
/// suspension recompiles only the pairs of the agreement suspended.
#[derive(Debug)]
pub struct CompiledPolicies {
    /// The parsed policies of each active agreement version, by name.
    parsed: HashMap<String, Arc<Vec<ParsedPolicy>>>,
    pairs: HashMap<Pair, Arc<PairPolicies>>,
    authorizer: Authorizer,
}

/// The facts of one read, as the policies see them.
#[derive(Debug, Clone, Copy)]
pub struct ReadFacts<'a> {
    pub caller: &'a Caller,
    pub controller: &'a AgencyCode,
    pub record_class: &'a RecordClassId,
    pub sealed: bool,
    pub purpose: Purpose,
    pub now: DateTime<Utc>,
    /// `given`, `objected` or `none`.
    pub consent: &'static str,
    pub break_glass: bool,
}

/// The schema's entity types and the read action, parsed once.
struct Names {
    agency: EntityTypeName,
    principal: EntityTypeName,
    record: EntityTypeName,
    read: EntityUid,
}

static NAMES: LazyLock<Result<Names, String>> = LazyLock::new(|| {
    let parse = |name: &str| EntityTypeName::from_str(name).map_err(|e| e.to_string());
    Ok(Names {
        agency: parse("Accord::Agency")?,
        principal: parse("Accord::Principal")?,
        record: parse("Accord::Record")?,
        read: uid(&parse("Accord::Action")?, "read"),
    })
});

/// The request and entities of one read. Built the same way for every
/// read, so it is checked against the schema by the tests (`schema`
/// given) rather than on every decision (`None`); the policies themselves
/// are validated against it when compiled.
fn read_request(
    facts: &ReadFacts<'_>,
    schema: Option<&Schema>,
) -> Result<(cedar_policy::Request, Entities), EvaluateError> {
    let names = NAMES.as_ref().map_err(|e| EvaluateError(e.clone()))?;
    let caller_agency = uid(&names.agency, facts.caller.agency.as_str());
    let controller = uid(&names.agency, facts.controller.as_str());
    let principal = uid(
        &names.principal,
        &format!(
            "{}/{}",
            facts.caller.agency,
            facts.caller.principal.as_str()
        ),
    );
    let record = uid(&names.record, "requested");
    let roles = RestrictedExpression::new_set(
        facts
            .caller
            .roles
            .iter()
            .map(|r| RestrictedExpression::new_string(r.as_str().to_owned())),
    );
    let entities = [
        Ok(Entity::new_no_attrs(caller_agency.clone(), HashSet::new())),
        Ok(Entity::new_no_attrs(controller.clone(), HashSet::new())),
        Entity::new(
            principal.clone(),
            HashMap::from([("roles".to_owned(), roles)]),
            HashSet::from([caller_agency.clone()]),
        ),
        Entity::new(
            record.clone(),
            HashMap::from([
                (
                    "controller".to_owned(),
                    RestrictedExpression::new_entity_uid(controller.clone()),
                ),
                (
                    "class".to_owned(),
                    RestrictedExpression::new_string(facts.record_class.as_str().to_owned()),
                ),
                (
                    "sealed".to_owned(),
                    RestrictedExpression::new_bool(facts.sealed),
                ),
            ]),
            HashSet::new(),
        ),
    ];
    let mut unique = Vec::with_capacity(entities.len());
    for e in entities {
        let e = e.map_err(|e| EvaluateError(e.to_string()))?;
        if !unique.iter().any(|u: &Entity| u.uid() == e.uid()) {
            unique.push(e);
        }
    }
    let entities =
        Entities::from_entities(unique, schema).map_err(|e| EvaluateError(e.to_string()))?;
    let context = Context::from_pairs([
        (
            "purpose".to_owned(),
            RestrictedExpression::new_string(facts.purpose.code().to_owned()),
        ),
        (
            "now".to_owned(),
            RestrictedExpression::new_long(facts.now.timestamp_micros()),
        ),
        (
            "consent".to_owned(),
            RestrictedExpression::new_string(facts.consent.to_owned()),
        ),
        (
            "break_glass".to_owned(),
            RestrictedExpression::new_bool(facts.break_glass),
        ),
    ])
    .map_err(|e| EvaluateError(e.to_string()))?;
    let request =
        cedar_policy::Request::new(principal, names.read.clone(), record, context, schema)
            .map_err(|e| EvaluateError(e.to_string()))?;
    Ok((request, entities))
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// A Cedar string literal. Accord's codes, roles and class ids hold no
/// character that needs escaping, but JSON escaping is also Cedar's.
fn lit(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn set_of<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(lit).collect();
    format!("[{}]", items.join(", "))
}

/// The Cedar policy id of `agreement`'s grant to `role` at `consumer`.
fn policy_id(agreement: &Agreement, consumer: &AgencyCode, role: &Role) -> PolicyId {
    PolicyId::new(format!("{}/{consumer}/{role}", agreement.version_name()))
}

/// The text of the policy for `role` at `consumer` under `agreement`.
/// A policy may read only what [`Decided`] holds of a request: decisions
/// are kept by it.
fn policy_text(agreement: &Agreement, consumer: &AgencyCode, role: &Role) -> String {
    let t = &agreement.terms;
    let classes: BTreeSet<&str> = t
        .consumer(consumer)
        .into_iter()
        .flat_map(|c| c.grants.iter())
        .filter(|g| &g.role == role)
        .map(|g| g.record_class.as_str())
        .collect();
    let purposes = set_of(t.purposes.iter().map(|p| p.code()));
    let mut conditions = vec![
        format!(
            "resource.controller == Accord::Agency::{}",
            lit(t.provider.as_str())
        ),
        format!("principal.roles.contains({})", lit(role.as_str())),
        format!("{}.contains(resource.class)", set_of(classes)),
        format!("{purposes}.contains(context.purpose)"),
        format!(
            "{} <= context.now && context.now < {}",
            t.valid_from.timestamp_micros(),
            t.valid_until.timestamp_micros()
        ),
    ];
    if !t.covers_sealed {
        conditions.push("!resource.sealed".to_owned());
    }
    if t.consent == ConsentRequirement::Required {
        conditions.push(format!(
            "(context.consent == \"given\" || (context.break_glass && context.purpose == {}))",
            lit(Purpose::Emergency.code())
        ));
    }
    format!(
        "permit (\n  principal in Accord::Agency::{},\n  action == Accord::Action::\"read\",\n  resource\n) when {{\n  {}\n}};",
        lit(consumer.as_str()),
        conditions.join(" &&\n  ")
    )
}

/// Parses the policies of an active agreement version.
fn parse(agreement: &Arc<Agreement>) -> Result<Vec<ParsedPolicy>, CompileError> {
    let mut out = Vec::new();
    for consumer in &agreement.terms.consumers {
        for role in consumer.roles() {
            let id = policy_id(agreement, &consumer.agency, role);
            let text = policy_text(agreement, &consumer.agency, role);
            let policy =
                Policy::parse(Some(id.clone()), &text).map_err(|e| CompileError::Parse {
                    id: id.to_string(),
                    message: e.to_string(),
                })?;
            out.push(ParsedPolicy {
                pair: (consumer.agency.clone(), agreement.terms.provider.clone()),
                id,
                policy,
                grant: PolicyGrant {
                    agreement: Arc::clone(agreement),
                    role: role.clone(),
                },
            });
        }
    }
    Ok(out)
}

/// Builds and validates the policy set of one pair.
fn pair_policies(
    pair: &Pair,
    policies: &[&ParsedPolicy],
    validator: &Validator,
) -> Result<PairPolicies, CompileError> {
    let mut set = PolicySet::new();
    let mut grants = HashMap::new();
    for p in policies {
        set.add(p.policy.clone()).map_err(|e| CompileError::Parse {
            id: p.id.to_string(),
            message: e.to_string(),
        })?;
        grants.insert(p.id.clone(), p.grant.clone());
    }
    let roles = grants.values().map(|g| g.role.clone()).collect();
    let mut boundaries: Vec<i64> = grants
        .values()
        .flat_map(|g| {
            let t = &g.agreement.terms;
            [
                t.valid_from.timestamp_micros(),
                t.valid_until.timestamp_micros(),
            ]
        })
        .collect();
    boundaries.sort_unstable();
    boundaries.dedup();
    let result = validator.validate(&set, ValidationMode::Strict);
    if !result.validation_passed() {
        let message = result
            .validation_errors()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(CompileError::Invalid {
            pair: format!("{} reading {}", pair.0, pair.1),
            message,
        });
    }
    Ok(PairPolicies {
        set,
        grants,
        roles,
        boundaries,
        decided: BoundedMap::new(DECIDED_PER_PAIR),
    })
}

impl CompiledPolicies {
    /// Compiles the active versions among `agreements`, reusing what
    /// `previous` compiled.
    pub fn compile<'a>(
        agreements: impl IntoIterator<Item = &'a Arc<Agreement>>,
        previous: Option<&CompiledPolicies>,
    ) -> Result<Self, CompileError> {
        let schema = schema().map_err(CompileError::Schema)?;
        let mut parsed = HashMap::new();
        for agreement in agreements {
            if agreement.status != crate::domain::agreement::AgreementStatus::Active {
                continue;
            }
            let name = agreement.version_name();
            let policies = match previous.and_then(|p| p.parsed.get(&name)) {
                Some(earlier) => Arc::clone(earlier),
                None => Arc::new(parse(agreement)?),
            };
            parsed.insert(name, policies);
        }
        let mut by_pair: HashMap<&Pair, Vec<&ParsedPolicy>> = HashMap::new();
        for policy in parsed.values().flat_map(|p| p.iter()) {
            by_pair.entry(&policy.pair).or_default().push(policy);
        }
        let validator = Validator::new(schema.clone());
        let mut pairs = HashMap::with_capacity(by_pair.len());
        for (pair, mut policies) in by_pair {
            policies.sort_by(|a, b| a.id.cmp(&b.id));
            let unchanged = previous
                .and_then(|p| p.pairs.get(pair))
                .filter(|earlier| {
                    earlier.grants.len() == policies.len()
                        && policies.iter().all(|p| earlier.grants.contains_key(&p.id))
                })
                .cloned();
            let compiled = match unchanged {
                Some(earlier) => earlier,
                None => Arc::new(pair_policies(pair, &policies, &validator)?),
            };
            pairs.insert(pair.clone(), compiled);
        }
        Ok(Self {
            parsed,
            pairs,
            authorizer: Authorizer::new(),
        })
    }

    /// No policies: nothing is shared.
    pub fn empty() -> Self {
        Self {
            parsed: HashMap::new(),
            pairs: HashMap::new(),
            authorizer: Authorizer::new(),
        }
    }

    /// How many pairs of agencies have policies, and how many of those were
    /// taken over from `previous` unchanged.
    pub fn pairs_reused_from(&self, previous: &CompiledPolicies) -> (usize, usize) {
        let reused = self
            .pairs
            .iter()
            .filter(|(pair, p)| previous.pairs.get(*pair).is_some_and(|q| Arc::ptr_eq(p, q)))
            .count();
        (self.pairs.len(), reused)
    }

    /// How many policies there are in all.
    pub fn len(&self) -> usize {
        self.pairs.values().map(|p| p.grants.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The text of every policy that lets `consumer` read `provider`'s
    /// records, for inspection.
    pub fn policies_between(&self, consumer: &AgencyCode, provider: &AgencyCode) -> Vec<String> {
        let mut out: Vec<String> = self
            .pairs
            .get(&(consumer.clone(), provider.clone()))
            .map(|p| p.set.policies().map(ToString::to_string).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The grants of the policies that permit the read; empty when none
    /// does (Cedar's default deny). A read decided like an earlier one
    /// (see [`Decided`]) gets the earlier one's answer without evaluating
    /// the policies again.
    pub fn permits(&self, facts: &ReadFacts<'_>) -> Result<Vec<PolicyGrant>, EvaluateError> {
        let Some(pair) = self
            .pairs
            .get(&(facts.caller.agency.clone(), facts.controller.clone()))
        else {
            return Ok(Vec::new());
        };
        let key = pair.decided_key(facts);
        if let Some(grants) = pair.decided.get(&key) {
            return Ok(grants);
        }
        let grants = Self::evaluate(&self.authorizer, pair, facts)?;
        pair.decided.insert(key, grants.clone());
        Ok(grants)
    }

    /// Puts the read to the pair's policies.
    fn evaluate(
        authorizer: &Authorizer,
        pair: &PairPolicies,
        facts: &ReadFacts<'_>,
    ) -> Result<Vec<PolicyGrant>, EvaluateError> {
        let (request, entities) = read_request(facts, None)?;
        let response = authorizer.is_authorized(&request, &pair.set, &entities);
        if let Some(error) = response.diagnostics().errors().next() {
            return Err(EvaluateError(error.to_string()));
        }
        if response.decision() != Decision::Allow {
            return Ok(Vec::new());
        }
        let mut grants: Vec<PolicyGrant> = response
            .diagnostics()
            .reason()
            .filter_map(|id| pair.grants.get(id).cloned())
            .collect();
        grants.sort_by(|a, b| {
            (a.agreement.version_name(), &a.role).cmp(&(b.agreement.version_name(), &b.role))
        });
        Ok(grants)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::PrincipalId;

    /// Decisions build their request without checking it against the
    /// schema; every shape they build must pass that check.
    #[test]
    fn every_read_request_conforms_to_the_schema() {
        let schema = schema().expect("the schema parses");
        let controller = AgencyCode::parse("council").expect("agency code");
        let class = RecordClassId::parse("social_care.referral").expect("class id");
        for (caller_agency, roles) in [
            ("police", vec![]),
            ("health", vec!["clinician"]),
            ("council", vec!["social_worker", "auditor"]),
        ] {
            let caller = Caller {
                agency: AgencyCode::parse(caller_agency).expect("agency code"),
                principal: PrincipalId::parse("staff-1").expect("principal"),
                client_certificate: None,
                roles: roles
                    .iter()
                    .map(|r| Role::parse(r).expect("role"))
                    .collect(),
            };
            for (sealed, consent, break_glass, purpose) in [
                (false, "given", false, Purpose::DirectCare),
                (true, "none", true, Purpose::Emergency),
                (false, "objected", false, Purpose::Safeguarding),
            ] {
                let facts = ReadFacts {
                    caller: &caller,
                    controller: &controller,
                    record_class: &class,
                    sealed,
                    purpose,
                    now: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
                    consent,
                    break_glass,
                };
                let checked = read_request(&facts, Some(schema));
                assert!(checked.is_ok(), "{caller_agency} {roles:?}: {checked:?}");
            }
        }
    }
}
