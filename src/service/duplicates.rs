//! Duplicates caught at the door: registering a subject runs the matcher
//! against the people registered before. A certain match the caller may
//! see is refused (ALREADY_EXISTS, naming it) unless the caller asks to
//! create anyway; a possible match (or a certain one created anyway, or
//! one the caller may not see) is registered and raised as a *possible
//! duplicate* for the operator's data-quality staff, who see both sides
//! field by field and resolve it.

use super::matches::{MatchCandidate, find_candidates};
use super::merges::merge_names;
use super::paging::time_key;
use super::subjects::Lookup;
use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::duplicate::{
    DuplicateCause, DuplicateResolution, DuplicateState, PossibleDuplicate, PossibleDuplicateId,
};
use crate::domain::merge::SubjectMergeId;
use crate::domain::{Role, Subject, Violations, check_text};
use crate::matching::{Explanation, Profile, Verdict};
use crate::store::Write;

/// How many possible duplicates one registration raises at most (the
/// best-scoring candidates).
const MAX_RAISED: usize = 5;

/// A possible duplicate with both sides, and how they compare now.
#[derive(Debug, Clone)]
pub struct DuplicateView {
    pub duplicate: PossibleDuplicate,
    pub subject: Subject,
    pub candidate: Subject,
    pub explanation: Explanation,
    /// The merge that resolved it as the same person, if it was.
    pub merge: Option<SubjectMergeId>,
}

impl Services {
    /// What registering `subject` raises: a possible duplicate for each
    /// of the best candidates that is not different people. A certain
    /// match the caller may see refuses the registration, unless
    /// `despite_match`.
    pub(super) async fn screen_registration(
        &self,
        call: &Call,
        subject: &Subject,
        despite_match: bool,
    ) -> Result<Vec<PossibleDuplicate>, ServiceError> {
        let candidates =
            find_candidates(self.store.as_ref(), &self.matcher, &Profile::of(subject)).await?;
        let mut raised = vec![];
        for MatchCandidate {
            subject: existing,
            explanation,
        } in candidates.into_iter().take(MAX_RAISED)
        {
            let cause = match explanation.verdict {
                Verdict::Different => continue,
                Verdict::Possible => DuplicateCause::PossibleMatch,
                Verdict::SamePerson if despite_match => DuplicateCause::CreatedDespiteMatch,
                Verdict::SamePerson => {
                    // A person described beyond doubt resolves as an exact
                    // identifier does: unless sealed, the caller is told.
                    if self.may_see(call, &existing, Lookup::Exact).await? {
                        call.note_subject(existing.id.resource_name());
                        call.note_controller(existing.registered_by.as_str().to_owned());
                        return Err(ServiceError::AlreadyExists(format!(
                            "{} is the same person (match score {:.1}: {}); link this agency's \
                             identifiers to it with LinkIdentifier, or set create_despite_match \
                             to register another subject all the same",
                            existing.id.resource_name(),
                            explanation.score,
                            explanation.summary()
                        )));
                    }
                    DuplicateCause::CertainButHidden
                }
            };
            raised.push(PossibleDuplicate {
                id: PossibleDuplicateId::generate(),
                subject: subject.id.clone(),
                candidate: existing.id,
                cause,
                raised_by: call.caller.agency.clone(),
                create_time: call.time,
                resolution: None,
            });
        }
        let despite: Vec<String> = raised
            .iter()
            .filter(|d| d.cause == DuplicateCause::CreatedDespiteMatch)
            .map(|d| d.candidate.resource_name())
            .collect();
        if !despite.is_empty() {
            call.note_remark(
                "CREATED_DESPITE_MATCH",
                format!(
                    "registered at the caller's request despite a certain match with {}",
                    despite.join(", ")
                ),
            );
        }
        Ok(raised)
    }

    /// A possible duplicate with both its subjects, as the matcher
    /// compares them now.
    async fn duplicate_view(&self, d: PossibleDuplicate) -> Result<DuplicateView, ServiceError> {
        let load = |id| async move {
            self.store
                .subject(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(id.resource_name()))
        };
        let subject = load(&d.subject).await?;
        let candidate = load(&d.candidate).await?;
        let explanation = self
            .matcher
            .explain(&Profile::of(&subject), &Profile::of(&candidate));
        let merge = match d.state() {
            DuplicateState::SamePerson => self
                .store
                .merges_of(&d.subject)
                .await?
                .into_iter()
                .find(|m| m.possible_duplicate.as_ref() == Some(&d.id))
                .map(|m| m.id),
            _ => None,
        };
        Ok(DuplicateView {
            duplicate: d,
            subject,
            candidate,
            explanation,
            merge,
        })
    }

    /// Possible duplicates in `state`, oldest first, with both sides
    /// (operator's data-quality staff). The entry names every subject
    /// shown.
    pub async fn list_possible_duplicates(
        &self,
        call: &Call,
        state: DuplicateState,
        req: &PageRequest,
    ) -> Result<Audited<Page<DuplicateView>>, ServiceError> {
        call.require_role(Role::DATA_QUALITY)?;
        let listing = format!("ListPossibleDuplicates\nstate={}", state.code());
        let paging = self.tokens.paging(call, &listing, req)?;
        let items = self
            .store
            .possible_duplicates(state, paging.after_time()?, paging.size() + 1)
            .await?;
        let page = paging.page(items, |d| time_key(d.create_time, d.id.as_str()));
        let mut views = Vec::with_capacity(page.items.len());
        for d in page.items {
            views.push(self.duplicate_view(d).await?);
        }
        note_shown(call, &views);
        let page = Page {
            items: views,
            next_token: page.next_token,
        };
        self.commit(call, vec![], page).await
    }

    /// Resolves an open possible duplicate as different people, with what
    /// was found (operator's data-quality staff): the pair is not raised
    /// again.
    pub async fn resolve_possible_duplicate(
        &self,
        call: &Call,
        id: &PossibleDuplicateId,
        state: DuplicateState,
        note: String,
    ) -> Result<Audited<DuplicateView>, ServiceError> {
        call.require_role(Role::DATA_QUALITY)?;
        check_note(&note)?;
        if state == DuplicateState::Open {
            return Err(Violations::one("resolution", "must say how it was resolved").into());
        }
        let d = self
            .store
            .possible_duplicate(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        let mut view = self.duplicate_view(d).await?;
        note_shown(call, std::slice::from_ref(&view));
        if let Some(r) = &view.duplicate.resolution {
            return Err(ServiceError::Precondition {
                code: "DUPLICATE_ALREADY_RESOLVED",
                message: format!(
                    "{} was already resolved by {} on {}",
                    id.resource_name(),
                    r.principal,
                    r.time.format("%Y-%m-%d")
                ),
            });
        }
        let resolution = DuplicateResolution {
            state,
            principal: call.caller.principal.as_str().to_owned(),
            time: call.time,
            note,
        };
        view.duplicate.resolution = Some(resolution.clone());
        let mut writes = vec![Write::ResolvePossibleDuplicate {
            id: id.clone(),
            resolution: resolution.clone(),
        }];
        if state == DuplicateState::SamePerson {
            // The subject registered before survives; the one registered
            // last, which raised the pair, is merged into it.
            let (write, merge) = self
                .merge_write(
                    call,
                    &view.duplicate.candidate,
                    &view.duplicate.subject,
                    resolution.note,
                    Some(id.clone()),
                )
                .await?;
            writes.push(write);
            let mut names = shown_names(std::slice::from_ref(&view));
            names.extend(merge_names(&merge, &merge.moved));
            call.note_records(names);
            view.merge = Some(merge.id);
        }
        self.commit(call, writes, view).await
    }
}

/// Checks the note of a resolution, a merge or an unmerge.
pub(super) fn check_note(note: &str) -> Result<(), ServiceError> {
    check_text(note, 1, 1000).map_err(|e| Violations::one("note", e).into())
}

/// Notes in the call's entry the possible duplicates shown and both
/// subjects of each, so that each subject's access report lists the look.
fn note_shown(call: &Call, views: &[DuplicateView]) {
    if !views.is_empty() {
        call.note_fields(super::subjects::disclosed());
    }
    call.note_records(shown_names(views));
}

/// The possible duplicates shown and both subjects of each.
fn shown_names(views: &[DuplicateView]) -> Vec<String> {
    let mut names = vec![];
    for v in views {
        names.push(v.duplicate.id.resource_name());
        names.push(v.subject.id.resource_name());
        names.push(v.candidate.id.resource_name());
    }
    names
}
