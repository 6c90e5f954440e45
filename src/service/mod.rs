//! Audited operations. Every call that reaches a service ends in exactly one
//! ledger entry: a success commits its entry before it returns (writes in the
//! same transaction as their data), and a failure is written by
//! [`Services::refuse`]. Nothing here knows about gRPC.

mod agencies;
mod agency_cache;
mod agreements;
mod alerts;
mod audit;
mod catalog;
mod consents;
mod delivery;
mod duplicates;
mod events;
mod limits;
mod matches;
mod merges;
mod paging;
mod policy_cache;
mod proofs;
mod records;
mod reviews;
mod subjects;
mod views;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};

pub use agencies::{AgencyChange, NewTokenIssuer};
pub use agreements::{AgreementUsage, UsageRow};
pub use alerts::AlertPolicy;
pub use audit::{AccessReport, MAX_REPORT_ENTRIES, SubjectAccess, activity, subject_access_filter};
pub use catalog::{STARTER_CATALOGUE, parse_catalogue};
pub use consents::NewConsent;
pub use delivery::{
    DEFAULT_EVENT_HEARTBEAT, Delivered, EventPage, EventRequest, EventWatch, MAX_EVENTS_SCANNED,
    WatchItem,
};
pub use duplicates::DuplicateView;
pub use events::{NewSubscription, SubscriptionList};
pub use matches::{MatchCandidate, MatchProbe, find_candidates};
pub use paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest, PageTokens, Paging};
pub use proofs::{ConsistencyProof, EntryExport, EntryRef, InclusionProof};
pub use records::{AccessCheck, NewRecord, RecordChange, SealTarget};
pub use reviews::{EXPIRY_ACTION, FANOUT_ACTION, OVERDUE_ACTION};
pub use subjects::{NewSubject, SubjectMatch, SubjectQuery};
pub use views::{CONTACT_CLASS, DemographicValue, SubjectView, demographic_values};

use crate::auth::AuthFailure;
use crate::bounded::BoundedMap;
use crate::clock::SharedClock;
use crate::domain::credential::Fingerprint;
use crate::domain::{
    AgencyStatus, Caller, Purpose, Record, RecordClass, RecordClassId, RecordId, Role, Violations,
};
use crate::ledger::checkpoint::CheckpointKeys;
use crate::ledger::{Entry, EntryDraft, Grounds, Outcome};
use crate::matching::Matcher;
use crate::policy::{Denial, Permit, PolicyError};
use crate::store::{Committed, Expect, Store, StoreError, Write};

/// How many times a call is decided at most: once on the state held in
/// memory, then again on fresh state if that moved or refused.
pub const MAX_ATTEMPTS: u32 = 3;
use agency_cache::AgencyCache;
use policy_cache::PolicyCache;

/// Why an operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is invalid; every bad field is listed.
    #[error("invalid request: {0}")]
    Invalid(Violations),
    /// The caller could not be authenticated.
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    /// The caller is not allowed to do this.
    #[error("{}", .0.message)]
    Denied(Denial),
    /// The named thing does not exist (or the caller may not know it does).
    #[error("{0} not found")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller's etag is not the current one.
    #[error("{0}")]
    StaleEtag(String),
    /// The thing is not in a state that allows this.
    #[error("{message}")]
    Precondition { code: &'static str, message: String },
    /// Storage or the ledger failed; nothing was disclosed or changed.
    #[error("storage is unavailable")]
    Unavailable(#[source] StoreError),
    /// The access decision could not be made (a defect); nothing was
    /// disclosed.
    #[error("the access decision failed")]
    Policy(#[source] PolicyError),
    /// A result came with the receipt of another call's entry (a defect);
    /// nothing was released.
    #[error("the result has no ledger entry of its own")]
    NotAudited,
    /// The caller's agency or client certificate is over its rate limit.
    #[error("the {} rate limit is reached; try again in {} ms", .scope.code(), .retry_after.as_millis())]
    RateLimited {
        scope: limits::LimitScope,
        retry_after: std::time::Duration,
    },
}

impl ServiceError {
    /// The outcome recorded in the ledger.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Invalid(_) => Outcome::Invalid,
            Self::Unavailable(_) | Self::Policy(_) | Self::NotAudited => Outcome::Failed,
            _ => Outcome::Denied,
        }
    }

    /// The stable reason code recorded in the ledger and sent to the caller.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "INVALID_ARGUMENT",
            Self::Unauthenticated(f) => f.code,
            Self::Denied(d) => d.code,
            Self::NotFound(_) => "NOT_FOUND",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::StaleEtag(_) => "STALE_ETAG",
            Self::Precondition { code, .. } => code,
            Self::Unavailable(_) => "STORAGE_UNAVAILABLE",
            Self::Policy(_) => "DECISION_FAILED",
            Self::NotAudited => "NOT_AUDITED",
            Self::RateLimited { .. } => "RATE_LIMITED",
        }
    }

    fn denied(code: &'static str, message: String) -> Self {
        Self::Denied(Denial::new(code, message))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::AlreadyExists(what) => Self::AlreadyExists(what),
            StoreError::StaleEtag { given, .. } => Self::StaleEtag(format!(
                "etag {given:?} is not the current one: read the latest version and apply the change to it"
            )),
            StoreError::Conflict(message) => Self::Precondition {
                code: "CONCURRENT_CHANGE",
                message,
            },
            other => Self::Unavailable(other),
        }
    }
}

impl From<Violations> for ServiceError {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

/// What a call returns once its ledger entry is durable, and the only
/// thing its answer can be made from: the services make one from the
/// receipt of the call's own commit ([`Committed`], which only the ledger
/// writer makes), so no result leaves without its entry.
///
/// Nothing outside the services can make one, even from a receipt:
///
/// ```compile_fail
/// use accord::service::Audited;
/// fn forge<T>(receipt: accord::store::Committed, value: T) -> Audited<T> {
///     Audited::new(receipt, value)
/// }
/// ```
#[derive(Debug)]
pub struct Audited<T> {
    value: T,
    receipt: Committed,
}

impl<T> Audited<T> {
    fn new(receipt: Committed, value: T) -> Self {
        Self { value, receipt }
    }

    /// The entry that was committed.
    pub fn entry(&self) -> &Entry {
        self.receipt.entry()
    }

    /// The value, to look at before it is released.
    fn value(&self) -> &T {
        &self.value
    }

    /// The same receipt for what `f` makes of the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Audited<U> {
        Audited {
            value: f(self.value),
            receipt: self.receipt,
        }
    }

    /// The value, for `call`: only if the receipt is for that call's own
    /// entry. Another call's receipt is a defect, and nothing is released.
    pub fn release(self, call: &Call) -> Result<T, ServiceError> {
        let entry = &self.receipt.entry().draft;
        if entry.request_id == call.request_id
            && entry.action == call.action
            && entry.time == call.time
            && entry.principal == call.caller.principal.as_str()
        {
            Ok(self.value)
        } else {
            Err(ServiceError::NotAudited)
        }
    }
}

/// What a call may need of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A registered, active agency.
    Member,
    /// A registered, active agency, or an operator.
    MemberOrOperator,
    /// The operator role.
    Operator,
}

/// Why a call ended before any operation took it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unserved {
    /// It names no method of the service.
    UnknownMethod,
    /// Its message is over the size limit.
    MessageTooLarge,
    /// Its metadata is over the limits.
    HeadersTooLarge,
    /// Its message could not be decoded.
    NotDecoded,
    /// It ended without an answer from any operation.
    NotServed,
}

impl Unserved {
    /// The outcome its entry records: the caller's mistake, or (for a call
    /// no operation answered) Accord's failure.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::NotServed => Outcome::Failed,
            _ => Outcome::Invalid,
        }
    }

    /// The reason code its entry records.
    pub fn reason_code(self) -> &'static str {
        match self {
            Self::UnknownMethod => "UNKNOWN_METHOD",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::NotDecoded => "REQUEST_NOT_DECODED",
            Self::NotServed => "NOT_SERVED",
        }
    }
}

/// Facts learnt while serving a call, for its ledger entry, and what its
/// decisions relied on, for the commit to check.
#[derive(Debug, Clone, Default)]
struct Facts {
    purpose: Option<Purpose>,
    subject: String,
    records: Vec<String>,
    fields: Vec<String>,
    controller: String,
    grounds: Grounds,
    /// The reason given for emergency access, if the caller invoked it.
    break_glass: Option<String>,
    /// What the decisions relied on, checked when the entry commits.
    expects: Vec<Expect>,
    /// Whether a decision was made on state held in memory.
    cached: bool,
    /// The registry version the caller's authentication relied on, if it
    /// read the registry: checked when the entry commits.
    registry: Option<i64>,
    /// Something a permitted call did that its entry says in words (a
    /// reason code and text), e.g. a registration made despite a match.
    remark: Option<(&'static str, String)>,
}

/// One authenticated call being served.
#[derive(Debug)]
pub struct Call {
    pub caller: Caller,
    pub request_id: String,
    /// The W3C trace id the caller sent (`traceparent`), or empty.
    pub trace_id: String,
    pub action: &'static str,
    pub time: DateTime<Utc>,
    facts: Mutex<Facts>,
    /// How many times the call has been decided again (see
    /// [`Call::decide_again`]).
    attempt: std::sync::atomic::AtomicU32,
}

impl Call {
    /// A call by `caller` to `action` at `time`.
    pub fn new(
        caller: Caller,
        request_id: String,
        action: &'static str,
        time: DateTime<Utc>,
    ) -> Self {
        Self {
            caller,
            request_id,
            trace_id: String::new(),
            action,
            time,
            facts: Mutex::new(Facts::default()),
            attempt: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The call, part of the trace `trace_id` (see [`Call::trace_id`]).
    #[must_use]
    pub fn traced(mut self, trace_id: String) -> Self {
        self.trace_id = trace_id;
        self
    }

    /// Whether this attempt must read everything afresh rather than decide
    /// on state held in memory: every attempt after the first.
    pub fn fresh(&self) -> bool {
        self.attempt.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Whether the call, which ended with `error`, is to be decided again
    /// on fresh state (at most [`MAX_ATTEMPTS`] times in all): when what
    /// its decisions relied on changed before its entry could commit, or
    /// when it was refused on state held in memory (a refusal is only
    /// released once it stands on fresh state). If so, what it learnt is
    /// forgotten (its purpose, its emergency reason and the registry version
    /// its caller was authenticated on stay).
    pub fn decide_again(&self, error: &ServiceError) -> bool {
        let stale = matches!(error, ServiceError::Unavailable(StoreError::Stale(_)));
        let refused = matches!(
            error,
            ServiceError::Denied(_)
                | ServiceError::NotFound(_)
                | ServiceError::StaleEtag(_)
                | ServiceError::Precondition { .. }
        );
        let retry = self.attempt.load(std::sync::atomic::Ordering::Relaxed) + 1 < MAX_ATTEMPTS
            && (stale || (refused && self.facts().cached));
        if retry {
            self.attempt
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut f = self.facts();
            *f = Facts {
                purpose: f.purpose,
                break_glass: f.break_glass.take(),
                registry: f.registry,
                ..Facts::default()
            };
        }
        retry
    }

    /// Notes that a decision relies on `expect`, and whether it was read
    /// from memory (`cached`).
    fn rely_on(&self, expect: Expect, cached: bool) {
        let mut f = self.facts();
        f.cached |= cached;
        if !f.expects.contains(&expect) {
            f.expects.push(expect);
        }
    }

    /// What the call's decisions and its caller's authentication relied
    /// on.
    fn expectations(&self) -> Vec<Expect> {
        let f = self.facts();
        let mut expects = f.expects.clone();
        expects.extend(f.registry.map(Expect::Registry));
        expects
    }

    /// The registry version the caller's authentication relied on, if any.
    pub fn registry(&self) -> Option<i64> {
        self.facts().registry
    }

    /// Records the registry version the caller's authentication relied on
    /// (`None` if it read no registry).
    pub fn set_registry(&self, version: Option<i64>) {
        self.facts().registry = version;
    }

    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the declared purpose of use.
    pub fn set_purpose(&self, purpose: Purpose) {
        self.facts().purpose = Some(purpose);
    }

    /// Records that the caller invoked emergency access, and why.
    pub fn set_break_glass(&self, reason: String) {
        self.facts().break_glass = Some(reason);
    }

    /// The reason given for emergency access, if invoked.
    fn break_glass(&self) -> Option<String> {
        self.facts().break_glass.clone()
    }

    /// The declared purpose of use, which every read must have.
    fn purpose(&self) -> Result<Purpose, ServiceError> {
        self.facts()
            .purpose
            .ok_or_else(|| Violations::one("purpose", "is required").into())
    }

    fn note_subject(&self, subject: String) {
        self.facts().subject = subject;
    }

    fn note_records(&self, records: Vec<String>) {
        self.facts().records = records;
    }

    fn note_fields(&self, fields: Vec<String>) {
        self.facts().fields = fields;
    }

    /// Records what the entry of this call, if permitted, says it did.
    fn note_remark(&self, code: &'static str, text: String) {
        self.facts().remark = Some((code, text));
    }

    fn note_controller(&self, controller: String) {
        self.facts().controller = controller;
    }

    /// Records the grounds of a permitted read. Several reads in one call
    /// (a list) add up.
    fn note_permit(&self, permit: &Permit) {
        let mut f = self.facts();
        let g = &mut f.grounds;
        for name in permit.agreements() {
            if !g.agreements.contains(name) {
                g.agreements.push(name.clone());
            }
        }
        for basis in permit.lawful_bases() {
            let code = basis.code.code().to_owned();
            if !g.lawful_bases.contains(&code) {
                g.lawful_bases.push(code);
            }
        }
        if let Some(consent) = permit.consent() {
            g.consent = consent.resource_name();
        }
        if let Some(b) = permit.break_glass() {
            g.break_glass = b.reason.clone();
        }
    }

    /// Records what a refusal named.
    fn note_denial(&self, denial: &Denial) {
        let mut f = self.facts();
        if !denial.agreement.is_empty() {
            f.grounds.agreements = vec![denial.agreement.clone()];
        }
        f.grounds.consent = denial.consent.clone();
    }

    fn require_any_role(&self, roles: &[&str]) -> Result<(), ServiceError> {
        if roles.iter().any(|r| self.caller.has_role(r)) {
            Ok(())
        } else {
            Err(ServiceError::denied(
                "ROLE_NOT_PERMITTED",
                format!(
                    "this call needs one of the roles {}, which the caller does not hold",
                    roles.join(", ")
                ),
            ))
        }
    }

    fn require_role(&self, role: &str) -> Result<(), ServiceError> {
        if self.caller.has_role(role) {
            Ok(())
        } else {
            Err(ServiceError::denied(
                "ROLE_NOT_PERMITTED",
                format!("this call needs the {role} role, which the caller does not hold"),
            ))
        }
    }

    /// The ledger entry of this call with `outcome`.
    fn draft(&self, outcome: Outcome, reason_code: &str, reason: &str) -> EntryDraft {
        let f = self.facts().clone();
        EntryDraft {
            id: crate::ledger::new_entry_id(),
            time: self.time,
            request_id: self.request_id.clone(),
            trace_id: self.trace_id.clone(),
            agency: self.caller.agency.as_str().to_owned(),
            principal: self.caller.principal.as_str().to_owned(),
            roles: self
                .caller
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            client_certificate: fingerprint(self.caller.client_certificate),
            action: self.action.to_owned(),
            purpose: f.purpose,
            subject: f.subject,
            records: f.records,
            fields: f.fields,
            outcome,
            reason_code: reason_code.to_owned(),
            reason: reason.to_owned(),
            controller: f.controller,
            grounds: f.grounds,
        }
    }

    fn permitted(&self) -> EntryDraft {
        let remark = self.facts().remark.clone();
        let (code, text) = remark.unwrap_or_default();
        self.draft(Outcome::Permitted, code, &text)
    }
}

/// What Accord's own work (no caller) records about itself: its action,
/// and what it concerns.
struct OwnWork {
    action: &'static str,
    subject: String,
    records: Vec<String>,
    controller: String,
    reason: String,
}

impl OwnWork {
    /// The entry of this work, done at `time` by Accord itself.
    fn entry(self, time: DateTime<Utc>) -> EntryDraft {
        EntryDraft {
            id: crate::ledger::new_entry_id(),
            time,
            request_id: String::new(),
            trace_id: String::new(),
            agency: String::new(),
            principal: "accord".to_owned(),
            roles: vec![],
            client_certificate: String::new(),
            action: self.action.to_owned(),
            purpose: None,
            subject: self.subject,
            records: self.records,
            fields: vec![],
            outcome: Outcome::Permitted,
            reason_code: String::new(),
            reason: self.reason,
            controller: self.controller,
            grounds: Grounds::default(),
        }
    }
}

/// How an entry names a client certificate: hex, or empty for none.
fn fingerprint(certificate: Option<Fingerprint>) -> String {
    certificate.map(|f| f.to_string()).unwrap_or_default()
}

/// How many records [`Services`] holds in memory at most.
const RECORDS_HELD: usize = 10_000;

/// How many record classes [`Services`] holds in memory at most.
const CLASSES_HELD: usize = 4096;

/// The audited operations of Accord, over one store.
#[derive(Debug, Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    clock: SharedClock,
    keys: Arc<CheckpointKeys>,
    alert_policy: AlertPolicy,
    /// How long a stream of events goes without sending anything before
    /// it sends a heartbeat.
    event_heartbeat: std::time::Duration,
    /// Person matching's weights and thresholds.
    matcher: Matcher,
    policies: Arc<PolicyCache>,
    agencies: Arc<AgencyCache>,
    /// Each agency's and client certificate's rate limit.
    limits: Arc<limits::RateLimits>,
    /// Records read or written recently, at their current version, so that
    /// a read can be decided without a round trip. A call that decides on
    /// one relies on it still being current and sealed or not as held
    /// ([`crate::store::Expect::Record`]), checked when its entry commits,
    /// so a record changed or sealed by any process is never disclosed as
    /// it was.
    records: Arc<BoundedMap<RecordId, Record>>,
    /// Record classes once read: a class never changes once in the
    /// catalogue (classes are only added), so there is nothing to check.
    classes: Arc<BoundedMap<RecordClassId, Arc<RecordClass>>>,
    tokens: PageTokens,
}

impl Services {
    /// Services over `store`, telling time with `clock` and signing
    /// checkpoints with `key`.
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, keys: Arc<CheckpointKeys>) -> Self {
        let tokens = PageTokens::new(&keys.current().derive_secret("accord page tokens"));
        Self {
            store,
            clock,
            keys,
            alert_policy: AlertPolicy::default(),
            event_heartbeat: DEFAULT_EVENT_HEARTBEAT,
            matcher: Matcher::default(),
            policies: Arc::new(PolicyCache::default()),
            agencies: Arc::new(AgencyCache::default()),
            limits: Arc::new(limits::RateLimits::default()),
            records: Arc::new(BoundedMap::new(RECORDS_HELD)),
            classes: Arc::new(BoundedMap::new(CLASSES_HELD)),
            tokens,
        }
    }

    /// The same services, raising alerts by `policy`.
    pub fn with_alert_policy(self, policy: AlertPolicy) -> Self {
        Self {
            alert_policy: policy,
            ..self
        }
    }

    /// The same services, their event streams sending a heartbeat after
    /// `interval` without events.
    pub fn with_event_heartbeat(self, interval: std::time::Duration) -> Self {
        Self {
            event_heartbeat: interval,
            ..self
        }
    }

    /// The same services, matching people with `matcher`.
    pub fn with_matcher(self, matcher: Matcher) -> Self {
        Self { matcher, ..self }
    }

    /// The same services, limiting each agency to `agency` calls unless
    /// the registry gives it a limit of its own, and each client
    /// certificate to `certificate`.
    pub fn with_rate_limits(
        self,
        agency: crate::domain::agency::RateLimit,
        certificate: crate::domain::agency::RateLimit,
    ) -> Self {
        Self {
            limits: Arc::new(limits::RateLimits::new(agency, certificate)),
            ..self
        }
    }

    /// The current time, to the microsecond (the precision stored).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// Loads and compiles the agreements and consents decisions are made
    /// from (otherwise the first decision does); returns how many
    /// agreement versions are held.
    pub async fn load_policies(&self) -> Result<usize, ServiceError> {
        Ok(self.policies.refresh(self.store.as_ref()).await?.0.len())
    }

    /// Checks that the caller may make a call needing `access`.
    pub async fn admit(&self, call: &Call, access: Access) -> Result<(), ServiceError> {
        // Operator-side callers (their roles come only from the operator's
        // own credentials) belong to no member agency.
        let is_operator = Role::OPERATOR_ONLY.iter().any(|r| call.caller.has_role(r));
        match access {
            Access::Operator => return call.require_role(Role::OPERATOR),
            Access::MemberOrOperator if is_operator => return Ok(()),
            Access::Member | Access::MemberOrOperator => {}
        }
        let code = &call.caller.agency;
        let held = if call.fresh() {
            None
        } else {
            self.agencies.get(code)
        };
        let status = match held {
            Some(status) => Some(status),
            None => {
                let read = self.store.agency(code).await?.map(|a| a.status);
                self.agencies.put(code, read);
                read
            }
        };
        call.rely_on(Expect::AgencyActive(code.clone()), held.is_some());
        match status {
            None => Err(ServiceError::denied(
                "AGENCY_NOT_REGISTERED",
                format!("agency {} is not registered", code.resource_name()),
            )),
            Some(AgencyStatus::Suspended) => Err(ServiceError::denied(
                "AGENCY_SUSPENDED",
                format!("agency {} is suspended", code.resource_name()),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Admits `call` as [`Services::admit`] does, then takes it from its
    /// agency's and client certificate's rate limits (once per call, not
    /// again when it is decided again).
    pub async fn admit_limited(&self, call: &Call, access: Access) -> Result<(), ServiceError> {
        self.admit(call, access).await?;
        self.check_rate(call).await
    }

    /// Writes the ledger entry of a failed call. If even that fails, the
    /// caller is told the service is unavailable (fail closed). A call that
    /// failed because the database cannot be reached is not tried again for
    /// its entry: it changed and disclosed nothing, and waiting for the
    /// database a second time would only keep the caller longer.
    pub async fn refuse(&self, call: &Call, error: ServiceError) -> ServiceError {
        if let ServiceError::Unavailable(e) = &error
            && e.is_outage()
        {
            return error;
        }
        let draft = call.draft(error.outcome(), error.reason_code(), &error.to_string());
        let alerts = self.refusal_alerts(call, &error).await;
        let raised = !alerts.is_empty();
        match self.store.commit(alerts, draft.clone()).await {
            Ok(_) => error,
            // The refusal must be recorded even if its alerts cannot be.
            Err(e) if raised => {
                tracing::warn!(error = %e, "could not raise alerts with a refusal");
                match self.store.commit(vec![], draft).await {
                    Ok(_) => error,
                    Err(e) => ServiceError::Unavailable(e),
                }
            }
            Err(e) => ServiceError::Unavailable(e),
        }
    }

    /// Writes the ledger entry of a call by `caller` that ended, for `why`,
    /// before any operation took it over (`reason` says what the server
    /// answered).
    pub async fn record_unserved_call(
        &self,
        caller: &Caller,
        request_id: String,
        action: &str,
        why: Unserved,
        reason: &str,
    ) -> Result<Entry, StoreError> {
        self.record_unserved(
            Ok(caller),
            request_id,
            action,
            why.outcome(),
            why.reason_code(),
            reason,
        )
        .await
    }

    /// Writes the ledger entry of a call refused before its caller was
    /// established.
    pub async fn refuse_unauthenticated(
        &self,
        failure: AuthFailure,
        request_id: String,
        action: &str,
    ) -> ServiceError {
        let recorded = self
            .record_unserved(
                Err(&failure),
                request_id,
                action,
                if failure.is_unavailable() {
                    Outcome::Failed
                } else {
                    Outcome::Denied
                },
                failure.code,
                &failure.message,
            )
            .await;
        match recorded {
            Ok(_) => ServiceError::Unauthenticated(failure),
            Err(e) => ServiceError::Unavailable(e),
        }
    }

    /// Writes the ledger entry of a call known only by its identity (or the
    /// identity it claimed) and action: one refused before its caller was
    /// established, or one that failed before any operation took it over
    /// (it could not be decoded, or names no method).
    async fn record_unserved(
        &self,
        identity: Result<&Caller, &AuthFailure>,
        request_id: String,
        action: &str,
        outcome: Outcome,
        reason_code: &str,
        reason: &str,
    ) -> Result<Entry, StoreError> {
        let (agency, principal, roles, certificate, concerns) = match identity {
            Ok(c) => (
                c.agency.as_str().to_owned(),
                c.principal.as_str().to_owned(),
                c.roles.iter().map(|r| r.as_str().to_owned()).collect(),
                c.client_certificate,
                String::new(),
            ),
            Err(f) => (
                f.claimed_agency.clone(),
                f.claimed_principal.clone(),
                vec![],
                f.client_certificate.as_deref().copied(),
                f.concerns.clone(),
            ),
        };
        let draft = EntryDraft {
            id: crate::ledger::new_entry_id(),
            time: self.now(),
            request_id,
            trace_id: String::new(),
            agency,
            principal,
            roles,
            client_certificate: fingerprint(certificate),
            action: action.to_owned(),
            purpose: None,
            subject: String::new(),
            records: vec![],
            fields: vec![],
            outcome,
            reason_code: reason_code.to_owned(),
            reason: reason.to_owned(),
            controller: concerns,
            grounds: Grounds::default(),
        };
        let alerts = if draft.agency.is_empty() && outcome == Outcome::Denied {
            self.unattributed_alert(reason, draft.time).await
        } else {
            Vec::new()
        };
        if alerts.is_empty() {
            return Ok(self.store.commit(vec![], draft).await?.into_entry());
        }
        // The refusal must be recorded even if its alert cannot be.
        match self.store.commit(alerts, draft.clone()).await {
            Ok(receipt) => Ok(receipt.into_entry()),
            Err(e) => {
                tracing::warn!(error = %e, "could not raise an alert with a refusal");
                Ok(self.store.commit(vec![], draft).await?.into_entry())
            }
        }
    }

    /// Commits the call's permitted entry with `writes` (data and alerts);
    /// `value` is what the receipt releases.
    async fn commit<T>(
        &self,
        call: &Call,
        writes: Vec<Write>,
        value: T,
    ) -> Result<Audited<T>, ServiceError> {
        let receipt = self.commit_receipt(call, writes).await?;
        Ok(Audited::new(receipt, value))
    }

    /// Commits the call's permitted entry with `writes`, if what its
    /// decisions relied on still holds.
    async fn commit_receipt(
        &self,
        call: &Call,
        writes: Vec<Write>,
    ) -> Result<Committed, StoreError> {
        self.store
            .commit_expecting(writes, call.expectations(), call.permitted())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::{AgencyCode, PrincipalId};

    fn call(request_id: &str) -> Call {
        let caller = Caller {
            agency: AgencyCode::parse("leeds-cc").unwrap(),
            principal: PrincipalId::parse("sw-1").unwrap(),
            roles: vec![Role::parse("social_worker").unwrap()],
            client_certificate: None,
        };
        Call::new(
            caller,
            request_id.to_owned(),
            "/accord.v1.RecordService/GetRecord",
            Utc::now().trunc_subsecs(6),
        )
    }

    #[tokio::test]
    async fn a_result_is_released_only_for_the_call_whose_entry_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::connect(&crate::store::sqlite_url(dir.path()), true)
            .await
            .unwrap();
        let (key, _) = crate::ledger::checkpoint::SigningKey::generate("accord.test").unwrap();
        let services = Services::new(
            Arc::new(store),
            Arc::new(SystemClock),
            Arc::new(CheckpointKeys::single(key)),
        );
        let (mine, other) = (call("request-1"), call("request-2"));

        let audited = services.commit(&mine, vec![], "result").await.unwrap();
        assert_eq!(audited.entry().draft.request_id, "request-1");
        assert_eq!(audited.release(&mine).unwrap(), "result");

        let audited = services.commit(&mine, vec![], "result").await.unwrap();
        assert!(matches!(
            audited.release(&other),
            Err(ServiceError::NotAudited)
        ));
    }
}
