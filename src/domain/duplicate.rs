//! Possible duplicates: a newly registered subject that person matching
//! found may be the same person as one registered before, for the
//! operator's data-quality staff to resolve. A pair is raised once; a pair
//! resolved as different people stays resolved.

use chrono::{DateTime, Utc};

use super::agency::storage_codes;
use super::{AgencyCode, SubjectId};

super::uuid_resource_id!(
    /// An opaque possible-duplicate identifier assigned by Accord (a UUID).
    PossibleDuplicateId,
    "possibleDuplicates"
);

/// Where a possible duplicate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateState {
    /// Waiting for someone to look at it.
    Open,
    /// Looked at: two different people. Not raised again.
    DifferentPeople,
    /// Looked at: one person. The subject registered last was merged into
    /// the one registered before.
    SamePerson,
}

storage_codes!(DuplicateState {
    Open => "open",
    DifferentPeople => "different_people",
    SamePerson => "same_person",
});

/// Why a pair was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateCause {
    /// The match scored between the thresholds: a possible match.
    PossibleMatch,
    /// The match was certain, and the registering staff member asked for
    /// the subject to be created anyway.
    CreatedDespiteMatch,
    /// The match was certain, and the registering agency may not see the
    /// existing subject (it is sealed): created without saying so.
    CertainButHidden,
}

storage_codes!(DuplicateCause {
    PossibleMatch => "possible_match",
    CreatedDespiteMatch => "created_despite_match",
    CertainButHidden => "certain_but_hidden",
});

/// How a possible duplicate was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateResolution {
    pub state: DuplicateState,
    /// The data-quality staff member who resolved it.
    pub principal: String,
    pub time: DateTime<Utc>,
    /// What they found.
    pub note: String,
}

/// A pair of subjects that may be one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PossibleDuplicate {
    pub id: PossibleDuplicateId,
    /// The subject registered last.
    pub subject: SubjectId,
    /// The subject registered before, which it matched.
    pub candidate: SubjectId,
    pub cause: DuplicateCause,
    /// The agency whose registration raised it.
    pub raised_by: AgencyCode,
    pub create_time: DateTime<Utc>,
    /// Set once resolved.
    pub resolution: Option<DuplicateResolution>,
}

impl PossibleDuplicate {
    /// Where it stands.
    pub fn state(&self) -> DuplicateState {
        self.resolution
            .as_ref()
            .map_or(DuplicateState::Open, |r| r.state)
    }

    /// The pair, in an order that does not depend on which came first:
    /// how the store keeps a pair from being raised twice.
    pub fn pair_key(&self) -> String {
        pair_key(&self.subject, &self.candidate)
    }
}

/// The key of the pair `a`, `b`, the same either way round.
pub fn pair_key(a: &SubjectId, b: &SubjectId) -> String {
    let (a, b) = (a.as_str(), b.as_str());
    if a <= b {
        format!("{a}+{b}")
    } else {
        format!("{b}+{a}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_one_pair_either_way_round() {
        let (a, b) = (SubjectId::generate(), SubjectId::generate());
        assert_eq!(pair_key(&a, &b), pair_key(&b, &a));
        assert_ne!(pair_key(&a, &b), pair_key(&a, &a));
    }
}
