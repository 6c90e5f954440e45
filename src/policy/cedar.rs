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

/// The policies between one consumer and one provider, validated.
#[derive(Debug)]
struct PairPolicies {
    set: PolicySet,
    grants: HashMap<PolicyId, PolicyGrant>,
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

fn type_name(name: &str) -> Result<EntityTypeName, EvaluateError> {
    EntityTypeName::from_str(name).map_err(|e| EvaluateError(e.to_string()))
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
    Ok(PairPolicies { set, grants })
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
    /// does (Cedar's default deny).
    pub fn permits(&self, facts: &ReadFacts<'_>) -> Result<Vec<PolicyGrant>, EvaluateError> {
        let Some(pair) = self
            .pairs
            .get(&(facts.caller.agency.clone(), facts.controller.clone()))
        else {
            return Ok(Vec::new());
        };
        let agency_type = type_name("Accord::Agency")?;
        let caller_agency = uid(&agency_type, facts.caller.agency.as_str());
        let controller = uid(&agency_type, facts.controller.as_str());
        let principal = uid(
            &type_name("Accord::Principal")?,
            &format!(
                "{}/{}",
                facts.caller.agency,
                facts.caller.principal.as_str()
            ),
        );
        let record = uid(&type_name("Accord::Record")?, "requested");
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
            Entities::from_entities(unique, None).map_err(|e| EvaluateError(e.to_string()))?;
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
        let action = uid(&type_name("Accord::Action")?, "read");
        let request = cedar_policy::Request::new(
            principal,
            action,
            record,
            context,
            Some(schema().map_err(EvaluateError)?),
        )
        .map_err(|e| EvaluateError(e.to_string()))?;
        let response = self
            .authorizer
            .is_authorized(&request, &pair.set, &entities);
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
