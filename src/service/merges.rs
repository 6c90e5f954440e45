//! Merging subjects found to be one person, and undoing a merge: the
//! operator's data-quality staff alone (see docs/matching.md for why).

use super::duplicates::check_note;
use super::{Audited, Call, ServiceError, Services};
use crate::domain::duplicate::PossibleDuplicateId;
use crate::domain::merge::{Holdings, MergeAct, SubjectMerge, SubjectMergeId, Unmerge};
use crate::domain::{Role, Subject, SubjectId, Violations};
use crate::store::Write;

/// The refusal of a change that names a subject merged into another.
/// The survivor is named only to callers that may see it (GetSubject on
/// the merged subject's name resolves to it, when they may).
pub(super) fn merged_refusal(merged: &SubjectId) -> ServiceError {
    ServiceError::Precondition {
        code: "SUBJECT_MERGED",
        message: format!(
            "{} was merged into another subject; GetSubject on it names the subject to change",
            merged.resource_name()
        ),
    }
}

/// A subject of a merge as the store holds it, refused if it is merged
/// already. `field` is the request field that named it.
async fn standing_subject(
    services: &Services,
    id: &SubjectId,
    field: &str,
) -> Result<Subject, ServiceError> {
    let subject = services
        .store
        .subject(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
    if let Some(into) = &subject.merged_into {
        return Err(ServiceError::Precondition {
            code: "SUBJECT_MERGED",
            message: format!(
                "{field}: {} is already merged into {}",
                id.resource_name(),
                into.resource_name()
            ),
        });
    }
    Ok(subject)
}

/// Notes in the call's entry both subjects of `m` and everything that
/// moves, so that the access report of each lists the merge.
fn note_merge(call: &Call, m: &SubjectMerge, moving: &Holdings) {
    call.note_subject(m.survivor.resource_name());
    call.note_records(merge_names(m, moving));
    call.note_fields(vec!["identifiers".to_owned()]);
}

/// The names an entry about `m` lists: the merge, the merged subject and
/// the records and consents `moving`.
pub(super) fn merge_names(m: &SubjectMerge, moving: &Holdings) -> Vec<String> {
    let mut names = vec![m.id.resource_name(), m.merged.resource_name()];
    names.extend(moving.records.iter().map(|r| r.resource_name()));
    names.extend(moving.consents.iter().map(|c| c.resource_name()));
    names
}

impl Services {
    /// The write that merges `merged` into `survivor`, as decided now, and
    /// the merge it makes; `possible_duplicate` names the pair it resolves.
    pub(super) async fn merge_write(
        &self,
        call: &Call,
        survivor: &SubjectId,
        merged: &SubjectId,
        note: String,
        possible_duplicate: Option<PossibleDuplicateId>,
    ) -> Result<(Write, SubjectMerge), ServiceError> {
        if survivor == merged {
            return Err(Violations::one("merged", "must not be the survivor").into());
        }
        let controller = standing_subject(self, survivor, "survivor")
            .await?
            .registered_by;
        standing_subject(self, merged, "merged").await?;
        call.note_controller(controller.as_str().to_owned());
        let moved = self
            .store
            .merge_plan(survivor, merged)
            .await?
            .ok_or_else(|| ServiceError::Precondition {
                code: "SUBJECT_MERGED",
                message: "one of the subjects was merged meanwhile".to_owned(),
            })?;
        let merge = SubjectMerge {
            id: SubjectMergeId::generate(),
            survivor: survivor.clone(),
            merged: merged.clone(),
            act: MergeAct {
                principal: call.caller.principal.as_str().to_owned(),
                agency: call.caller.agency.clone(),
                time: call.time,
                note,
            },
            moved,
            possible_duplicate,
            unmerge: None,
        };
        note_merge(call, &merge, &merge.moved);
        Ok((Write::MergeSubjects(merge.clone()), merge))
    }

    /// Merges `merged` into `survivor`: everything held about `merged`
    /// moves to `survivor`, and `merged`'s name resolves to it from now on.
    pub async fn merge_subjects(
        &self,
        call: &Call,
        survivor: &SubjectId,
        merged: &SubjectId,
        note: String,
    ) -> Result<Audited<SubjectMerge>, ServiceError> {
        call.require_role(Role::DATA_QUALITY)?;
        check_note(&note)?;
        let (write, merge) = self.merge_write(call, survivor, merged, note, None).await?;
        self.commit(call, vec![write], merge).await
    }

    /// Undoes a standing merge: what it moved goes back to the merged
    /// subject, from wherever it still is on the survivor.
    pub async fn unmerge_subjects(
        &self,
        call: &Call,
        id: &SubjectMergeId,
        note: String,
    ) -> Result<Audited<SubjectMerge>, ServiceError> {
        call.require_role(Role::DATA_QUALITY)?;
        check_note(&note)?;
        let mut merge = self
            .store
            .subject_merge(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        if let Some(u) = &merge.unmerge {
            return Err(ServiceError::Precondition {
                code: "MERGE_ALREADY_UNDONE",
                message: format!(
                    "{} was undone by {} on {}",
                    id.resource_name(),
                    u.act.principal,
                    u.act.time.format("%Y-%m-%d")
                ),
            });
        }
        let survivor = standing_subject(self, &merge.survivor, "survivor")
            .await
            .map_err(|e| match e {
                ServiceError::Precondition { message, .. } => ServiceError::Precondition {
                    code: "SURVIVOR_MERGED",
                    message: format!("{message}: undo that merge first"),
                },
                other => other,
            })?;
        let (restored, copied_seals) =
            self.store
                .unmerge_plan(&merge)
                .await?
                .ok_or_else(|| ServiceError::Precondition {
                    code: "MERGE_ALREADY_UNDONE",
                    message: format!("{} was undone meanwhile", id.resource_name()),
                })?;
        merge.unmerge = Some(Unmerge {
            act: MergeAct {
                principal: call.caller.principal.as_str().to_owned(),
                agency: call.caller.agency.clone(),
                time: call.time,
                note,
            },
            restored,
            copied_seals,
        });
        if let Some(u) = &merge.unmerge {
            note_merge(call, &merge, &u.restored);
        }
        call.note_controller(survivor.registered_by.as_str().to_owned());
        let write = Write::UnmergeSubjects(merge.clone());
        self.commit(call, vec![write], merge).await
    }

    /// The merges a subject took part in, on either side, oldest first.
    pub async fn list_subject_merges(
        &self,
        call: &Call,
        subject: &SubjectId,
    ) -> Result<Audited<Vec<SubjectMerge>>, ServiceError> {
        call.require_role(Role::DATA_QUALITY)?;
        call.note_subject(subject.resource_name());
        if self.store.subject(subject).await?.is_none() {
            return Err(ServiceError::NotFound(subject.resource_name()));
        }
        let merges = self.store.merges_of(subject).await?;
        call.note_records(merges.iter().map(|m| m.id.resource_name()).collect());
        self.commit(call, vec![], merges).await
    }
}
