//! `accord.v1.SubjectService`.

use super::operation::{declared, operation, serve};
use super::pb::subject_service_server::SubjectService;
use super::{Api, convert, pb};
use crate::domain::duplicate::{DuplicateState, PossibleDuplicateId};
use crate::domain::merge::{SubjectMerge, SubjectMergeId};
use crate::domain::{Identifier, Subject, SubjectId, Violations};
use crate::service::{
    Call, DuplicateView, MatchCandidate, MatchProbe, NewSubject, Page, PageRequest, SubjectMatch,
    SubjectQuery, SubjectView,
};

/// The SubjectService adapter.
#[derive(Debug, Clone)]
pub struct SubjectApi(pub Api);

serve!(SubjectService, SubjectApi {
    create_subject => CreateSubject,
    get_subject => GetSubject,
    get_subject_view => GetSubjectView,
    find_subjects => FindSubjects,
    match_subjects => MatchSubjects,
    list_possible_duplicates => ListPossibleDuplicates,
    resolve_possible_duplicate => ResolvePossibleDuplicate,
    merge_subjects => MergeSubjects,
    unmerge_subjects => UnmergeSubjects,
    list_subject_merges => ListSubjectMerges,
    link_identifier => LinkIdentifier,
    unlink_identifier => UnlinkIdentifier,
});

operation! {
    CreateSubject: "SubjectService"/"CreateSubject", Member,
    pb::CreateSubjectRequest => pb::CreateSubjectResponse,
    input(request, call) -> NewSubject {
        let today = call.time.date_naive();
        declared(call, convert::create_subject(request, &call.caller.agency, today))
    },
    run(services, call, new) -> Subject { services.create_subject(call, new).await },
    render(subject, _) { pb::CreateSubjectResponse { subject: Some(convert::subject_out(subject)) } },
}

operation! {
    GetSubject: "SubjectService"/"GetSubject", Member,
    pb::GetSubjectRequest => pb::GetSubjectResponse,
    input(request, call) -> SubjectId { declared(call, convert::get_subject(request)) },
    run(services, call, id) -> Subject { services.get_subject(call, &id).await },
    render(subject, _) { pb::GetSubjectResponse { subject: Some(convert::subject_out(subject)) } },
}

operation! {
    GetSubjectView: "SubjectService"/"GetSubjectView", Member,
    pb::GetSubjectViewRequest => pb::GetSubjectViewResponse,
    input(request, call) -> SubjectId { declared(call, convert::get_subject_view(request)) },
    run(services, call, id) -> SubjectView { services.get_subject_view(call, &id).await },
    render(view, _) { pb::GetSubjectViewResponse { view: Some(convert::subject_view_out(view)) } },
}

operation! {
    FindSubjects: "SubjectService"/"FindSubjects", Member,
    pb::FindSubjectsRequest => pb::FindSubjectsResponse,
    input(request, call) -> (SubjectQuery, usize) {
        let today = call.time.date_naive();
        let checked = convert::find_subjects(request, &call.caller.agency, today);
        declared(call, checked.map(|(purpose, query, max)| (purpose, (query, max))))
    },
    run(services, call, (query, max)) -> Vec<SubjectMatch> {
        services.find_subjects(call, query, max).await
    },
    render(matches, _) {
        pb::FindSubjectsResponse {
            matches: matches.into_iter().map(convert::subject_match_out).collect(),
        }
    },
}

operation! {
    MatchSubjects: "SubjectService"/"MatchSubjects", Member,
    pb::MatchSubjectsRequest => pb::MatchSubjectsResponse,
    input(request, call) -> (MatchProbe, usize) {
        let today = call.time.date_naive();
        let checked = convert::match_subjects(request, &call.caller.agency, today);
        declared(call, checked.map(|(purpose, probe, max)| (purpose, (probe, max))))
    },
    run(services, call, (probe, max)) -> Vec<MatchCandidate> {
        services.match_subjects(call, probe, max).await
    },
    render(candidates, _) {
        pb::MatchSubjectsResponse {
            candidates: candidates.into_iter().map(convert::match_candidate_out).collect(),
        }
    },
}

operation! {
    ListPossibleDuplicates: "SubjectService"/"ListPossibleDuplicates", MemberOrOperator,
    pb::ListPossibleDuplicatesRequest => pb::ListPossibleDuplicatesResponse,
    input(request, _) -> (DuplicateState, PageRequest) {
        convert::list_possible_duplicates(request)
    },
    run(services, call, (state, page)) -> Page<DuplicateView> {
        services.list_possible_duplicates(call, state, &page).await
    },
    render(page, _) {
        pb::ListPossibleDuplicatesResponse {
            possible_duplicates: page
                .items
                .into_iter()
                .map(convert::possible_duplicate_out)
                .collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    ResolvePossibleDuplicate: "SubjectService"/"ResolvePossibleDuplicate", MemberOrOperator,
    pb::ResolvePossibleDuplicateRequest => pb::ResolvePossibleDuplicateResponse,
    input(request, _) -> (PossibleDuplicateId, DuplicateState, String) {
        convert::resolve_possible_duplicate(request)
    },
    run(services, call, (id, state, note)) -> DuplicateView {
        services.resolve_possible_duplicate(call, &id, state, note).await
    },
    render(view, _) {
        pb::ResolvePossibleDuplicateResponse {
            possible_duplicate: Some(convert::possible_duplicate_out(view)),
        }
    },
}

operation! {
    MergeSubjects: "SubjectService"/"MergeSubjects", MemberOrOperator,
    pb::MergeSubjectsRequest => pb::MergeSubjectsResponse,
    input(request, _) -> (SubjectId, SubjectId, String) { convert::merge_subjects(request) },
    run(services, call, (survivor, merged, note)) -> SubjectMerge {
        services.merge_subjects(call, &survivor, &merged, note).await
    },
    render(merge, _) { pb::MergeSubjectsResponse { merge: Some(convert::subject_merge_out(merge)) } },
}

operation! {
    UnmergeSubjects: "SubjectService"/"UnmergeSubjects", MemberOrOperator,
    pb::UnmergeSubjectsRequest => pb::UnmergeSubjectsResponse,
    input(request, _) -> (SubjectMergeId, String) { convert::unmerge_subjects(request) },
    run(services, call, (id, note)) -> SubjectMerge {
        services.unmerge_subjects(call, &id, note).await
    },
    render(merge, _) {
        pb::UnmergeSubjectsResponse { merge: Some(convert::subject_merge_out(merge)) }
    },
}

operation! {
    ListSubjectMerges: "SubjectService"/"ListSubjectMerges", MemberOrOperator,
    pb::ListSubjectMergesRequest => pb::ListSubjectMergesResponse,
    input(request, _) -> SubjectId { convert::list_subject_merges(request) },
    run(services, call, subject) -> Vec<SubjectMerge> {
        services.list_subject_merges(call, &subject).await
    },
    render(merges, _) {
        pb::ListSubjectMergesResponse {
            merges: merges.into_iter().map(convert::subject_merge_out).collect(),
        }
    },
}

/// The input of LinkIdentifier and UnlinkIdentifier.
fn identifier_change(
    call: &Call,
    subject: &str,
    identifier: Option<pb::Identifier>,
    purpose: i32,
    unlink: bool,
) -> Result<(SubjectId, Identifier), Violations> {
    let agency = &call.caller.agency;
    let checked = convert::identifier_change(subject, identifier, purpose, agency, unlink);
    declared(call, checked.map(|(purpose, s, i)| (purpose, (s, i))))
}

operation! {
    LinkIdentifier: "SubjectService"/"LinkIdentifier", Member,
    pb::LinkIdentifierRequest => pb::LinkIdentifierResponse,
    input(r, call) -> (SubjectId, Identifier) {
        identifier_change(call, &r.subject, r.identifier, r.purpose, false)
    },
    run(services, call, (subject, identifier)) -> Subject {
        services.link_identifier(call, &subject, identifier).await
    },
    render(subject, _) { pb::LinkIdentifierResponse { subject: Some(convert::subject_out(subject)) } },
}

operation! {
    UnlinkIdentifier: "SubjectService"/"UnlinkIdentifier", Member,
    pb::UnlinkIdentifierRequest => pb::UnlinkIdentifierResponse,
    input(r, call) -> (SubjectId, Identifier) {
        identifier_change(call, &r.subject, r.identifier, r.purpose, true)
    },
    run(services, call, (subject, identifier)) -> Subject {
        services.unlink_identifier(call, &subject, identifier).await
    },
    render(subject, _) {
        pb::UnlinkIdentifierResponse { subject: Some(convert::subject_out(subject)) }
    },
}
