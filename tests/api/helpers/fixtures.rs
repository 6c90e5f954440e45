//! The agencies, subjects, records and agreements tests start from, shared
//! by every test file.

use std::collections::HashMap;
use std::sync::Arc;

use accord::api::pb;

use super::{Db, TestClock, TestServer, code_value, date_value, nhs_number, string_value, subject};

/// The health trust of the three-agency fixtures.
pub const HEALTH: &str = "leeds-health";
/// The council.
pub const COUNCIL: &str = "leeds-cc";
/// The police force.
pub const POLICE: &str = "wy-police";

/// The council's referral record class.
pub const CLASS: &str = "recordClasses/social_care.referral";

/// A server with two agencies and one subject registered by the council.
pub async fn server_with_subject(db: Db) -> Option<(TestServer, String)> {
    let s = TestServer::start(db).await?;
    let subject = register_subject(&s).await;
    Some((s, subject))
}

/// Registers the council and the police force on `s`, and a subject the
/// council created; returns the subject's name.
pub async fn register_subject(s: &TestServer) -> String {
    s.register(&[
        (COUNCIL, pb::AgencyKind::Council),
        (POLICE, pb::AgencyKind::Police),
    ])
    .await;
    s.as_staff(COUNCIL, "sw-1", "social_worker")
        .create_subject(
            subject(&nhs_number(7), "Jo", "Bloggs", "2015-03-02"),
            pb::Purpose::DirectCare,
        )
        .await
        .expect("register the subject")
        .name
}

/// The fields of a referral made for `reason`.
pub fn referral_fields(reason: &str) -> HashMap<String, pb::FieldValue> {
    HashMap::from([
        ("referral_date".to_owned(), date_value("2026-11-20")),
        ("referral_source".to_owned(), code_value("school")),
        ("service".to_owned(), code_value("children")),
        ("reason".to_owned(), string_value(reason)),
    ])
}

/// A council social worker's referral about `subject`.
pub async fn create_referral(s: &TestServer, subject: &str) -> pb::Record {
    s.as_staff(COUNCIL, "sw-1", "social_worker")
        .create_record(
            subject,
            CLASS,
            referral_fields("bruising noticed at school"),
            pb::Purpose::Safeguarding,
        )
        .await
        .expect("create the referral")
}

/// A server with a health trust, a council and a police force, a subject
/// and the trust's health summary about them; returns the record's name
/// and the subject's.
pub async fn three_agencies(db: Db, clock: Arc<TestClock>) -> Option<(TestServer, String, String)> {
    let s = TestServer::start_with_clock(db, clock).await?;
    s.register(&[
        (HEALTH, pb::AgencyKind::Health),
        (COUNCIL, pb::AgencyKind::Council),
        (POLICE, pb::AgencyKind::Police),
    ])
    .await;
    let gp = s.as_staff(HEALTH, "gp-1", "gp");
    let subject = gp
        .create_subject(
            subject(&nhs_number(11), "Sam", "Lee", "2014-06-01"),
            pb::Purpose::DirectCare,
        )
        .await
        .expect("register the subject");
    let fields = HashMap::from([
        ("registered_gp_practice".to_owned(), string_value("B86001")),
        ("allergies".to_owned(), string_value("penicillin")),
        ("current_medication".to_owned(), string_value("salbutamol")),
        ("long_term_conditions".to_owned(), string_value("asthma")),
    ]);
    let record = gp
        .create_record(
            &subject.name,
            "recordClasses/health.summary",
            fields,
            pb::Purpose::DirectCare,
        )
        .await
        .expect("create the health summary");
    Some((s, record.name, subject.name))
}

/// The instant `days` days from now (before it when negative).
pub fn in_days(days: i64) -> prost_types::Timestamp {
    let t = chrono::Utc::now() + chrono::Duration::days(days);
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// What one agreement shares: `provider`'s `class` records, the `fields`
/// holders of `role` at `consumer` may see, for `purposes`, for `days` days.
pub struct Share<'a> {
    pub provider: &'a str,
    pub consumer: &'a str,
    pub role: &'a str,
    pub class: &'a str,
    pub fields: &'a [&'a str],
    pub purposes: &'a [pb::Purpose],
    pub consent: pb::ConsentRequirement,
    pub days: i64,
}

/// The council's social-care referrals, shared with GPs for direct care
/// with the subject's consent.
pub const GP_SHARE: Share<'static> = Share {
    provider: COUNCIL,
    consumer: HEALTH,
    role: "gp",
    class: "social_care.referral",
    fields: &["referral_date", "service"],
    purposes: &[pb::Purpose::DirectCare],
    consent: pb::ConsentRequirement::Required,
    days: 30,
};

/// The terms of `share`.
pub fn terms(share: &Share<'_>) -> pb::Agreement {
    let class = format!("recordClasses/{}", share.class);
    pb::Agreement {
        title: format!(
            "{} shares {} with {}",
            share.provider, share.class, share.consumer
        ),
        provider: format!("agencies/{}", share.provider),
        consumers: vec![pb::ConsumerTerms {
            agency: format!("agencies/{}", share.consumer),
            grants: vec![pb::FieldGrant {
                role: share.role.to_owned(),
                record_class: class.clone(),
                fields: share.fields.iter().map(|f| (*f).to_owned()).collect(),
            }],
        }],
        record_classes: vec![class],
        purposes: share.purposes.iter().map(|p| *p as i32).collect(),
        lawful_bases: vec![
            pb::LawfulBasis {
                code: pb::LawfulBasisCode::UkGdprArt61E as i32,
                reference: "UK GDPR Art 6(1)(e); Children Act 2004 s11".to_owned(),
            },
            pb::LawfulBasis {
                code: pb::LawfulBasisCode::Dpa2018Sch1Para18 as i32,
                reference: "DPA 2018 Sch 1 para 18".to_owned(),
            },
        ],
        consent: share.consent as i32,
        valid_from: Some(in_days(-1)),
        valid_until: Some(in_days(share.days)),
        review_date: (chrono::Utc::now() + chrono::Duration::days(180))
            .format("%Y-%m-%d")
            .to_string(),
        ..Default::default()
    }
}

/// Health's safeguarding agreement with the council: social workers see
/// `fields` of health summaries, for safeguarding, without consent, for
/// `days` days.
pub fn safeguarding_terms(fields: &[&str], days: i64) -> pb::Agreement {
    terms(&Share {
        provider: HEALTH,
        consumer: COUNCIL,
        role: "social_worker",
        class: "health.summary",
        fields,
        purposes: &[pb::Purpose::Safeguarding],
        consent: pb::ConsentRequirement::NotRequired,
        days,
    })
}

/// The council shares its referrals' reason with police officers, for
/// safeguarding only (on a server with the council and the police).
pub async fn council_shares_referrals_for_safeguarding(s: &TestServer) -> pb::Agreement {
    agree(
        s,
        &Share {
            provider: COUNCIL,
            consumer: POLICE,
            role: "officer",
            class: "social_care.referral",
            fields: &["reason"],
            purposes: &[pb::Purpose::Safeguarding],
            consent: pb::ConsentRequirement::NotRequired,
            days: 30,
        },
    )
    .await
}

/// Proposes `share` as its provider and has both parties approve it.
pub async fn agree(s: &TestServer, share: &Share<'_>) -> pb::Agreement {
    agree_terms(s, terms(share), share.provider, share.consumer).await
}

/// Proposes `terms` as `provider`'s IG lead and has it and `consumer`'s
/// approve them.
pub async fn agree_terms(
    s: &TestServer,
    terms: pb::Agreement,
    provider: &str,
    consumer: &str,
) -> pb::Agreement {
    let draft = s.as_ig_lead(provider).propose(terms).await.unwrap();
    s.as_ig_lead(provider).approve(&draft).await.unwrap();
    s.as_ig_lead(consumer).approve(&draft).await.unwrap()
}

/// Reads `record` as a council social worker for `purpose`.
pub async fn council_reads(
    s: &TestServer,
    record: &str,
    purpose: pb::Purpose,
) -> Result<pb::Record, tonic::Status> {
    s.as_staff(COUNCIL, "sw-1", "social_worker")
        .get_record(record, purpose)
        .await
}

/// The last ledger entry of a call by `agency`.
pub async fn last_entry(s: &TestServer, agency: &str) -> accord::ledger::Entry {
    s.ledger(accord::store::EntryFilter {
        agency: Some(agency.to_owned()),
        ..Default::default()
    })
    .await
    .pop()
    .expect("an entry")
}
