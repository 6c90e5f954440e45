//! Merging two subjects found to be one person, and undoing it.
//!
//! A merge moves everything held about the merged subject — identifiers,
//! records, consents and seals — to the survivor, and keeps an exact list
//! of what moved. The merged subject's name keeps resolving, to the
//! survivor. An unmerge moves back exactly what that list names, from
//! wherever it still is on the survivor: a wrong merge in a health or
//! safeguarding setting is a serious incident, and its repair must not
//! depend on anyone's memory of what was where.

use chrono::{DateTime, Utc};

use super::consent::ConsentId;
use super::{AgencyCode, Identifier, RecordId, SubjectId};

super::uuid_resource_id!(
    /// An opaque merge identifier assigned by Accord (a UUID).
    SubjectMergeId,
    "subjectMerges"
);

/// A seal by `agency` on one of its records (`record`) or on all of its
/// records about a subject (`None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SealKey {
    pub agency: AgencyCode,
    pub record: Option<RecordId>,
}

/// A seal in full, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeal {
    pub key: SealKey,
    pub reason: String,
    pub sealed_by: String,
    pub seal_time: DateTime<Utc>,
}

/// What is held about one subject, or what moved between two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    pub identifiers: Vec<Identifier>,
    pub records: Vec<RecordId>,
    pub consents: Vec<ConsentId>,
    /// Seals that moved with the subject (kept as they were, under the
    /// other subject).
    pub seals: Vec<SealKey>,
    /// Seals of all an agency's records about the merged subject, set
    /// aside because the survivor holds that agency's seal already (the
    /// survivor's then covers those records); restored by an unmerge.
    pub set_aside: Vec<StoredSeal>,
}

impl Holdings {
    /// Puts every list in a fixed order, so that two holdings of the same
    /// things compare equal.
    pub fn sorted(mut self) -> Self {
        self.identifiers.sort_by_key(ToString::to_string);
        self.records.sort();
        self.consents.sort();
        self.seals.sort();
        self.set_aside.sort_by(|a, b| a.key.cmp(&b.key));
        self
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.identifiers.is_empty()
            && self.records.is_empty()
            && self.consents.is_empty()
            && self.seals.is_empty()
            && self.set_aside.is_empty()
    }
}

/// Who did something to a merge, when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeAct {
    /// The staff member (of the operator's data-quality staff).
    pub principal: String,
    /// Their agency.
    pub agency: AgencyCode,
    pub time: DateTime<Utc>,
    /// What they found, in their words.
    pub note: String,
}

/// How a merge was undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmerge {
    pub act: MergeAct,
    /// What moved back to the merged subject: everything the merge moved
    /// that was still on the survivor (an identifier unlinked since is
    /// not; records and consents always are), with the set-aside seals.
    pub restored: Holdings,
    /// Seals of all an agency's records about the person made while the
    /// subjects were merged, copied to the merged subject so that its
    /// records stay sealed (sealing is never undone by an unmerge).
    pub copied_seals: Vec<StoredSeal>,
}

/// One subject merged into another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectMerge {
    pub id: SubjectMergeId,
    /// The subject that remains, holding everything.
    pub survivor: SubjectId,
    /// The subject merged into it; its name resolves to the survivor.
    pub merged: SubjectId,
    pub act: MergeAct,
    /// Exactly what moved from the merged subject to the survivor.
    pub moved: Holdings,
    /// The possible duplicate the merge resolved, if it came from one.
    pub possible_duplicate: Option<super::duplicate::PossibleDuplicateId>,
    /// Set once undone.
    pub unmerge: Option<Unmerge>,
}

impl SubjectMerge {
    /// Whether it still stands.
    pub fn is_open(&self) -> bool {
        self.unmerge.is_none()
    }
}
