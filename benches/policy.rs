//! Access-decision benchmarks: one read decided among 1,000 active
//! agreements (between 100 agencies) with 100,000 consents held in memory,
//! as a server process holds them; and compiling the 1,000 agreements to
//! Cedar policies (what a process does when an agreement changes).
//!
//! `cargo bench --bench policy`. Under `cargo test` each benchmark runs
//! once, with a tenth of the agreements and consents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;

use accord::domain::agreement::{
    Agreement, AgreementId, AgreementStatus, AgreementTerms, ConsentRequirement, ConsumerTerms,
    FieldGrant, LawfulBasis, LawfulBasisCode,
};
use accord::domain::consent::{Channel, Consent, ConsentId, ConsentKind, ConsentScope};
use accord::domain::{AgencyCode, Caller, PrincipalId, Purpose, RecordClassId, Role, SubjectId};
use accord::policy::{Agreements, Decision, Read, decide_read};
use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

const AGENCIES: usize = 100;

/// How many agreements, subjects and consents: the full figures when
/// benchmarking, a tenth under `cargo test`.
fn sizes() -> (usize, usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (1_000, 50_000, 100_000)
    } else {
        (100, 5_000, 10_000)
    }
}

fn agency(n: usize) -> AgencyCode {
    AgencyCode::parse(&format!("agency-{n}")).unwrap()
}

fn class(n: usize) -> RecordClassId {
    RecordClassId::parse(&format!("class.c{n}")).unwrap()
}

/// Agreement `n`: provider `n % 100` shares two record classes with the
/// next three agencies, for two roles each; every other one needs consent.
fn agreement(n: usize) -> Agreement {
    let now = Utc::now();
    let provider = n % AGENCIES;
    let classes = vec![class(n % 7), class(n % 7 + 7)];
    let consumers = (1..=3)
        .map(|k| ConsumerTerms {
            agency: agency((provider + k + n / AGENCIES) % AGENCIES),
            grants: ["social_worker", "nurse"]
                .iter()
                .flat_map(|role| {
                    classes.iter().map(move |c| FieldGrant {
                        role: Role::parse(role).unwrap(),
                        record_class: c.clone(),
                        fields: ["a", "b", "c"].iter().map(|f| (*f).to_owned()).collect(),
                    })
                })
                .collect(),
        })
        .filter(|c| c.agency != agency(provider))
        .collect();
    let terms = AgreementTerms {
        title: format!("agreement {n}"),
        provider: agency(provider),
        consumers,
        record_classes: classes,
        purposes: vec![
            Purpose::DirectCare,
            Purpose::Safeguarding,
            Purpose::Emergency,
        ],
        lawful_bases: vec![LawfulBasis {
            code: LawfulBasisCode::UkGdprArt6_1E,
            reference: String::new(),
        }],
        consent: if n.is_multiple_of(2) {
            ConsentRequirement::Required
        } else {
            ConsentRequirement::NotRequired
        },
        covers_sealed: false,
        valid_from: now - Duration::days(1),
        valid_until: now + Duration::days(365),
        review_date: (now + Duration::days(180)).date_naive(),
    };
    Agreement {
        status: AgreementStatus::Active,
        ..Agreement::draft(AgreementId::generate(), 1, terms, agency(provider), now)
    }
}

fn consents(subjects: &[SubjectId], count: usize) -> HashMap<SubjectId, Vec<Consent>> {
    let now = Utc::now();
    let mut by_subject: HashMap<SubjectId, Vec<Consent>> = HashMap::new();
    for n in 0..count {
        let subject = subjects[n % subjects.len()].clone();
        let consent = Consent {
            id: ConsentId::generate(),
            subject: subject.clone(),
            kind: if n.is_multiple_of(10) {
                ConsentKind::Objection
            } else {
                ConsentKind::Consent
            },
            scope: ConsentScope {
                purposes: vec![Purpose::DirectCare],
                record_classes: vec![],
                recipients: vec![agency(n % AGENCIES)],
            },
            channel: Channel::FaceToFace,
            valid_from: now - Duration::days(10),
            valid_until: None,
            note: String::new(),
            recorded_by: agency(n % AGENCIES),
            recorded_principal: "staff".to_owned(),
            record_time: now,
            withdrawal: None,
        };
        by_subject.entry(subject).or_default().push(consent);
    }
    by_subject
}

fn decisions(c: &mut Criterion) {
    let (agreement_count, subject_count, consent_count) = sizes();
    let all: Vec<Agreement> = (0..agreement_count).map(agreement).collect();
    let agreements = Agreements::new(all.clone()).unwrap();
    assert_eq!(agreements.len(), agreement_count);
    let subjects: Vec<SubjectId> = (0..subject_count).map(|_| SubjectId::generate()).collect();
    let consents = consents(&subjects, consent_count);
    let held: usize = consents.values().map(Vec::len).sum();
    assert_eq!(held, consent_count);

    // A consumer of agreement 0 (agency-1) reads a record of its provider
    // (agency-0) that needs consent, for direct care, about a subject who
    // consented to agency-1 receiving records (consents 1 and 50,001).
    let shared = &all[0];
    let reader = Caller {
        agency: shared.terms.consumers[0].agency.clone(),
        principal: PrincipalId::parse("sw-1").unwrap(),
        roles: vec![Role::parse("social_worker").unwrap()],
        client_certificate: None,
    };
    let controller = shared.terms.provider.clone();
    let record_class = shared.terms.record_classes[0].clone();
    let subject = &subjects[1];
    let read = Read {
        caller: &reader,
        purpose: Purpose::DirectCare,
        break_glass: None,
        now: Utc::now(),
        controller: &controller,
        record_class: &record_class,
        sealed: false,
    };
    let outcome = decide_read(&agreements, &consents[subject], &read).unwrap();
    assert!(matches!(outcome, Decision::Permit(_)), "{outcome:?}");
    let denied_read = Read {
        purpose: Purpose::Research,
        ..read
    };

    let mut group = c.benchmark_group("decision");
    group.bench_function("1000_agreements_100000_consents", |b| {
        b.iter(|| {
            let held = consents
                .get(black_box(subject))
                .map_or(&[][..], Vec::as_slice);
            black_box(decide_read(&agreements, held, black_box(&read)).unwrap())
        });
    });
    group.bench_function(
        "1000_agreements_100000_consents_refused_and_explained",
        |b| {
            b.iter(|| {
                let held = consents
                    .get(black_box(subject))
                    .map_or(&[][..], Vec::as_slice);
                let d = decide_read(&agreements, held, black_box(&denied_read)).unwrap();
                assert!(matches!(d, Decision::Deny(_)));
                black_box(d)
            });
        },
    );
    group.finish();
    black_box(outcome);

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("1000_agreements_to_cedar", |b| {
        b.iter(|| black_box(Agreements::new(all.clone()).unwrap()));
    });
    // What a process does after one agreement is suspended.
    let mut changed = all.clone();
    changed[0].status = AgreementStatus::Suspended;
    group.bench_function("1000_agreements_after_one_suspension", |b| {
        b.iter(|| black_box(Agreements::recompile(changed.clone(), Some(&agreements)).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
