//! Data sharing agreements: what a provider agency (the controller of the
//! records) lets consumer agencies read, for which purposes, under which
//! lawful basis, and their lifecycle (draft, active once every party has
//! approved, suspended, superseded by a new version, expired).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use super::agency::storage_codes;
use super::{AgencyCode, Purpose, RecordClassId, Role, Violations, check_text};

super::uuid_resource_id!(
    /// An opaque agreement identifier assigned by Accord (a UUID). Every
    /// version of an agreement shares it.
    AgreementId,
    "agreements"
);

/// The legal ground a sharing rests on (UK GDPR Article 6 basis, Article 9
/// condition, or a statutory gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LawfulBasisCode {
    /// UK GDPR Art 6(1)(a): consent.
    UkGdprArt6_1A,
    /// UK GDPR Art 6(1)(c): legal obligation.
    UkGdprArt6_1C,
    /// UK GDPR Art 6(1)(d): vital interests.
    UkGdprArt6_1D,
    /// UK GDPR Art 6(1)(e): public task.
    UkGdprArt6_1E,
    /// UK GDPR Art 9(2)(a): explicit consent.
    UkGdprArt9_2A,
    /// UK GDPR Art 9(2)(b): employment, social security and social protection.
    UkGdprArt9_2B,
    /// UK GDPR Art 9(2)(c): vital interests.
    UkGdprArt9_2C,
    /// UK GDPR Art 9(2)(g): substantial public interest.
    UkGdprArt9_2G,
    /// UK GDPR Art 9(2)(h): health or social care.
    UkGdprArt9_2H,
    /// UK GDPR Art 9(2)(i): public health.
    UkGdprArt9_2I,
    /// DPA 2018 Schedule 1 paragraph 18: safeguarding of children and of
    /// individuals at risk.
    Dpa2018Sch1Para18,
    /// Crime and Disorder Act 1998 section 115: disclosure for crime and
    /// disorder reduction.
    CrimeAndDisorderAct1998S115,
    /// Children Act 1989 section 47: the local authority's duty to
    /// investigate.
    ChildrenAct1989S47,
    /// Care Act 2014 section 42: safeguarding enquiries about adults.
    CareAct2014S42,
}

storage_codes!(LawfulBasisCode {
    UkGdprArt6_1A => "uk_gdpr_art_6_1_a",
    UkGdprArt6_1C => "uk_gdpr_art_6_1_c",
    UkGdprArt6_1D => "uk_gdpr_art_6_1_d",
    UkGdprArt6_1E => "uk_gdpr_art_6_1_e",
    UkGdprArt9_2A => "uk_gdpr_art_9_2_a",
    UkGdprArt9_2B => "uk_gdpr_art_9_2_b",
    UkGdprArt9_2C => "uk_gdpr_art_9_2_c",
    UkGdprArt9_2G => "uk_gdpr_art_9_2_g",
    UkGdprArt9_2H => "uk_gdpr_art_9_2_h",
    UkGdprArt9_2I => "uk_gdpr_art_9_2_i",
    Dpa2018Sch1Para18 => "dpa_2018_sch_1_para_18",
    CrimeAndDisorderAct1998S115 => "crime_and_disorder_act_1998_s115",
    ChildrenAct1989S47 => "children_act_1989_s47",
    CareAct2014S42 => "care_act_2014_s42",
});

impl LawfulBasisCode {
    /// The basis in plain words, for staff and citizens.
    pub fn words(self) -> &'static str {
        match self {
            Self::UkGdprArt6_1A => "the person's consent (UK GDPR Article 6(1)(a))",
            Self::UkGdprArt6_1C => "a legal obligation (UK GDPR Article 6(1)(c))",
            Self::UkGdprArt6_1D => "protecting someone's life (UK GDPR Article 6(1)(d))",
            Self::UkGdprArt6_1E => "a public task (UK GDPR Article 6(1)(e))",
            Self::UkGdprArt9_2A => "the person's explicit consent (UK GDPR Article 9(2)(a))",
            Self::UkGdprArt9_2B => {
                "employment, social security and social protection (UK GDPR Article 9(2)(b))"
            }
            Self::UkGdprArt9_2C => "protecting someone's life (UK GDPR Article 9(2)(c))",
            Self::UkGdprArt9_2G => "substantial public interest (UK GDPR Article 9(2)(g))",
            Self::UkGdprArt9_2H => "health or social care (UK GDPR Article 9(2)(h))",
            Self::UkGdprArt9_2I => "public health (UK GDPR Article 9(2)(i))",
            Self::Dpa2018Sch1Para18 => {
                "safeguarding children and people at risk (Data Protection Act 2018, \
                 Schedule 1, paragraph 18)"
            }
            Self::CrimeAndDisorderAct1998S115 => {
                "preventing crime and disorder (Crime and Disorder Act 1998, section 115)"
            }
            Self::ChildrenAct1989S47 => {
                "a child protection enquiry (Children Act 1989, section 47)"
            }
            Self::CareAct2014S42 => "an adult safeguarding enquiry (Care Act 2014, section 42)",
        }
    }
}

/// A lawful basis: its code and the legal reference as the agreement cites
/// it (free text, e.g. "Art 6(1)(e) UK GDPR; Children Act 2004 s11").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LawfulBasis {
    pub code: LawfulBasisCode,
    pub reference: String,
}

impl fmt::Display for LawfulBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reference.is_empty() {
            f.write_str(self.code.code())
        } else {
            write!(f, "{} ({})", self.code.code(), self.reference)
        }
    }
}

/// Whether the subject's consent is needed for a sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRequirement {
    /// A valid consent must cover the access and no objection may.
    Required,
    /// The sharing rests on another basis (e.g. statutory safeguarding).
    NotRequired,
}

storage_codes!(ConsentRequirement {
    Required => "required",
    NotRequired => "not_required",
});

/// The stored lifecycle state of an agreement version. Expiry is not
/// stored: it follows from the period ([`Agreement::status_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementStatus {
    /// Proposed; waiting for every party's approval.
    Draft,
    /// Approved by every party: grants access within its period.
    Active,
    /// Stopped by a party; grants nothing until reinstated.
    Suspended,
    /// Replaced by a later version (or a draft abandoned for a newer one).
    Superseded,
    /// Its period has ended.
    Expired,
}

storage_codes!(AgreementStatus {
    Draft => "draft",
    Active => "active",
    Suspended => "suspended",
    Superseded => "superseded",
    Expired => "expired",
});

/// The fields of one record class that holders of one role at a consumer
/// agency may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldGrant {
    pub role: Role,
    pub record_class: RecordClassId,
    pub fields: BTreeSet<String>,
}

/// What one consumer agency may read under an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerTerms {
    pub agency: AgencyCode,
    pub grants: Vec<FieldGrant>,
}

impl ConsumerTerms {
    /// The roles granted anything.
    pub fn roles(&self) -> BTreeSet<&Role> {
        self.grants.iter().map(|g| &g.role).collect()
    }
}

/// The terms of an agreement: everything its parties sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementTerms {
    pub title: String,
    /// The controller of the records shared.
    pub provider: AgencyCode,
    pub consumers: Vec<ConsumerTerms>,
    pub record_classes: Vec<RecordClassId>,
    pub purposes: Vec<Purpose>,
    pub lawful_bases: Vec<LawfulBasis>,
    pub consent: ConsentRequirement,
    /// Whether records and subjects the provider has sealed are shared too.
    pub covers_sealed: bool,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub review_date: NaiveDate,
}

impl AgreementTerms {
    /// Checks the terms as a whole (each value is already valid on its
    /// own): every bad part is reported, under `{prefix}.{field}`.
    pub fn check(&self, prefix: &str) -> Result<(), Violations> {
        let mut v = Violations::new();
        let p = |field: &str| format!("{prefix}.{field}");
        if let Err(e) = check_text(&self.title, 1, 200) {
            v.add(p("title"), e);
        }
        if self.consumers.is_empty() {
            v.add(p("consumers"), "must name at least one consumer agency");
        }
        if self.record_classes.is_empty() {
            v.add(p("record_classes"), "must name at least one record class");
        }
        if let Some(dup) = first_duplicate(&self.record_classes) {
            v.add(p("record_classes"), format!("names {dup} twice"));
        }
        if self.purposes.is_empty() {
            v.add(p("purposes"), "must name at least one purpose of use");
        }
        if let Some(dup) = first_duplicate(&self.purposes) {
            v.add(p("purposes"), format!("names {} twice", dup.code()));
        }
        if self.lawful_bases.is_empty() {
            v.add(p("lawful_bases"), "must name at least one lawful basis");
        }
        for (i, basis) in self.lawful_bases.iter().enumerate() {
            if let Err(e) = check_text(&basis.reference, 0, 500) {
                v.add(p(&format!("lawful_bases[{i}].reference")), e);
            }
        }
        if self.valid_until <= self.valid_from {
            v.add(p("valid_until"), "must be after valid_from");
        }
        if self.review_date < self.valid_from.date_naive() {
            v.add(p("review_date"), "must not be before the agreement starts");
        }
        let mut seen = BTreeSet::new();
        for (i, consumer) in self.consumers.iter().enumerate() {
            let cp = format!("consumers[{i}]");
            if consumer.agency == self.provider {
                v.add(
                    p(&format!("{cp}.agency")),
                    "is the provider: an agency always sees its own records",
                );
            }
            if !seen.insert(&consumer.agency) {
                v.add(
                    p(&format!("{cp}.agency")),
                    format!("{} is named twice", consumer.agency),
                );
            }
            if consumer.grants.is_empty() {
                v.add(
                    p(&format!("{cp}.grants")),
                    "must grant at least one role some fields",
                );
            }
            let mut pairs = BTreeSet::new();
            for (j, grant) in consumer.grants.iter().enumerate() {
                let gp = p(&format!("{cp}.grants[{j}]"));
                if !self.record_classes.contains(&grant.record_class) {
                    v.add(
                        format!("{gp}.record_class"),
                        format!(
                            "{} is not among the agreement's record classes",
                            grant.record_class
                        ),
                    );
                }
                if !pairs.insert((&grant.role, &grant.record_class)) {
                    v.add(
                        format!("{gp}.role"),
                        format!(
                            "role {} already has a grant for {}",
                            grant.role, grant.record_class
                        ),
                    );
                }
                if grant.fields.is_empty() {
                    v.add(format!("{gp}.fields"), "must name at least one field");
                }
            }
        }
        v.into_result(|| Some(()))
    }

    /// The parties: the provider, then the consumers.
    pub fn parties(&self) -> impl Iterator<Item = &AgencyCode> {
        std::iter::once(&self.provider).chain(self.consumers.iter().map(|c| &c.agency))
    }

    /// Whether `agency` is a party.
    pub fn is_party(&self, agency: &AgencyCode) -> bool {
        self.parties().any(|p| p == agency)
    }

    /// The terms for `agency` as a consumer.
    pub fn consumer(&self, agency: &AgencyCode) -> Option<&ConsumerTerms> {
        self.consumers.iter().find(|c| &c.agency == agency)
    }
}

fn first_duplicate<T: PartialEq>(items: &[T]) -> Option<&T> {
    items
        .iter()
        .enumerate()
        .find(|(i, item)| items[..*i].contains(item))
        .map(|(_, item)| item)
}

/// A party's approval of an agreement version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub agency: AgencyCode,
    pub principal: String,
    pub time: DateTime<Utc>,
}

/// Who suspended an agreement, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub agency: AgencyCode,
    pub principal: String,
    pub time: DateTime<Utc>,
    pub reason: String,
}

/// One version of an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub id: AgreementId,
    /// From 1; each change of terms makes a new version.
    pub version: i64,
    pub terms: AgreementTerms,
    /// The stored state; see [`Agreement::status_at`] for expiry.
    pub status: AgreementStatus,
    pub approvals: Vec<Approval>,
    /// Set while suspended (and kept, as history, once reinstated).
    pub suspension: Option<Suspension>,
    pub created_by: AgencyCode,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Counts the lifecycle steps of this version, from 0.
    pub revision: i64,
}

/// Why a lifecycle step is not possible now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("agency {agency} is not a party to {agreement}")]
    NotAParty {
        agreement: String,
        agency: AgencyCode,
    },
    #[error("{agreement} is {status}; only a {expected} agreement can be {step}")]
    WrongStatus {
        agreement: String,
        status: &'static str,
        expected: &'static str,
        step: &'static str,
    },
    #[error("agency {agency} has already approved {agreement}")]
    AlreadyApproved {
        agreement: String,
        agency: AgencyCode,
    },
}

impl Agreement {
    /// A new draft.
    pub fn draft(
        id: AgreementId,
        version: i64,
        terms: AgreementTerms,
        created_by: AgencyCode,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            version,
            terms,
            status: AgreementStatus::Draft,
            approvals: Vec::new(),
            suspension: None,
            created_by,
            create_time: now,
            update_time: now,
            revision: 0,
        }
    }

    /// Opaque tag of this version's state.
    pub fn etag(&self) -> String {
        format!("{}.{}", self.version, self.revision)
    }

    /// This version after one more lifecycle step at `now`.
    fn stepped(&self, status: AgreementStatus, now: DateTime<Utc>) -> Self {
        Self {
            status,
            update_time: now,
            revision: self.revision + 1,
            ..self.clone()
        }
    }

    /// `agreements/{id}`.
    pub fn resource_name(&self) -> String {
        self.id.resource_name()
    }

    /// `agreements/{id}@{version}`: how entries and denials name it.
    pub fn version_name(&self) -> String {
        format!("{}@{}", self.id.resource_name(), self.version)
    }

    /// The state at `now`: an active or suspended agreement whose period has
    /// ended is expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> AgreementStatus {
        match self.status {
            AgreementStatus::Active | AgreementStatus::Suspended | AgreementStatus::Draft
                if now >= self.terms.valid_until =>
            {
                AgreementStatus::Expired
            }
            s => s,
        }
    }

    /// Whether it grants anything at `now`: active and within its period.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.status == AgreementStatus::Active
            && self.terms.valid_from <= now
            && now < self.terms.valid_until
    }

    /// The parties that have not approved yet.
    pub fn awaiting(&self) -> Vec<&AgencyCode> {
        self.terms
            .parties()
            .filter(|p| !self.approvals.iter().any(|a| &a.agency == *p))
            .collect()
    }

    fn expect(
        &self,
        expected: AgreementStatus,
        step: &'static str,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        let status = self.status_at(now);
        if status == expected {
            Ok(())
        } else {
            Err(LifecycleError::WrongStatus {
                agreement: self.version_name(),
                status: status.code(),
                expected: expected.code(),
                step,
            })
        }
    }

    fn party(&self, agency: &AgencyCode) -> Result<(), LifecycleError> {
        if self.terms.is_party(agency) {
            Ok(())
        } else {
            Err(LifecycleError::NotAParty {
                agreement: self.version_name(),
                agency: agency.clone(),
            })
        }
    }

    /// Records `agency`'s approval; the last party's approval makes the
    /// version active.
    pub fn approve(
        &self,
        agency: &AgencyCode,
        principal: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, LifecycleError> {
        self.party(agency)?;
        self.expect(AgreementStatus::Draft, "approved", now)?;
        if self.approvals.iter().any(|a| &a.agency == agency) {
            return Err(LifecycleError::AlreadyApproved {
                agreement: self.version_name(),
                agency: agency.clone(),
            });
        }
        let mut next = self.stepped(AgreementStatus::Draft, now);
        next.approvals.push(Approval {
            agency: agency.clone(),
            principal: principal.to_owned(),
            time: now,
        });
        if next.awaiting().is_empty() {
            next.status = AgreementStatus::Active;
        }
        Ok(next)
    }

    /// Suspends an active version.
    pub fn suspend(
        &self,
        agency: &AgencyCode,
        principal: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, LifecycleError> {
        self.party(agency)?;
        self.expect(AgreementStatus::Active, "suspended", now)?;
        Ok(Self {
            suspension: Some(Suspension {
                agency: agency.clone(),
                principal: principal.to_owned(),
                time: now,
                reason: reason.to_owned(),
            }),
            ..self.stepped(AgreementStatus::Suspended, now)
        })
    }

    /// Reinstates a suspended version.
    pub fn reinstate(
        &self,
        agency: &AgencyCode,
        now: DateTime<Utc>,
    ) -> Result<Self, LifecycleError> {
        self.party(agency)?;
        self.expect(AgreementStatus::Suspended, "reinstated", now)?;
        Ok(self.stepped(AgreementStatus::Active, now))
    }

    /// Checks that `agency` may propose new terms for this agreement.
    pub fn check_revisable(
        &self,
        agency: &AgencyCode,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        self.party(agency)?;
        match self.status_at(now) {
            AgreementStatus::Superseded | AgreementStatus::Expired => {
                Err(LifecycleError::WrongStatus {
                    agreement: self.version_name(),
                    status: self.status_at(now).code(),
                    expected: "draft, active or suspended",
                    step: "revised",
                })
            }
            _ => Ok(()),
        }
    }

    /// This version, replaced by a later one.
    pub fn superseded(&self, now: DateTime<Utc>) -> Self {
        self.stepped(AgreementStatus::Superseded, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn code(s: &str) -> AgencyCode {
        AgencyCode::parse(s).unwrap()
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap()
    }

    pub(crate) fn terms() -> AgreementTerms {
        AgreementTerms {
            title: "Safeguarding children".to_owned(),
            provider: code("leeds-health"),
            consumers: vec![ConsumerTerms {
                agency: code("leeds-council"),
                grants: vec![FieldGrant {
                    role: Role::parse("social_worker").unwrap(),
                    record_class: RecordClassId::parse("health.summary").unwrap(),
                    fields: ["allergies".to_owned()].into(),
                }],
            }],
            record_classes: vec![RecordClassId::parse("health.summary").unwrap()],
            purposes: vec![Purpose::Safeguarding],
            lawful_bases: vec![LawfulBasis {
                code: LawfulBasisCode::Dpa2018Sch1Para18,
                reference: "DPA 2018 Sch 1 para 18".to_owned(),
            }],
            consent: ConsentRequirement::NotRequired,
            covers_sealed: false,
            valid_from: at(1),
            valid_until: at(20),
            review_date: at(10).date_naive(),
        }
    }

    #[test]
    fn sound_terms_pass_and_each_fault_is_named() {
        assert!(terms().check("agreement").is_ok());
        let mut bad = terms();
        bad.consumers[0].agency = code("leeds-health");
        bad.consumers[0].grants[0].record_class = RecordClassId::parse("police.incident").unwrap();
        bad.purposes.push(Purpose::Safeguarding);
        bad.valid_until = at(1);
        let fields: Vec<String> = bad
            .check("agreement")
            .unwrap_err()
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "agreement.purposes",
                "agreement.valid_until",
                "agreement.consumers[0].agency",
                "agreement.consumers[0].grants[0].record_class",
            ]
        );
    }

    #[test]
    fn every_party_must_approve_before_it_is_active() {
        let draft = Agreement::draft(
            AgreementId::generate(),
            1,
            terms(),
            code("leeds-health"),
            at(1),
        );
        let once = draft.approve(&code("leeds-health"), "ig-1", at(2)).unwrap();
        assert_eq!(once.status, AgreementStatus::Draft);
        assert!(!once.in_force(at(3)));
        assert!(matches!(
            once.approve(&code("leeds-health"), "ig-1", at(2)),
            Err(LifecycleError::AlreadyApproved { .. })
        ));
        assert!(matches!(
            once.approve(&code("west-police"), "ig-9", at(2)),
            Err(LifecycleError::NotAParty { .. })
        ));
        let active = once.approve(&code("leeds-council"), "ig-2", at(3)).unwrap();
        assert_eq!(active.status, AgreementStatus::Active);
        assert!(active.in_force(at(3)));
        assert!(
            !active.in_force(at(20)),
            "the end of the period is exclusive"
        );
        assert_eq!(active.status_at(at(20)), AgreementStatus::Expired);
    }

    #[test]
    fn suspension_and_reinstatement_by_any_party() {
        let active = Agreement {
            status: AgreementStatus::Active,
            ..Agreement::draft(
                AgreementId::generate(),
                1,
                terms(),
                code("leeds-health"),
                at(1),
            )
        };
        let suspended = active
            .suspend(
                &code("leeds-council"),
                "ig-2",
                "data breach under review",
                at(4),
            )
            .unwrap();
        assert!(!suspended.in_force(at(5)));
        assert!(
            suspended
                .suspend(&code("leeds-health"), "ig-1", "x", at(5))
                .is_err()
        );
        let back = suspended.reinstate(&code("leeds-health"), at(6)).unwrap();
        assert!(back.in_force(at(6)));
        assert!(matches!(
            active.reinstate(&code("leeds-health"), at(6)),
            Err(LifecycleError::WrongStatus { .. })
        ));
        assert!(matches!(
            active.suspend(&code("leeds-health"), "ig-1", "too late", at(21)),
            Err(LifecycleError::WrongStatus {
                status: "expired",
                ..
            })
        ));
    }

    #[test]
    fn storage_codes_round_trip() {
        for c in [
            LawfulBasisCode::UkGdprArt6_1E,
            LawfulBasisCode::Dpa2018Sch1Para18,
            LawfulBasisCode::CareAct2014S42,
        ] {
            assert_eq!(LawfulBasisCode::from_code(c.code()), Some(c));
        }
        assert_eq!(
            AgreementStatus::from_code("active"),
            Some(AgreementStatus::Active)
        );
    }
}
