//! The decision function, case by case: every reason code, the field-union
//! rule, emergency access; and an exhaustive check that the explanation of
//! a refusal agrees with Cedar's decision.

use chrono::TimeZone;

use super::*;
use crate::domain::agreement::{
    AgreementId, AgreementTerms, ConsumerTerms, FieldGrant, LawfulBasisCode, Suspension,
};
use crate::domain::consent::{Channel, ConsentKind, ConsentScope, Withdrawal};
use crate::domain::{PrincipalId, Role, SubjectId};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, day, 12, 0, 0).unwrap()
}

fn agency(s: &str) -> AgencyCode {
    AgencyCode::parse(s).unwrap()
}

fn class(s: &str) -> RecordClassId {
    RecordClassId::parse(s).unwrap()
}

fn grant(role: &str, class_id: &str, fields: &[&str]) -> FieldGrant {
    FieldGrant {
        role: Role::parse(role).unwrap(),
        record_class: class(class_id),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
    }
}

struct Spec {
    name: &'static str,
    provider: &'static str,
    consumer: &'static str,
    grants: Vec<FieldGrant>,
    purposes: Vec<Purpose>,
    consent: ConsentRequirement,
    covers_sealed: bool,
    status: AgreementStatus,
    until: u32,
}

/// The `n`th agreement: ids sort in the order the specs are listed, so
/// that "the first agreement" is predictable.
fn agreement(n: usize, spec: Spec) -> Agreement {
    let mut classes: Vec<RecordClassId> =
        spec.grants.iter().map(|g| g.record_class.clone()).collect();
    classes.sort();
    classes.dedup();
    let terms = AgreementTerms {
        title: spec.name.to_owned(),
        provider: agency(spec.provider),
        consumers: vec![ConsumerTerms {
            agency: agency(spec.consumer),
            grants: spec.grants,
        }],
        record_classes: classes,
        purposes: spec.purposes,
        lawful_bases: vec![LawfulBasis {
            code: LawfulBasisCode::UkGdprArt6_1E,
            reference: spec.name.to_owned(),
        }],
        consent: spec.consent,
        covers_sealed: spec.covers_sealed,
        valid_from: at(1),
        valid_until: at(spec.until),
        review_date: at(10).date_naive(),
    };
    let id = AgreementId::from_stored(format!("00000000-0000-4000-8000-0000000000{:02}", n + 1));
    let mut a = Agreement::draft(id, 1, terms, agency(spec.provider), at(1));
    a.status = spec.status;
    if spec.status == AgreementStatus::Suspended {
        a.suspension = Some(Suspension {
            agency: agency(spec.consumer),
            principal: "ig-1".to_owned(),
            time: at(3),
            reason: "under review after a complaint".to_owned(),
        });
    }
    a
}

fn world_specs() -> Vec<Agreement> {
    world_specs_raw()
        .into_iter()
        .enumerate()
        .map(|(n, s)| agreement(n, s))
        .collect()
}

/// Health shares with the council: safeguarding without consent (A), direct
/// care with consent (B); a draft with the police; the council's suspended
/// agreement with health; the police's expired one with the council; and
/// health's sharing of sealed mental health records with consent (F).
fn world() -> Agreements {
    Agreements::new(world_specs()).unwrap()
}

fn world_specs_raw() -> Vec<Spec> {
    vec![
        Spec {
            name: "A",
            provider: "health",
            consumer: "council",
            grants: vec![grant(
                "social_worker",
                "health.summary",
                &["allergies", "conditions"],
            )],
            purposes: vec![Purpose::Safeguarding, Purpose::Emergency],
            consent: ConsentRequirement::NotRequired,
            covers_sealed: false,
            status: AgreementStatus::Active,
            until: 28,
        },
        Spec {
            name: "BB",
            provider: "health",
            consumer: "council",
            grants: vec![
                grant("social_worker", "health.summary", &["medications"]),
                grant(
                    "care_coordinator",
                    "health.summary",
                    &["medications", "conditions"],
                ),
            ],
            purposes: vec![Purpose::DirectCare, Purpose::Emergency],
            consent: ConsentRequirement::Required,
            covers_sealed: false,
            status: AgreementStatus::Active,
            until: 28,
        },
        Spec {
            name: "CCC",
            provider: "health",
            consumer: "police",
            grants: vec![grant("officer", "health.summary", &["allergies"])],
            purposes: vec![Purpose::CrimePrevention, Purpose::Emergency],
            consent: ConsentRequirement::NotRequired,
            covers_sealed: false,
            status: AgreementStatus::Draft,
            until: 28,
        },
        Spec {
            name: "DDDD",
            provider: "council",
            consumer: "health",
            grants: vec![grant("nurse", "social_care.referral", &["reason"])],
            purposes: vec![Purpose::DirectCare],
            consent: ConsentRequirement::NotRequired,
            covers_sealed: false,
            status: AgreementStatus::Suspended,
            until: 28,
        },
        Spec {
            name: "EEEEE",
            provider: "police",
            consumer: "council",
            grants: vec![grant("social_worker", "police.incident", &["summary"])],
            purposes: vec![Purpose::Safeguarding],
            consent: ConsentRequirement::NotRequired,
            covers_sealed: false,
            status: AgreementStatus::Active,
            until: 10,
        },
        Spec {
            name: "F",
            provider: "health",
            consumer: "council",
            grants: vec![grant(
                "care_coordinator",
                "health.mental_health",
                &["diagnosis"],
            )],
            purposes: vec![Purpose::DirectCare, Purpose::Emergency],
            consent: ConsentRequirement::Required,
            covers_sealed: true,
            status: AgreementStatus::Active,
            until: 28,
        },
    ]
}

fn consent(kind: ConsentKind, withdrawn: bool) -> Consent {
    Consent {
        id: ConsentId::from_stored("00000000-0000-4000-9000-000000000001".to_owned()),
        subject: SubjectId::generate(),
        kind,
        scope: ConsentScope::default(),
        channel: Channel::Telephone,
        valid_from: at(1),
        valid_until: None,
        note: String::new(),
        recorded_by: agency("health"),
        recorded_principal: "gp-7".to_owned(),
        record_time: at(1),
        withdrawal: withdrawn.then(|| Withdrawal {
            agency: agency("health"),
            principal: "gp-7".to_owned(),
            time: at(12),
            reason: "changed their mind".to_owned(),
        }),
    }
}

/// A case: who asks, for what, and what must come of it.
struct Case {
    name: &'static str,
    agency: &'static str,
    roles: &'static [&'static str],
    controller: &'static str,
    class: &'static str,
    purpose: Purpose,
    break_glass: Option<&'static str>,
    sealed: bool,
    consents: Vec<Consent>,
    day: u32,
    expect: Expect,
}

enum Expect {
    All,
    Fields {
        fields: &'static [&'static str],
        agreements: &'static [&'static str],
        consent: bool,
        overrode: Option<Option<&'static str>>,
    },
    Deny(&'static str, &'static str),
}

fn base(name: &'static str) -> Case {
    Case {
        name,
        agency: "council",
        roles: &["social_worker"],
        controller: "health",
        class: "health.summary",
        purpose: Purpose::Safeguarding,
        break_glass: None,
        sealed: false,
        consents: vec![],
        day: 15,
        expect: Expect::All,
    }
}

const A: &str = "agreements/00000000-0000-4000-8000-000000000001@1";
const B: &str = "agreements/00000000-0000-4000-8000-000000000002@1";
const F: &str = "agreements/00000000-0000-4000-8000-000000000006@1";

fn cases() -> Vec<Case> {
    use ConsentKind::{Consent as Yes, Objection as No};
    vec![
        Case {
            agency: "health",
            roles: &[],
            purpose: Purpose::Administration,
            ..base("the controller sees its own record in full")
        },
        Case {
            expect: Expect::Fields {
                fields: &["allergies", "conditions"],
                agreements: &[A],
                consent: false,
                overrode: None,
            },
            ..base("safeguarding needs no consent")
        },
        Case {
            consents: vec![consent(No, false)],
            expect: Expect::Fields {
                fields: &["allergies", "conditions"],
                agreements: &[A],
                consent: false,
                overrode: None,
            },
            ..base("an objection does not stop a sharing that needs no consent")
        },
        Case {
            agency: "police",
            controller: "council",
            class: "social_care.referral",
            expect: Expect::Deny(
                "NO_AGREEMENT",
                "no sharing agreement lets agency police read records controlled by agency council",
            ),
            ..base("no agreement between the agencies")
        },
        Case {
            class: "health.immunisations",
            expect: Expect::Deny(
                "RECORD_CLASS_NOT_COVERED",
                "does not cover health.immunisations records",
            ),
            ..base("the class is not covered")
        },
        Case {
            agency: "police",
            roles: &["officer"],
            purpose: Purpose::CrimePrevention,
            expect: Expect::Deny(
                "AGREEMENT_NOT_ACTIVE",
                "is a draft still awaiting approval by health, police",
            ),
            ..base("a draft grants nothing")
        },
        Case {
            agency: "health",
            roles: &["nurse"],
            controller: "council",
            class: "social_care.referral",
            purpose: Purpose::DirectCare,
            expect: Expect::Deny(
                "AGREEMENT_NOT_ACTIVE",
                "was suspended by agency health on 2026-05-03: under review after a complaint",
            ),
            ..base("a suspended agreement grants nothing")
        },
        Case {
            controller: "police",
            class: "police.incident",
            expect: Expect::Deny("AGREEMENT_EXPIRED", "expired on 2026-05-10"),
            ..base("an expired agreement grants nothing")
        },
        Case {
            controller: "police",
            class: "police.incident",
            day: 9,
            expect: Expect::Fields {
                fields: &["summary"],
                agreements: &["agreements/00000000-0000-4000-8000-000000000005@1"],
                consent: false,
                overrode: None,
            },
            ..base("the same agreement before it expired")
        },
        Case {
            day: 0,
            expect: Expect::Deny("AGREEMENT_NOT_ACTIVE", "comes into force on 2026-05-01"),
            ..base("before the agreement starts")
        },
        Case {
            purpose: Purpose::Research,
            expect: Expect::Deny("PURPOSE_NOT_PERMITTED", "but not for research"),
            ..base("the purpose is not permitted")
        },
        Case {
            roles: &["receptionist"],
            expect: Expect::Deny(
                "ROLE_NOT_PERMITTED",
                "lets only the roles social_worker of agency council read health.summary records; the caller holds receptionist",
            ),
            ..base("the role is not permitted")
        },
        Case {
            roles: &[],
            expect: Expect::Deny("ROLE_NOT_PERMITTED", "the caller holds no role"),
            ..base("a caller with no role")
        },
        Case {
            sealed: true,
            expect: Expect::Deny("RECORD_SEALED", "agency health has sealed this record"),
            ..base("a sealed record")
        },
        Case {
            purpose: Purpose::DirectCare,
            expect: Expect::Deny(
                "CONSENT_REQUIRED",
                "needs the subject's consent, and none covers direct_care access",
            ),
            ..base("consent is needed and absent")
        },
        Case {
            purpose: Purpose::DirectCare,
            consents: vec![consent(Yes, true)],
            expect: Expect::Deny(
                "CONSENT_WITHDRAWN",
                "withdrew consent consents/00000000-0000-4000-9000-000000000001 on 2026-05-12",
            ),
            ..base("consent withdrawn")
        },
        Case {
            purpose: Purpose::DirectCare,
            consents: vec![consent(Yes, true)],
            day: 11,
            expect: Expect::Deny(
                "CONSENT_WITHDRAWN",
                "withdrew consent consents/00000000-0000-4000-9000-000000000001 on 2026-05-12",
            ),
            ..base("a call timed before the withdrawal but decided after it")
        },
        Case {
            purpose: Purpose::DirectCare,
            consents: vec![consent(Yes, false), consent(No, false)],
            expect: Expect::Deny(
                "OBJECTION_RECORDED",
                "the subject has objected to this sharing",
            ),
            ..base("objection beats consent")
        },
        Case {
            purpose: Purpose::DirectCare,
            consents: vec![consent(Yes, false)],
            expect: Expect::Fields {
                fields: &["medications"],
                agreements: &[B],
                consent: true,
                overrode: None,
            },
            ..base("consent given")
        },
        Case {
            roles: &["social_worker", "care_coordinator"],
            purpose: Purpose::DirectCare,
            consents: vec![consent(Yes, false)],
            expect: Expect::Fields {
                fields: &["conditions", "medications"],
                agreements: &[B],
                consent: true,
                overrode: None,
            },
            ..base("two roles: the union of their grants")
        },
        Case {
            purpose: Purpose::Emergency,
            consents: vec![consent(Yes, false)],
            expect: Expect::Fields {
                fields: &["allergies", "conditions", "medications"],
                agreements: &[A, B],
                consent: true,
                overrode: None,
            },
            ..base("two agreements: the union of their grants")
        },
        Case {
            purpose: Purpose::Emergency,
            consents: vec![consent(No, false)],
            break_glass: Some("unconscious in A&E"),
            expect: Expect::Fields {
                fields: &["allergies", "conditions", "medications"],
                agreements: &[A, B],
                consent: false,
                overrode: Some(Some("OBJECTION_RECORDED")),
            },
            ..base("break glass overrides an objection")
        },
        Case {
            purpose: Purpose::Emergency,
            consents: vec![consent(No, false)],
            expect: Expect::Fields {
                fields: &["allergies", "conditions"],
                agreements: &[A],
                consent: false,
                overrode: None,
            },
            ..base("an emergency without breaking the glass keeps to what needs no consent")
        },
        Case {
            purpose: Purpose::Emergency,
            break_glass: Some("   "),
            consents: vec![consent(No, false)],
            expect: Expect::Fields {
                fields: &["allergies", "conditions"],
                agreements: &[A],
                consent: false,
                overrode: None,
            },
            ..base("a blank reason does not break the glass")
        },
        Case {
            class: "health.mental_health",
            roles: &["care_coordinator"],
            purpose: Purpose::Emergency,
            break_glass: Some("overdose"),
            sealed: true,
            expect: Expect::Fields {
                fields: &["diagnosis"],
                agreements: &[F],
                consent: false,
                overrode: Some(Some("CONSENT_REQUIRED")),
            },
            ..base("break glass with an agreement that covers sealed records")
        },
        Case {
            purpose: Purpose::DirectCare,
            break_glass: Some("unconscious"),
            expect: Expect::Deny("CONSENT_REQUIRED", "needs the subject's consent"),
            ..base("break glass counts only for an emergency")
        },
        Case {
            agency: "police",
            roles: &["officer"],
            purpose: Purpose::Emergency,
            break_glass: Some("collapsed in custody"),
            expect: Expect::Deny("AGREEMENT_NOT_ACTIVE", "is a draft"),
            ..base("break glass never overrides a missing agreement")
        },
        Case {
            agency: "police",
            roles: &["officer"],
            controller: "council",
            class: "social_care.referral",
            purpose: Purpose::Emergency,
            break_glass: Some("collapsed in custody"),
            expect: Expect::Deny("NO_AGREEMENT", "no sharing agreement"),
            ..base("nor the absence of any agreement")
        },
        Case {
            purpose: Purpose::Emergency,
            break_glass: Some("unconscious"),
            sealed: true,
            expect: Expect::Deny("RECORD_SEALED", "has sealed this record"),
            ..base("break glass never overrides a seal")
        },
        Case {
            purpose: Purpose::Emergency,
            break_glass: Some("unconscious"),
            consents: vec![consent(Yes, false)],
            expect: Expect::Fields {
                fields: &["allergies", "conditions", "medications"],
                agreements: &[A, B],
                consent: true,
                overrode: Some(None),
            },
            ..base("break glass with consent overrides nothing but is still marked")
        },
    ]
}

fn caller(agency_code: &str, roles: &[&str]) -> Caller {
    Caller {
        agency: agency(agency_code),
        principal: PrincipalId::parse("staff-1").unwrap(),
        client_certificate: None,
        roles: roles.iter().map(|r| Role::parse(r).unwrap()).collect(),
    }
}

#[test]
fn every_case_decides_as_expected() {
    let agreements = world();
    for case in cases() {
        let caller = caller(case.agency, case.roles);
        let controller = agency(case.controller);
        let class = class(case.class);
        let read = Read {
            caller: &caller,
            purpose: case.purpose,
            break_glass: case.break_glass,
            now: if case.day == 0 {
                at(1) - chrono::Duration::hours(1)
            } else {
                at(case.day)
            },
            controller: &controller,
            record_class: &class,
            sealed: case.sealed,
        };
        let decision = decide_read(&agreements, &case.consents, &read).unwrap();
        let name = case.name;
        match (case.expect, decision) {
            (Expect::All, Decision::Permit(p)) => assert_eq!(p, Permit::controller(), "{name}"),
            (
                Expect::Fields {
                    fields,
                    agreements: names,
                    consent,
                    overrode,
                },
                Decision::Permit(p),
            ) => {
                let got: Vec<&str> = match &p.fields {
                    FieldMask::Only(f) => f.iter().map(String::as_str).collect(),
                    FieldMask::All => panic!("{name}: all fields disclosed"),
                };
                assert_eq!(got, fields, "{name}: fields");
                assert_eq!(p.agreements, names, "{name}: agreements");
                assert_eq!(p.consent.is_some(), consent, "{name}: consent relied on");
                assert_eq!(
                    p.break_glass.as_ref().map(|b| b.overrode),
                    overrode,
                    "{name}: break glass"
                );
                assert_eq!(p.lawful_bases.len(), names.len(), "{name}: lawful bases");
            }
            (Expect::Deny(code, words), Decision::Deny(d)) => {
                assert_eq!(d.code, code, "{name}: {}", d.message);
                assert!(
                    d.message.contains(words),
                    "{name}: {:?} lacks {words:?}",
                    d.message
                );
                let names_agreement = !matches!(code, "NO_AGREEMENT");
                assert_eq!(
                    !d.agreement.is_empty(),
                    names_agreement,
                    "{name}: agreement named"
                );
                let names_consent = matches!(code, "CONSENT_WITHDRAWN" | "OBJECTION_RECORDED");
                assert_eq!(
                    !d.consent.is_empty(),
                    names_consent,
                    "{name}: consent named"
                );
            }
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

/// Over every combination of roles, purposes, classes, seal, consent
/// position, emergency access and time, the explanation agrees with
/// Cedar: a refusal always finds a real obstacle, and for a permit some
/// agreement has none.
#[test]
fn explanations_agree_with_cedar_everywhere() {
    let agreements = world();
    let role_sets: [&[&str]; 4] = [&[], &["social_worker"], &["care_coordinator"], &["officer"]];
    let purposes = [
        Purpose::Safeguarding,
        Purpose::DirectCare,
        Purpose::Emergency,
        Purpose::Research,
    ];
    let consents = [
        vec![],
        vec![consent(ConsentKind::Consent, false)],
        vec![consent(ConsentKind::Consent, true)],
        vec![consent(ConsentKind::Objection, false)],
    ];
    let mut checked = 0;
    for agency_code in ["council", "police"] {
        for roles in role_sets {
            let caller = caller(agency_code, roles);
            for controller in ["health", "police"] {
                let controller = agency(controller);
                for class_id in ["health.summary", "health.mental_health", "police.incident"] {
                    let class = class(class_id);
                    for purpose in purposes {
                        for sealed in [false, true] {
                            for consents in &consents {
                                for break_glass in [None, Some("reason")] {
                                    for day in [5, 15] {
                                        let read = Read {
                                            caller: &caller,
                                            purpose,
                                            break_glass,
                                            now: at(day),
                                            controller: &controller,
                                            record_class: &class,
                                            sealed,
                                        };
                                        let finding = consent::find(
                                            consents,
                                            purpose,
                                            &class,
                                            &caller.agency,
                                            at(day),
                                        );
                                        let unobstructed = agreements
                                            .between(&caller.agency, &controller)
                                            .iter()
                                            .any(|a| {
                                                obstacle(a, &finding, &read).1.code == "NO_PERMIT"
                                            });
                                        match decide_read(&agreements, consents, &read).unwrap() {
                                            Decision::Permit(_) => {
                                                let own = caller.agency == controller;
                                                assert!(unobstructed || own, "{read:?}")
                                            }
                                            Decision::Deny(d) => {
                                                assert_ne!(d.code, "NO_PERMIT", "{read:?}");
                                                assert!(!unobstructed, "{read:?}");
                                            }
                                        }
                                        checked += 1;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 4 * 2 * 3 * 4 * 2 * 4 * 2 * 2);
}

#[test]
fn policies_are_grouped_by_consumer_and_provider() {
    let agreements = world();
    // A, E and F: one role each; B: two roles. Drafts and suspended
    // agreements compile to nothing.
    assert_eq!(agreements.policies().len(), 5);
    let texts = agreements
        .policies()
        .policies_between(&agency("council"), &agency("health"));
    assert_eq!(texts.len(), 4);
    assert!(
        texts
            .iter()
            .all(|t| t.contains("principal in Accord::Agency::\"council\""))
    );
    assert!(
        agreements
            .policies()
            .policies_between(&agency("police"), &agency("health"))
            .is_empty()
    );
}

#[test]
fn recompiling_after_a_suspension_rebuilds_only_its_pairs() {
    let before = world();
    let mut changed = world_specs();
    changed[0].status = AgreementStatus::Suspended;
    changed[0].suspension = Some(Suspension {
        agency: agency("health"),
        principal: "ig-1".to_owned(),
        time: at(14),
        reason: "audit".to_owned(),
    });
    let after = Agreements::recompile(changed, Some(&before)).unwrap();
    // (council, health) lost agreement A; (council, police) is untouched.
    assert_eq!(
        after.policies().pairs_reused_from(before.policies()),
        (2, 1)
    );
    assert_eq!(after.policies().len(), before.policies().len() - 1);
    let caller = caller("council", &["social_worker"]);
    let (controller, class) = (agency("health"), class("health.summary"));
    let read = Read {
        caller: &caller,
        purpose: Purpose::Safeguarding,
        break_glass: None,
        now: at(15),
        controller: &controller,
        record_class: &class,
        sealed: false,
    };
    assert!(matches!(
        decide_read(&before, &[], &read).unwrap(),
        Decision::Permit(_)
    ));
    match decide_read(&after, &[], &read).unwrap() {
        Decision::Deny(d) => assert_eq!(d.code, "AGREEMENT_NOT_ACTIVE"),
        other => panic!("{other:?}"),
    }
}
