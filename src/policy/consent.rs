//! What a subject's consents say about one access.

use chrono::{DateTime, Utc};

use crate::domain::consent::{Consent, ConsentId, ConsentKind, ConsentState};
use crate::domain::{AgencyCode, Purpose, RecordClassId};

/// The consent position for reading one class of a subject's records, for
/// one purpose, by one agency. An objection in effect beats any consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentFinding {
    /// An objection in effect covers the access.
    Objected(ConsentId),
    /// A consent in effect covers it (and no objection does).
    Given(ConsentId),
    /// Nothing in effect covers it, but a consent that did was withdrawn
    /// (the latest such withdrawal).
    Withdrawn(ConsentId, DateTime<Utc>),
    /// Nothing in effect covers it, but a consent that did has lapsed.
    Lapsed(ConsentId, DateTime<Utc>),
    /// Nothing covers it.
    Absent,
}

impl ConsentFinding {
    /// The consent or objection the finding rests on.
    pub fn consent(&self) -> Option<&ConsentId> {
        match self {
            Self::Objected(id) | Self::Given(id) | Self::Withdrawn(id, _) | Self::Lapsed(id, _) => {
                Some(id)
            }
            Self::Absent => None,
        }
    }

    /// The value the Cedar context carries: `given`, `objected` or `none`.
    pub fn context_value(&self) -> &'static str {
        match self {
            Self::Given(_) => "given",
            Self::Objected(_) => "objected",
            _ => "none",
        }
    }
}

/// The finding of `consents` (one subject's) for reading `class` records
/// for `purpose` by `recipient` at `now`.
pub fn find(
    consents: &[Consent],
    purpose: Purpose,
    class: &RecordClassId,
    recipient: &AgencyCode,
    now: DateTime<Utc>,
) -> ConsentFinding {
    let covering = || {
        consents
            .iter()
            .filter(move |c| c.scope.covers(purpose, class, recipient))
    };
    let effective =
        |kind| covering().find(|c| c.kind == kind && c.state_at(now) == ConsentState::Effective);
    if let Some(objection) = effective(ConsentKind::Objection) {
        return ConsentFinding::Objected(objection.id.clone());
    }
    if let Some(consent) = effective(ConsentKind::Consent) {
        return ConsentFinding::Given(consent.id.clone());
    }
    let consents_only = || covering().filter(|c| c.kind == ConsentKind::Consent);
    let withdrawn = consents_only()
        .filter(|c| c.state_at(now) == ConsentState::Withdrawn)
        .filter_map(|c| Some((c, c.withdrawal.as_ref()?.time)))
        .max_by_key(|(_, time)| *time);
    if let Some((c, time)) = withdrawn {
        return ConsentFinding::Withdrawn(c.id.clone(), time);
    }
    let lapsed = consents_only()
        .filter(|c| c.state_at(now) == ConsentState::Lapsed)
        .filter_map(|c| Some((c, c.valid_until?)))
        .max_by_key(|(_, end)| *end);
    match lapsed {
        Some((c, end)) => ConsentFinding::Lapsed(c.id.clone(), end),
        None => ConsentFinding::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubjectId;
    use crate::domain::consent::{Channel, ConsentScope, Withdrawal};
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap()
    }

    fn agency(s: &str) -> AgencyCode {
        AgencyCode::parse(s).unwrap()
    }

    fn class() -> RecordClassId {
        RecordClassId::parse("health.summary").unwrap()
    }

    pub(crate) fn consent(kind: ConsentKind, scope: ConsentScope) -> Consent {
        Consent {
            id: ConsentId::generate(),
            subject: SubjectId::generate(),
            kind,
            scope,
            channel: Channel::FaceToFace,
            valid_from: at(1),
            valid_until: None,
            note: String::new(),
            recorded_by: agency("leeds-gp"),
            recorded_principal: "gp-1".to_owned(),
            record_time: at(1),
            withdrawal: None,
        }
    }

    fn find_now(consents: &[Consent], day: u32) -> ConsentFinding {
        find(
            consents,
            Purpose::DirectCare,
            &class(),
            &agency("leeds-council"),
            at(day),
        )
    }

    #[test]
    fn scope_lists_narrow_and_empty_lists_cover_all() {
        let any = consent(ConsentKind::Consent, ConsentScope::default());
        assert_eq!(
            find_now(std::slice::from_ref(&any), 2),
            ConsentFinding::Given(any.id)
        );
        let other_purpose = consent(
            ConsentKind::Consent,
            ConsentScope {
                purposes: vec![Purpose::Research],
                ..ConsentScope::default()
            },
        );
        let other_recipient = consent(
            ConsentKind::Consent,
            ConsentScope {
                recipients: vec![agency("west-police")],
                ..ConsentScope::default()
            },
        );
        assert_eq!(
            find_now(&[other_purpose, other_recipient], 2),
            ConsentFinding::Absent
        );
    }

    #[test]
    fn objection_beats_consent_and_withdrawal_is_immediate() {
        let mut yes = consent(ConsentKind::Consent, ConsentScope::default());
        let no = consent(
            ConsentKind::Objection,
            ConsentScope {
                record_classes: vec![class()],
                ..ConsentScope::default()
            },
        );
        assert_eq!(
            find_now(&[yes.clone(), no.clone()], 2),
            ConsentFinding::Objected(no.id)
        );
        yes.withdrawal = Some(Withdrawal {
            agency: agency("leeds-gp"),
            principal: "gp-1".to_owned(),
            time: at(5),
            reason: String::new(),
        });
        assert_eq!(
            find_now(&[yes.clone()], 5),
            ConsentFinding::Withdrawn(yes.id.clone(), at(5))
        );
        assert_eq!(
            find_now(&[yes.clone()], 4),
            ConsentFinding::Withdrawn(yes.id.clone(), at(5)),
            "also for a call timed before the withdrawal but decided after it"
        );
    }

    #[test]
    fn validity_bounds_apply() {
        let mut c = consent(ConsentKind::Consent, ConsentScope::default());
        c.valid_from = at(3);
        c.valid_until = Some(at(6));
        assert_eq!(find_now(&[c.clone()], 2), ConsentFinding::Absent);
        assert_eq!(
            find_now(&[c.clone()], 3),
            ConsentFinding::Given(c.id.clone())
        );
        assert_eq!(
            find_now(&[c.clone()], 6),
            ConsentFinding::Lapsed(c.id.clone(), at(6))
        );
    }
}
