//! `accord.v1.RecordService`.

use super::operation::{declared, operation, serve};
use super::pb::record_service_server::RecordService;
use super::{Api, convert, pb};
use crate::domain::{Purpose, RecordId, SubjectId, Violations};
use crate::policy::Disclosed;
use crate::service::{AccessCheck, Call, NewRecord, Page, PageRequest, RecordChange, SealTarget};

/// The RecordService adapter.
#[derive(Debug, Clone)]
pub struct RecordApi(pub Api);

serve!(RecordService, RecordApi {
    create_record => CreateRecord,
    update_record => UpdateRecord,
    get_record => GetRecord,
    list_records => ListRecords,
    seal_record => SealRecord,
    unseal_record => UnsealRecord,
    seal_subject_records => SealSubjectRecords,
    unseal_subject_records => UnsealSubjectRecords,
    check_access => CheckAccess,
});

/// A read's checked input: its purpose and emergency reason become the
/// call's.
fn read<T>(
    call: &Call,
    checked: Result<(Purpose, Option<String>, T), Violations>,
) -> Result<T, Violations> {
    let (purpose, break_glass, input) = checked?;
    call.set_purpose(purpose);
    if let Some(reason) = break_glass {
        call.set_break_glass(reason);
    }
    Ok(input)
}

operation! {
    CreateRecord: "RecordService"/"CreateRecord", Member,
    pb::CreateRecordRequest => pb::CreateRecordResponse,
    input(request, call) -> NewRecord { declared(call, convert::create_record(request)) },
    run(services, call, new) -> Disclosed { services.create_record(call, new).await },
    render(r, _) { pb::CreateRecordResponse { record: Some(convert::record_out(r)) } },
}

operation! {
    UpdateRecord: "RecordService"/"UpdateRecord", Member,
    pb::UpdateRecordRequest => pb::UpdateRecordResponse,
    input(request, call) -> RecordChange { declared(call, convert::update_record(request)) },
    run(services, call, change) -> Disclosed { services.update_record(call, change).await },
    render(r, _) { pb::UpdateRecordResponse { record: Some(convert::record_out(r)) } },
}

operation! {
    GetRecord: "RecordService"/"GetRecord", Member,
    pb::GetRecordRequest => pb::GetRecordResponse,
    input(request, call) -> (RecordId, Option<i64>) {
        let checked = convert::get_record(request);
        read(call, checked.map(|(purpose, reason, id, version)| (purpose, reason, (id, version))))
    },
    run(services, call, (id, version)) -> Disclosed {
        services.get_record(call, &id, version).await
    },
    render(r, _) { pb::GetRecordResponse { record: Some(convert::record_out(r)) } },
}

operation! {
    ListRecords: "RecordService"/"ListRecords", Member,
    pb::ListRecordsRequest => pb::ListRecordsResponse,
    input(request, call) -> (SubjectId, PageRequest) {
        let checked = convert::list_records(request);
        declared(call, checked.map(|(purpose, subject, page)| (purpose, (subject, page))))
    },
    run(services, call, (subject, page)) -> Page<Disclosed> {
        services.list_records(call, &subject, &page).await
    },
    render(page, _) {
        pb::ListRecordsResponse {
            records: page.items.into_iter().map(convert::record_out).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    SealRecord: "RecordService"/"SealRecord", Member,
    pb::SealRecordRequest => pb::SealRecordResponse,
    input(request, _) -> (RecordId, String) { convert::seal_record(request) },
    run(services, call, (id, reason)) -> Option<Disclosed> {
        services.set_seal(call, SealTarget::Record(id), Some(reason)).await
    },
    render(r, _) { pb::SealRecordResponse { record: r.map(convert::record_out) } },
}

operation! {
    UnsealRecord: "RecordService"/"UnsealRecord", Member,
    pb::UnsealRecordRequest => pb::UnsealRecordResponse,
    input(request, _) -> RecordId {
        RecordId::parse_name(&request.name).map_err(|e| Violations::one("name", e))
    },
    run(services, call, id) -> Option<Disclosed> {
        services.set_seal(call, SealTarget::Record(id), None).await
    },
    render(r, _) { pb::UnsealRecordResponse { record: r.map(convert::record_out) } },
}

operation! {
    SealSubjectRecords: "RecordService"/"SealSubjectRecords", Member,
    pb::SealSubjectRecordsRequest => pb::SealSubjectRecordsResponse,
    input(request, _) -> (SubjectId, String) { convert::seal_subject_records(request) },
    run(services, call, (subject, reason)) -> Option<Disclosed> {
        services.set_seal(call, SealTarget::SubjectRecords(subject), Some(reason)).await
    },
    render(_, _) { pb::SealSubjectRecordsResponse {} },
}

operation! {
    UnsealSubjectRecords: "RecordService"/"UnsealSubjectRecords", Member,
    pb::UnsealSubjectRecordsRequest => pb::UnsealSubjectRecordsResponse,
    input(request, _) -> SubjectId {
        SubjectId::parse_name(&request.subject).map_err(|e| Violations::one("subject", e))
    },
    run(services, call, subject) -> Option<Disclosed> {
        services.set_seal(call, SealTarget::SubjectRecords(subject), None).await
    },
    render(_, _) { pb::UnsealSubjectRecordsResponse {} },
}

operation! {
    CheckAccess: "RecordService"/"CheckAccess", Member,
    pb::CheckAccessRequest => pb::CheckAccessResponse,
    input(request, call) -> RecordId { read(call, convert::check_access(request)) },
    run(services, call, id) -> AccessCheck { services.check_access(call, &id).await },
    render(check, _) { convert::access_check_out(check) },
}
