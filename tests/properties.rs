//! Property tests for the parsers and validators that take outside input
//! (identifiers, postcodes, dates, UPRNs, agency codes, record field
//! values, checkpoints):
//! whatever the input, they answer (never panic), what they accept is in
//! canonical form and accepted again unchanged, and what Accord writes
//! (canonical ledger encodings, checkpoints) reads back as written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use accord::domain::identifier::{parse_local_reference, parse_nhs_number, parse_pnc_id};
use accord::domain::record::{RawValue, check_fields};
use accord::domain::subject::{parse_birth_date, parse_date, parse_postcode, parse_uprn};
use accord::domain::{AgencyCode, Purpose};
use accord::ledger::checkpoint::Checkpoint;
use accord::ledger::{EntryDraft, Grounds, Outcome, TreeHead, canonical_encoding};
use chrono::{DateTime, NaiveDate, Utc};
use proptest::prelude::*;

/// Nine digits and their modulus-11 check digit, when one exists.
fn nhs_with_check(nine: &[u32]) -> Option<String> {
    let sum: u32 = nine.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return None,
        c => c,
    };
    Some(
        nine.iter()
            .chain(std::iter::once(&check))
            .map(|d| char::from_digit(*d, 10).unwrap())
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_answer_any_text(input in ".{0,40}") {
        let _ = parse_nhs_number(&input);
        let _ = parse_pnc_id(&input);
        let _ = parse_local_reference(&input);
        let _ = parse_postcode(&input);
        let _ = parse_uprn(&input);
        let _ = parse_date(&input);
        let _ = parse_birth_date(&input, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        let _ = AgencyCode::parse(&input);
        let _ = Checkpoint::parse(&input);
    }

    #[test]
    fn valid_nhs_numbers_are_accepted_with_or_without_spaces(
        nine in proptest::collection::vec(0u32..10, 9)
    ) {
        if let Some(number) = nhs_with_check(&nine) {
            let spaced = format!("{} {} {}", &number[..3], &number[3..6], &number[6..]);
            prop_assert_eq!(parse_nhs_number(&number).unwrap(), number.clone());
            prop_assert_eq!(parse_nhs_number(&spaced).unwrap(), number.clone());
            // Any other last digit is refused.
            let last = number.chars().last().unwrap().to_digit(10).unwrap();
            let wrong = format!("{}{}", &number[..9], (last + 1) % 10);
            prop_assert!(parse_nhs_number(&wrong).is_err());
        }
    }

    #[test]
    fn accepted_values_are_canonical(input in "[A-Za-z0-9 /-]{0,16}") {
        let parsers: [fn(&str) -> Option<String>; 5] = [
            |v| parse_nhs_number(v).ok(),
            |v| parse_pnc_id(v).ok(),
            |v| parse_local_reference(v).ok(),
            |v| parse_postcode(v).ok(),
            |v| parse_uprn(v).ok(),
        ];
        for parse in parsers {
            if let Some(canonical) = parse(&input) {
                prop_assert_eq!(parse(&canonical), Some(canonical));
            }
        }
    }

    #[test]
    fn postcodes_in_any_case_and_spacing_are_one(
        area in "[A-Z]{1,2}", district in 1u8..10, sector in 0u8..10, unit in "[ABD-HJLNP-UW-Z]{2}"
    ) {
        let canonical = format!("{area}{district} {sector}{unit}");
        let messy = format!(" {}{district}{sector} {} ", area.to_lowercase(), unit.to_lowercase());
        prop_assert_eq!(parse_postcode(&messy).unwrap(), canonical.clone());
        prop_assert_eq!(parse_postcode(&canonical).unwrap(), canonical);
    }

    #[test]
    fn dates_read_back_as_written(days in 0i64..60_000) {
        let date = NaiveDate::from_ymd_opt(1880, 1, 1).unwrap() + chrono::Days::new(days.unsigned_abs());
        let text = date.format("%Y-%m-%d").to_string();
        prop_assert_eq!(parse_date(&text).unwrap(), date);
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        prop_assert_eq!(parse_birth_date(&text, today).is_ok(), date <= today);
    }

    #[test]
    fn checkpoints_read_back_as_written(
        origin in "[a-z]{1,10}\\.[a-z]{2,6}/[a-z]{1,8}", size in any::<u64>(), root in any::<[u8; 32]>()
    ) {
        let checkpoint = Checkpoint { origin, head: TreeHead { size, root } };
        let parsed = Checkpoint::parse(&checkpoint.body()).unwrap();
        prop_assert_eq!(parsed.origin, checkpoint.origin);
        prop_assert_eq!(parsed.head, checkpoint.head);
    }

    #[test]
    fn canonical_encodings_read_back_as_written(index in any::<i64>(), draft in drafts()) {
        let bytes = canonical_encoding(index, &draft);
        let (read_index, read) = decode(&bytes).expect("decodes");
        prop_assert_eq!(read_index, index);
        prop_assert_eq!(read, draft);
    }
}

fn raw_values() -> impl Strategy<Value = RawValue> {
    prop_oneof![
        ".{0,20}".prop_map(RawValue::String),
        any::<i64>().prop_map(RawValue::Integer),
        any::<bool>().prop_map(RawValue::Boolean),
        "[0-9-]{0,12}".prop_map(RawValue::Date),
        Just(RawValue::Timestamp(None)),
        (0i64..4_000_000_000).prop_map(|s| RawValue::Timestamp(DateTime::from_timestamp(s, 0))),
        "[a-z_]{0,12}".prop_map(RawValue::Code),
        Just(RawValue::Missing),
    ]
}

proptest! {
    /// Field values of any type, under declared or made-up names: the
    /// check answers, accepts only declared fields of their declared
    /// type, and names every problem under the field's path.
    #[test]
    fn record_fields_are_checked_whatever_they_hold(
        class_index in 0usize..4,
        picks in proptest::collection::vec((0usize..8, "[a-z_]{1,12}", raw_values()), 0..10)
    ) {
        let classes = accord::service::parse_catalogue(
            accord::service::STARTER_CATALOGUE,
            Utc::now(),
        ).unwrap();
        let class = &classes[class_index % classes.len()];
        let fields: Vec<(String, RawValue)> = picks
            .into_iter()
            .map(|(i, made_up, value)| {
                let name = class.fields.get(i).map_or(made_up, |f| f.name.clone());
                (name, value)
            })
            .collect();
        match check_fields(class, fields, "record.fields") {
            Ok(checked) => {
                for (name, value) in &checked {
                    let spec = class.field(name).expect("a declared field");
                    prop_assert_eq!(value_type(value), spec.field_type);
                }
            }
            Err(violations) => {
                for v in violations.iter() {
                    prop_assert!(v.field.starts_with("record.fields"), "{}", v.field);
                    prop_assert!(!v.description.is_empty());
                }
            }
        }
    }
}

fn value_type(value: &accord::domain::FieldValue) -> accord::domain::FieldType {
    use accord::domain::{FieldType, FieldValue};
    match value {
        FieldValue::String(_) => FieldType::String,
        FieldValue::Integer(_) => FieldType::Integer,
        FieldValue::Boolean(_) => FieldType::Boolean,
        FieldValue::Date(_) => FieldType::Date,
        FieldValue::Timestamp(_) => FieldType::Timestamp,
        FieldValue::Code(_) => FieldType::Code,
    }
}

fn texts() -> impl Strategy<Value = String> {
    ".{0,12}"
}

fn lists() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(texts(), 0..4)
}

fn drafts() -> impl Strategy<Value = EntryDraft> {
    let purposes = prop_oneof![
        Just(None),
        Just(Some(Purpose::DirectCare)),
        Just(Some(Purpose::Emergency)),
        Just(Some(Purpose::Research)),
    ];
    let outcomes = prop_oneof![
        Just(Outcome::Permitted),
        Just(Outcome::Denied),
        Just(Outcome::Invalid),
        Just(Outcome::Failed),
    ];
    (
        (
            texts(),
            -1_000_000_000_000i64..4_000_000_000_000_000i64,
            texts(),
            texts(),
            texts(),
            lists(),
            texts(),
        ),
        (
            purposes,
            texts(),
            lists(),
            lists(),
            outcomes,
            texts(),
            texts(),
        ),
        (
            texts(),
            lists(),
            lists(),
            texts(),
            texts(),
            texts(),
            texts(),
        ),
    )
        .prop_map(
            |(
                (id, micros, request_id, agency, principal, roles, action),
                (purpose, subject, records, fields, outcome, reason_code, reason),
                (
                    controller,
                    agreements,
                    lawful_bases,
                    consent,
                    break_glass,
                    client_certificate,
                    trace_id,
                ),
            )| EntryDraft {
                id,
                time: DateTime::<Utc>::from_timestamp_micros(micros).unwrap(),
                request_id,
                trace_id,
                agency,
                principal,
                roles,
                client_certificate,
                action,
                purpose,
                subject,
                records,
                fields,
                outcome,
                reason_code,
                reason,
                controller,
                grounds: Grounds {
                    agreements,
                    lawful_bases,
                    consent,
                    break_glass,
                },
            },
        )
}

/// Reads a canonical encoding back, following its documented layout; `None`
/// if the bytes are not exactly one encoding.
fn decode(bytes: &[u8]) -> Option<(i64, EntryDraft)> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            if self.0.len() < n {
                return None;
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Some(head)
        }
        fn u64(&mut self) -> Option<u64> {
            Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
        }
        fn text(&mut self) -> Option<String> {
            let n = usize::try_from(self.u64()?).ok()?;
            String::from_utf8(self.take(n)?.to_vec()).ok()
        }
        fn list(&mut self) -> Option<Vec<String>> {
            let n = self.u64()?;
            (0..n).map(|_| self.text()).collect()
        }
    }
    let mut r = Reader(bytes);
    let traced = match r.take(23)? {
        b"accord.ledger.entry.v3\n" => false,
        b"accord.ledger.entry.v4\n" => true,
        _ => return None,
    };
    let index = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let micros = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let request_id = r.text()?;
    let id = r.text()?;
    let agency = r.text()?;
    let principal = r.text()?;
    let roles = r.list()?;
    let action = r.text()?;
    let purpose_code = r.text()?;
    let purpose = if purpose_code.is_empty() {
        None
    } else {
        Some(Purpose::from_code(&purpose_code)?)
    };
    let subject = r.text()?;
    let records = r.list()?;
    let fields = r.list()?;
    let outcome = Outcome::from_code(&r.text()?)?;
    let reason_code = r.text()?;
    let reason = r.text()?;
    let controller = r.text()?;
    let agreements = r.list()?;
    let lawful_bases = r.list()?;
    let consent = r.text()?;
    let break_glass = r.text()?;
    let client_certificate = r.text()?;
    // Version 4 is the encoding of an entry with a trace id, and only of
    // one.
    let trace_id = if traced { r.text()? } else { String::new() };
    if !r.0.is_empty() || traced == trace_id.is_empty() {
        return None;
    }
    Some((
        index,
        EntryDraft {
            id,
            time: DateTime::<Utc>::from_timestamp_micros(micros)?,
            request_id,
            trace_id,
            agency,
            principal,
            roles,
            client_certificate,
            action,
            purpose,
            subject,
            records,
            fields,
            outcome,
            reason_code,
            reason,
            controller,
            grounds: Grounds {
                agreements,
                lawful_bases,
                consent,
                break_glass,
            },
        },
    ))
}
