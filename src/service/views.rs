//! One joined-up view of a person: what the caller may see about them
//! across every agency, in one audited call. Demographics come with the
//! source of each value, and where sources disagree both values are shown
//! rather than one chosen; identifiers with who linked them; the records
//! the caller may read across controllers, minimised as GetRecord; and the
//! person's contacts with every agency, in time order.

use chrono::{DateTime, Utc};

use super::records::{ReadableRecords, note_disclosed};
use super::subjects::disclosed;
use super::{Audited, Call, ServiceError, Services};
use crate::domain::{AgencyCode, Demographics, FieldValue, SubjectId};
use crate::policy::Disclosed;
use crate::store::{After, LinkedIdentifier};

/// The record class contacts are logged in (starter catalogue).
pub const CONTACT_CLASS: &str = "contact.record";

/// How many records one view discloses at most.
const MAX_VIEW_RECORDS: usize = 500;

/// One value of one demographic field, as one source gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemographicValue {
    /// The field, e.g. `birth_date`.
    pub field: &'static str,
    pub value: String,
    /// The agency that gave it.
    pub source: AgencyCode,
    /// When it gave it.
    pub time: DateTime<Utc>,
    /// Whether another source gives another value for the field.
    pub conflicting: bool,
}

/// Everything the caller may see about a person.
#[derive(Debug, Clone)]
pub struct SubjectView {
    pub subject: SubjectId,
    pub demographics: Vec<DemographicValue>,
    pub identifiers: Vec<LinkedIdentifier>,
    /// Records other than contacts, newest first.
    pub records: Vec<Disclosed>,
    /// Contact records, oldest first by the time of the contact.
    pub contacts: Vec<Disclosed>,
    /// Whether the person has more readable records than one view shows.
    pub truncated: bool,
}

/// The demographic values of `sources` (agency, when, what it said), field
/// by field in a fixed order, each source's value once; a field whose
/// sources give different values has every value marked conflicting.
pub fn demographic_values(
    sources: &[(AgencyCode, DateTime<Utc>, &Demographics)],
) -> Vec<DemographicValue> {
    type Get = fn(&Demographics) -> Option<String>;
    let fields: [(&'static str, Get); 6] = [
        ("given_name", |d| Some(d.given_name.clone())),
        ("family_name", |d| Some(d.family_name.clone())),
        ("birth_date", |d| Some(d.birth_date.to_string())),
        ("gender", |d| Some(d.gender.code().to_owned())),
        ("postcode", |d| d.postcode.clone()),
        ("uprn", |d| d.uprn.clone()),
    ];
    let mut out = vec![];
    for (field, get) in fields {
        let values: Vec<DemographicValue> = sources
            .iter()
            .filter_map(|(source, time, d)| {
                get(d).map(|value| DemographicValue {
                    field,
                    value,
                    source: source.clone(),
                    time: *time,
                    conflicting: false,
                })
            })
            .collect();
        let conflicting = values.iter().any(|v| v.value != values[0].value);
        out.extend(
            values
                .into_iter()
                .map(|v| DemographicValue { conflicting, ..v }),
        );
    }
    out
}

/// When a contact happened: its `contact_time` if disclosed, else when
/// the record was written.
fn contact_time(d: &Disclosed) -> DateTime<Utc> {
    match d.record().fields.get("contact_time") {
        Some(FieldValue::Timestamp(t)) => *t,
        _ => d.record().create_time,
    }
}

impl Services {
    /// The joined-up view of `id` for the caller's purpose.
    pub async fn get_subject_view(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Audited<SubjectView>, ServiceError> {
        let subject = self.load_subject(call, id).await?;
        let id = &subject.id;
        let merged = self.store.merged_subjects(id).await?;
        let identifiers = self.store.linked_identifiers(id).await?;
        let ReadableRecords {
            mut items,
            controllers,
            exhausted,
            ..
        } = self
            .readable_records(call, id, After::Start, MAX_VIEW_RECORDS, 200)
            .await?;
        let truncated = items.len() > MAX_VIEW_RECORDS || !exhausted;
        items.truncate(MAX_VIEW_RECORDS);
        note_disclosed(call, &items, &controllers);
        if controllers.iter().all(|c| *c == call.caller.agency) {
            // No other agency's record disclosed: the demographics are the
            // registering agency's, and its auditors see the disclosure
            // as they do a GetSubject.
            call.note_controller(subject.registered_by.as_str().to_owned());
        }
        let mut fields = disclosed();
        fields.extend(items.iter().flat_map(|d| d.record().field_names()));
        fields.sort();
        fields.dedup();
        call.note_fields(fields);
        let (mut contacts, records): (Vec<Disclosed>, Vec<Disclosed>) = items
            .into_iter()
            .partition(|d| d.record().record_class.as_str() == CONTACT_CLASS);
        contacts.sort_by_key(contact_time);
        // Each registration of the person is a source of demographics:
        // the survivor's and those of the subjects merged into it.
        let sources: Vec<_> = std::iter::once(&subject)
            .chain(&merged)
            .map(|s| (s.registered_by.clone(), s.create_time, &s.demographics))
            .collect();
        let view = SubjectView {
            subject: id.clone(),
            demographics: demographic_values(&sources),
            identifiers,
            records,
            contacts,
            truncated,
        };
        self.commit(call, vec![], view).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Gender;
    use chrono::NaiveDate;

    #[test]
    fn values_keep_their_sources_and_disagreements_show() {
        let d = |born: (i32, u32, u32), postcode: Option<&str>| Demographics {
            given_name: "Sam".into(),
            family_name: "Lee".into(),
            birth_date: NaiveDate::from_ymd_opt(born.0, born.1, born.2).unwrap(),
            gender: Gender::Female,
            postcode: postcode.map(str::to_owned),
            uprn: None,
        };
        let (health, council) = (d((2014, 6, 1), Some("LS1 4AP")), d((2014, 1, 6), None));
        let t = Utc::now();
        let values = demographic_values(&[
            (AgencyCode::parse("leeds-health").unwrap(), t, &health),
            (AgencyCode::parse("leeds-cc").unwrap(), t, &council),
        ]);
        let of = |field: &str| -> Vec<(String, String, bool)> {
            values
                .iter()
                .filter(|v| v.field == field)
                .map(|v| (v.source.as_str().to_owned(), v.value.clone(), v.conflicting))
                .collect()
        };
        assert_eq!(
            of("birth_date"),
            [
                ("leeds-health".into(), "2014-06-01".into(), true),
                ("leeds-cc".into(), "2014-01-06".into(), true)
            ]
        );
        assert_eq!(
            of("given_name"),
            [
                ("leeds-health".into(), "Sam".into(), false),
                ("leeds-cc".into(), "Sam".into(), false)
            ]
        );
        assert_eq!(
            of("postcode"),
            [("leeds-health".into(), "LS1 4AP".into(), false)],
            "a source without a value gives none"
        );
        assert!(of("uprn").is_empty());
    }
}
