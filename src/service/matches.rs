//! Person matching over the registered subjects: candidates through the
//! blocking keys and the identifiers given, scored and explained by the
//! [`Matcher`], and shown only as far as the caller may see them.

use chrono::NaiveDate;

use super::subjects::{Lookup, note_found};
use super::{Audited, Call, ServiceError, Services};
use crate::domain::{Gender, Identifier, Subject};
use crate::matching::{Explanation, Matcher, Profile, Verdict};
use crate::store::{Store, StoreError};

/// A person to match: the demographics known, and identifiers.
#[derive(Debug, Clone)]
pub struct MatchProbe {
    pub family_name: String,
    pub given_name: Option<String>,
    pub birth_date: NaiveDate,
    pub gender: Option<Gender>,
    pub postcode: Option<String>,
    pub uprn: Option<String>,
    pub identifiers: Vec<Identifier>,
}

impl MatchProbe {
    /// What the matcher compares.
    pub fn profile(&self) -> Profile<'_> {
        Profile {
            family_name: &self.family_name,
            given_name: self.given_name.as_deref(),
            birth_date: self.birth_date,
            gender: self.gender,
            postcode: self.postcode.as_deref(),
            uprn: self.uprn.as_deref(),
            identifiers: &self.identifiers,
        }
    }
}

/// A subject who may be the person asked about, and why.
#[derive(Debug, Clone)]
pub struct MatchCandidate {
    pub subject: Subject,
    pub explanation: Explanation,
}

/// How many subjects filed under a probe's blocking keys are scored at
/// most (a block this large means keys too common to tell people apart).
const MAX_CANDIDATES: u32 = 2000;

impl Services {
    /// The matcher in use.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Every subject scoring at least a possible match against `probe`.
    pub(super) async fn match_candidates(
        &self,
        probe: &MatchProbe,
    ) -> Result<Vec<MatchCandidate>, ServiceError> {
        Ok(find_candidates(self.store.as_ref(), &self.matcher, &probe.profile()).await?)
    }

    /// The best `max` candidates the caller may see: a subject holding an
    /// identifier the probe gives resolves as an exact lookup does; any
    /// other only if the caller could find it by searching.
    pub(super) async fn visible_candidates(
        &self,
        call: &Call,
        probe: &MatchProbe,
        max: usize,
    ) -> Result<Vec<MatchCandidate>, ServiceError> {
        let mut visible = vec![];
        for candidate in self.match_candidates(probe).await? {
            if visible.len() == max {
                break;
            }
            let lookup = if candidate.explanation.identifier_agrees() {
                Lookup::Exact
            } else {
                Lookup::Search
            };
            if self.may_see(call, &candidate.subject, lookup).await? {
                visible.push(candidate);
            }
        }
        Ok(visible)
    }

    /// Finds the subjects who may be the person described, with the
    /// reasons of each score.
    pub async fn match_subjects(
        &self,
        call: &Call,
        probe: MatchProbe,
        max_results: usize,
    ) -> Result<Audited<Vec<MatchCandidate>>, ServiceError> {
        let candidates = self.visible_candidates(call, &probe, max_results).await?;
        let found: Vec<&Subject> = candidates.iter().map(|c| &c.subject).collect();
        note_found(call, &found);
        self.commit(call, vec![], candidates).await
    }
}

/// Every subject in `store` scoring at least a possible match against
/// `profile` with `matcher`, best first (ties by id): those filed under its
/// blocking keys, and those holding one of its identifiers. Not governed:
/// [`Services`] decides which of them a caller may see.
pub async fn find_candidates(
    store: &dyn Store,
    matcher: &Matcher,
    profile: &Profile<'_>,
) -> Result<Vec<MatchCandidate>, StoreError> {
    let mut subjects = store
        .match_candidates(&profile.blocking_keys(), MAX_CANDIDATES)
        .await?;
    for identifier in profile.identifiers {
        let Some(link) = store.identifier_link(identifier).await? else {
            continue;
        };
        if subjects.iter().any(|s| s.id == link.subject) {
            continue;
        }
        if let Some(subject) = store.subject(&link.subject).await? {
            subjects.push(subject);
        }
    }
    let mut candidates: Vec<MatchCandidate> = subjects
        .into_iter()
        .filter_map(|subject| {
            let explanation = matcher.explain(profile, &Profile::of(&subject));
            (explanation.verdict != Verdict::Different).then_some(MatchCandidate {
                subject,
                explanation,
            })
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.explanation
            .score
            .total_cmp(&a.explanation.score)
            .then_with(|| a.subject.id.as_str().cmp(b.subject.id.as_str()))
    });
    Ok(candidates)
}
