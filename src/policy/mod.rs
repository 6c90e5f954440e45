//! Access decisions, as pure functions of the caller, the request, the
//! agreements, the subject's consents and the record's metadata. No I/O.
//!
//! A read is permitted when the caller's agency controls the record (it
//! sees it in full), or when an agreement in force permits it: Cedar
//! ([`cedar`]) decides from the agreements' policies, and the fields
//! disclosed are the union of the grants of every policy that permitted.
//! Cedar's default deny carries no reason, so a refusal is explained here
//! ([`explain`]): of the agreements between the two agencies, the one that
//! came closest to permitting says what stood in the way.

pub mod cedar;
pub mod consent;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::agreement::{Agreement, AgreementStatus, ConsentRequirement, LawfulBasis};
use crate::domain::consent::{Consent, ConsentId};
use crate::domain::{AgencyCode, Caller, Purpose, Record, RecordClassId};
use cedar::{CompileError, CompiledPolicies, EvaluateError, ReadFacts};
use consent::ConsentFinding;

/// Why a decision could not be made (a defect in Accord, never a
/// refusal).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
}

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Stable machine-readable reason, e.g. `NO_AGREEMENT`.
    pub code: &'static str,
    /// A sentence a person can read.
    pub message: String,
    /// The agreement version that came closest (`agreements/{id}@{v}`), or
    /// empty.
    pub agreement: String,
    /// The consent or objection involved (`consents/{id}`), or empty.
    pub consent: String,
}

impl Denial {
    /// A denial that involves no agreement or consent.
    pub fn new(code: &'static str, message: String) -> Self {
        Self {
            code,
            message,
            agreement: String::new(),
            consent: String::new(),
        }
    }
}

/// Which fields may leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldMask {
    /// Every field (the controller reading its own record).
    All,
    /// Only these.
    Only(BTreeSet<String>),
}

impl FieldMask {
    /// Whether `field` may leave.
    pub fn allows(&self, field: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(fields) => fields.contains(field),
        }
    }
}

/// An emergency access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    /// Why the caller said it was needed.
    pub reason: String,
    /// The reason code of the consent refusal it overrode, if it overrode
    /// one.
    pub overrode: Option<&'static str>,
}

/// What may be disclosed, and on what grounds. Only a decision of this
/// module makes one, and only [`Permit::disclose`] turns a record into
/// something that may leave. Nothing outside this module can make one:
///
/// ```compile_fail
/// use accord::policy::{FieldMask, Permit};
/// let everything = Permit {
///     fields: FieldMask::All,
///     agreements: Vec::new(),
///     lawful_bases: Vec::new(),
///     consent: None,
///     break_glass: None,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    fields: FieldMask,
    /// The agreement versions that permitted (`agreements/{id}@{v}`); empty
    /// for the controller.
    agreements: Vec<String>,
    /// Their lawful bases.
    lawful_bases: Vec<LawfulBasis>,
    /// The consent relied on, if an agreement needed one.
    consent: Option<ConsentId>,
    /// Set when emergency access was invoked.
    break_glass: Option<BreakGlass>,
}

impl Permit {
    /// The controller's view: everything, on its own authority.
    fn controller() -> Self {
        Self {
            fields: FieldMask::All,
            agreements: Vec::new(),
            lawful_bases: Vec::new(),
            consent: None,
            break_glass: None,
        }
    }

    /// The fields it lets leave.
    pub fn fields(&self) -> &FieldMask {
        &self.fields
    }

    /// The agreement versions that permitted (`agreements/{id}@{v}`);
    /// empty for the controller.
    pub fn agreements(&self) -> &[String] {
        &self.agreements
    }

    /// The lawful bases of those agreements.
    pub fn lawful_bases(&self) -> &[LawfulBasis] {
        &self.lawful_bases
    }

    /// The consent relied on, if an agreement needed one.
    pub fn consent(&self) -> Option<&ConsentId> {
        self.consent.as_ref()
    }

    /// The emergency access it rests on, if it was invoked.
    pub fn break_glass(&self) -> Option<&BreakGlass> {
        self.break_glass.as_ref()
    }

    /// The same grounds for a dry run, which is not an emergency access
    /// whatever reason was given.
    pub fn dry_run(&self) -> Self {
        Self {
            break_glass: None,
            ..self.clone()
        }
    }

    /// `record` as this permit lets it leave: only the fields granted,
    /// naming the agreements it is shared under.
    pub fn disclose(&self, mut record: Record) -> Disclosed {
        record.fields.retain(|name, _| self.fields.allows(name));
        Disclosed {
            record,
            shared_under: self.agreements.clone(),
        }
    }
}

/// A record as its reader may see it. Only [`Permit::disclose`] makes one,
/// so a record cannot leave Accord without the decision that lets it:
///
/// ```compile_fail
/// use accord::policy::Disclosed;
/// fn untrimmed(record: accord::domain::Record) -> Disclosed {
///     Disclosed { record, shared_under: Vec::new() }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosed {
    record: Record,
    shared_under: Vec<String>,
}

impl Disclosed {
    /// The record, holding only the fields disclosed.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The agreement versions it was shared under; empty for its
    /// controller.
    pub fn shared_under(&self) -> &[String] {
        &self.shared_under
    }

    /// The record and the agreements it was shared under.
    pub fn into_parts(self) -> (Record, Vec<String>) {
        (self.record, self.shared_under)
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit(Permit),
    Deny(Denial),
}

/// One read to decide.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    pub caller: &'a Caller,
    pub purpose: Purpose,
    /// The reason given for emergency access; only counts with purpose
    /// EMERGENCY.
    pub break_glass: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub controller: &'a AgencyCode,
    pub record_class: &'a RecordClassId,
    /// Whether the controller has sealed the record or the subject.
    pub sealed: bool,
}

impl Read<'_> {
    fn break_glass_reason(&self) -> Option<&str> {
        self.break_glass
            .filter(|r| !r.trim().is_empty() && self.purpose == Purpose::Emergency)
    }
}

/// The agreements known to Accord, compiled for decisions.
#[derive(Debug)]
pub struct Agreements {
    /// Every version that is not superseded, by (consumer, provider), for
    /// explaining refusals.
    by_pair: HashMap<(AgencyCode, AgencyCode), Vec<Arc<Agreement>>>,
    compiled: CompiledPolicies,
    count: usize,
}

impl Agreements {
    /// Compiles `agreements` (any versions; superseded ones are ignored).
    pub fn new(agreements: impl IntoIterator<Item = Agreement>) -> Result<Self, CompileError> {
        Self::recompile(agreements, None)
    }

    /// Compiles `agreements`, reusing what `previous` compiled (see
    /// [`CompiledPolicies`]).
    pub fn recompile(
        agreements: impl IntoIterator<Item = Agreement>,
        previous: Option<&Agreements>,
    ) -> Result<Self, CompileError> {
        let mut all: Vec<Arc<Agreement>> = agreements
            .into_iter()
            .filter(|a| a.status != AgreementStatus::Superseded)
            .map(Arc::new)
            .collect();
        all.sort_by_key(|a| a.version_name());
        let compiled = CompiledPolicies::compile(&all, previous.map(|p| &p.compiled))?;
        let mut by_pair: HashMap<(AgencyCode, AgencyCode), Vec<Arc<Agreement>>> = HashMap::new();
        for a in &all {
            for c in &a.terms.consumers {
                by_pair
                    .entry((c.agency.clone(), a.terms.provider.clone()))
                    .or_default()
                    .push(Arc::clone(a));
            }
        }
        Ok(Self {
            by_pair,
            compiled,
            count: all.len(),
        })
    }

    /// No agreements at all.
    pub fn none() -> Self {
        Self {
            by_pair: HashMap::new(),
            compiled: CompiledPolicies::empty(),
            count: 0,
        }
    }

    /// How many agreement versions are held (superseded ones excepted).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The compiled policies.
    pub fn policies(&self) -> &CompiledPolicies {
        &self.compiled
    }

    fn between(&self, consumer: &AgencyCode, provider: &AgencyCode) -> &[Arc<Agreement>] {
        self.by_pair
            .get(&(consumer.clone(), provider.clone()))
            .map_or(&[], Vec::as_slice)
    }
}

/// Whether `caller` may learn that a record of `class` controlled by
/// `controller` exists: it is the controller, or its agency is a consumer
/// of an agreement with the controller (in any state but superseded: a
/// draft, active, suspended or expired) that covers the class. To any
/// other agency a
/// refusal would say that the record exists and which agency holds it (a
/// police or health controller tells what kind of record a person has), so
/// it is answered exactly as for an unknown record.
pub fn may_know_of(
    agreements: &Agreements,
    caller: &Caller,
    controller: &AgencyCode,
    class: &RecordClassId,
) -> bool {
    is_controller(caller, controller)
        || agreements
            .between(&caller.agency, controller)
            .iter()
            .any(|a| a.terms.record_classes.contains(class))
}

/// Whether `caller` reads as the controller of data controlled by
/// `controller`: then the decision needs no agreements or consents.
pub fn is_controller(caller: &Caller, controller: &AgencyCode) -> bool {
    &caller.agency == controller
}

/// Decides whether `read.caller` may read a record described by `read`,
/// given the agreements and the subject's `consents`.
pub fn decide_read(
    agreements: &Agreements,
    consents: &[Consent],
    read: &Read<'_>,
) -> Result<Decision, EvaluateError> {
    if is_controller(read.caller, read.controller) {
        return Ok(Decision::Permit(Permit::controller()));
    }
    let finding = consent::find(
        consents,
        read.purpose,
        read.record_class,
        &read.caller.agency,
        read.now,
    );
    let break_glass = read.break_glass_reason();
    let grants = agreements.compiled.permits(&ReadFacts {
        caller: read.caller,
        controller: read.controller,
        record_class: read.record_class,
        sealed: read.sealed,
        purpose: read.purpose,
        now: read.now,
        consent: finding.context_value(),
        break_glass: break_glass.is_some(),
    })?;
    if grants.is_empty() {
        return Ok(Decision::Deny(explain(agreements, &finding, read)));
    }
    let mut fields = BTreeSet::new();
    let mut names: Vec<String> = Vec::new();
    let mut lawful_bases: Vec<LawfulBasis> = Vec::new();
    let mut needs_consent = false;
    for grant in &grants {
        let a = &grant.agreement;
        let granted = a
            .terms
            .consumer(&read.caller.agency)
            .into_iter()
            .flat_map(|c| c.grants.iter())
            .filter(|g| g.role == grant.role && &g.record_class == read.record_class)
            .flat_map(|g| g.fields.iter().cloned());
        fields.extend(granted);
        if !names.contains(&a.version_name()) {
            names.push(a.version_name());
            for basis in &a.terms.lawful_bases {
                if !lawful_bases.contains(basis) {
                    lawful_bases.push(basis.clone());
                }
            }
        }
        needs_consent |= a.terms.consent == ConsentRequirement::Required;
    }
    let consent = match (&finding, needs_consent) {
        (ConsentFinding::Given(id), true) => Some(id.clone()),
        _ => None,
    };
    let overrode = match (&finding, needs_consent) {
        (ConsentFinding::Given(_), _) | (_, false) => None,
        (other, true) => Some(consent_refusal_code(other)),
    };
    Ok(Decision::Permit(Permit {
        fields: FieldMask::Only(fields),
        agreements: names,
        lawful_bases,
        consent,
        break_glass: break_glass.map(|reason| BreakGlass {
            reason: reason.to_owned(),
            overrode,
        }),
    }))
}

fn consent_refusal_code(finding: &ConsentFinding) -> &'static str {
    match finding {
        ConsentFinding::Objected(_) => "OBJECTION_RECORDED",
        ConsentFinding::Withdrawn(..) => "CONSENT_WITHDRAWN",
        _ => "CONSENT_REQUIRED",
    }
}

/// Explains why no policy permitted `read`: the reason of the agreement
/// that came closest to permitting it.
fn explain(agreements: &Agreements, finding: &ConsentFinding, read: &Read<'_>) -> Denial {
    let consumer = &read.caller.agency;
    let candidates = agreements.between(consumer, read.controller);
    let closest = candidates
        .iter()
        .map(|a| obstacle(a, finding, read))
        .enumerate()
        // The deepest obstacle wins; among equals, the first agreement.
        .max_by_key(|(i, (depth, _))| (*depth, std::cmp::Reverse(*i)))
        .map(|(_, (_, denial))| denial);
    closest.unwrap_or_else(|| {
        Denial::new(
            "NO_AGREEMENT",
            format!(
                "no sharing agreement lets agency {consumer} read records controlled by agency {}",
                read.controller
            ),
        )
    })
}

/// How far `a` got towards permitting `read` (how many checks passed) and
/// the first check it fails, in the order: record class, purpose, role (is
/// it an agreement for this kind of access at all?), then its state, the
/// seal and consent (why does it not apply now?).
fn obstacle(a: &Agreement, finding: &ConsentFinding, read: &Read<'_>) -> (u8, Denial) {
    let name = a.version_name();
    let deny = |code: &'static str, message: String| Denial {
        code,
        message,
        agreement: name.clone(),
        consent: String::new(),
    };
    let t = &a.terms;
    let class = read.record_class;
    if !t.record_classes.contains(class) {
        return (
            0,
            deny(
                "RECORD_CLASS_NOT_COVERED",
                format!("agreement {name} does not cover {class} records"),
            ),
        );
    }
    if !t.purposes.contains(&read.purpose) {
        let permitted: Vec<&str> = t.purposes.iter().map(|p| p.code()).collect();
        return (
            1,
            deny(
                "PURPOSE_NOT_PERMITTED",
                format!(
                    "agreement {name} permits access for {} but not for {}",
                    permitted.join(", "),
                    read.purpose.code()
                ),
            ),
        );
    }
    let roles: BTreeSet<&str> = t
        .consumer(&read.caller.agency)
        .into_iter()
        .flat_map(|c| c.grants.iter())
        .filter(|g| &g.record_class == class)
        .map(|g| g.role.as_str())
        .collect();
    if !roles.iter().any(|r| read.caller.has_role(r)) {
        let held: Vec<&str> = read.caller.roles.iter().map(|r| r.as_str()).collect();
        return (
            2,
            deny(
                "ROLE_NOT_PERMITTED",
                format!(
                    "agreement {name} lets only the roles {} of agency {} read {class} records; the caller holds {}",
                    roles.iter().copied().collect::<Vec<_>>().join(", "),
                    read.caller.agency,
                    if held.is_empty() {
                        "no role".to_owned()
                    } else {
                        held.join(", ")
                    }
                ),
            ),
        );
    }
    let day = |time: DateTime<Utc>| time.format("%Y-%m-%d").to_string();
    let status = match a.status_at(read.now) {
        AgreementStatus::Active if read.now < t.valid_from => Some(deny(
            "AGREEMENT_NOT_ACTIVE",
            format!("agreement {name} comes into force on {}", day(t.valid_from)),
        )),
        AgreementStatus::Active => None,
        AgreementStatus::Draft => Some(deny(
            "AGREEMENT_NOT_ACTIVE",
            format!(
                "agreement {name} is a draft still awaiting approval by {}",
                a.awaiting()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        AgreementStatus::Suspended => Some(deny(
            "AGREEMENT_NOT_ACTIVE",
            match &a.suspension {
                Some(s) => format!(
                    "agreement {name} was suspended by agency {} on {}: {}",
                    s.agency,
                    day(s.time),
                    s.reason
                ),
                None => format!("agreement {name} is suspended"),
            },
        )),
        AgreementStatus::Expired => Some(deny(
            "AGREEMENT_EXPIRED",
            format!("agreement {name} expired on {}", day(t.valid_until)),
        )),
        AgreementStatus::Superseded => Some(deny(
            "AGREEMENT_NOT_ACTIVE",
            format!("agreement {name} has been replaced by a later version"),
        )),
    };
    if let Some(denial) = status {
        return (3, denial);
    }
    if read.sealed && !t.covers_sealed {
        return (
            4,
            deny(
                "RECORD_SEALED",
                format!(
                    "agency {} has sealed this record; agreement {name} does not cover sealed records",
                    t.provider
                ),
            ),
        );
    }
    let overridden = read.break_glass_reason().is_some();
    if t.consent == ConsentRequirement::Required && !overridden {
        let consent = finding
            .consent()
            .map(ConsentId::resource_name)
            .unwrap_or_default();
        let message = match finding {
            ConsentFinding::Given(_) => None,
            ConsentFinding::Objected(id) => Some(format!(
                "the subject has objected to this sharing ({}); agreement {name} needs consent",
                id.resource_name()
            )),
            ConsentFinding::Withdrawn(id, time) => Some(format!(
                "the subject withdrew consent {} on {}; agreement {name} needs consent",
                id.resource_name(),
                day(*time)
            )),
            ConsentFinding::Lapsed(id, time) => Some(format!(
                "the subject's consent {} lapsed on {}; agreement {name} needs consent",
                id.resource_name(),
                day(*time)
            )),
            ConsentFinding::Absent => Some(format!(
                "agreement {name} needs the subject's consent, and none covers {} access to {class} records by agency {}",
                read.purpose.code(),
                read.caller.agency
            )),
        };
        if let Some(message) = message {
            return (
                5,
                Denial {
                    consent,
                    ..deny(consent_refusal_code(finding), message)
                },
            );
        }
    }
    (
        6,
        deny(
            "NO_PERMIT",
            format!("no policy of agreement {name} permitted this access"),
        ),
    )
}

#[cfg(test)]
mod tests;

/// Decides whether `caller` may change `record`: only its controller may,
/// and it sees what it wrote in full.
pub fn decide_write(caller: &Caller, record: &Record) -> Result<Permit, Denial> {
    if caller.agency == record.controller {
        Ok(Permit::controller())
    } else {
        Err(Denial::new(
            "NOT_CONTROLLER",
            format!(
                "only the controlling agency {} may change record {}",
                record.controller,
                record.id.resource_name()
            ),
        ))
    }
}
