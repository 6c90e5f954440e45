//! The one place where service errors become gRPC statuses, with rich
//! details: `google.rpc.BadRequest` field violations for invalid input and
//! `google.rpc.ErrorInfo` with a stable reason for every refusal.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::service::ServiceError;

/// The `ErrorInfo.domain` of Accord's errors.
pub const ERROR_DOMAIN: &str = "accord";

/// How long a caller told UNAVAILABLE is asked to wait before trying again
/// (`google.rpc.RetryInfo`): about the health probe's interval, by which
/// time the server knows whether its database is back.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Logs a refused call once: Accord's own faults at ERROR with their
/// cause chain, a caller's mistakes (bad input, no permission, unknown
/// names, stale etags…) at INFO.
fn log(error: &ServiceError, code: Code, method: &str, request_id: &str) {
    let reason_code = error.reason_code();
    match error {
        ServiceError::Unavailable(cause) => tracing::error!(
            method,
            ?code,
            reason_code,
            request_id,
            error = crate::telemetry::causes(cause),
            "storage failed; the call was refused"
        ),
        ServiceError::Policy(cause) => tracing::error!(
            method,
            ?code,
            reason_code,
            request_id,
            error = crate::telemetry::causes(cause),
            "the access decision failed; the call was refused"
        ),
        ServiceError::NotAudited => tracing::error!(
            method,
            ?code,
            reason_code,
            request_id,
            "a result came without its own ledger entry; nothing was released"
        ),
        ServiceError::Unauthenticated(failure) if failure.is_unavailable() => tracing::error!(
            method,
            ?code,
            reason_code,
            request_id,
            error = %failure,
            "the caller could not be identified; the call was refused"
        ),
        _ => tracing::info!(method, ?code, reason_code, request_id, "call refused"),
    }
}

/// The status for `error`, answering a call of `method`; logs it.
pub fn to_status(error: &ServiceError, request_id: &str, method: &str) -> Status {
    let code = match error {
        ServiceError::Invalid(_) => Code::InvalidArgument,
        ServiceError::Unauthenticated(f) if f.is_unavailable() => Code::Unavailable,
        ServiceError::Unauthenticated(_) => Code::Unauthenticated,
        ServiceError::Denied(_) => Code::PermissionDenied,
        ServiceError::NotFound(_) => Code::NotFound,
        ServiceError::AlreadyExists(_) => Code::AlreadyExists,
        ServiceError::StaleEtag(_) => Code::Aborted,
        ServiceError::Precondition { .. } => Code::FailedPrecondition,
        ServiceError::Unavailable(_) => Code::Unavailable,
        ServiceError::Policy(_) | ServiceError::NotAudited => Code::Internal,
        ServiceError::RateLimited { .. } => Code::ResourceExhausted,
    };
    let mut metadata = HashMap::from([("request_id".to_owned(), request_id.to_owned())]);
    if let ServiceError::Denied(denial) = error {
        for (key, value) in [
            ("agreement", &denial.agreement),
            ("consent", &denial.consent),
        ] {
            if !value.is_empty() {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
    }
    let mut details = ErrorDetails::with_error_info(error.reason_code(), ERROR_DOMAIN, metadata);
    if code == Code::Unavailable {
        details.set_retry_info(Some(RETRY_AFTER));
    }
    if let ServiceError::RateLimited { retry_after, .. } = error {
        details.set_retry_info(Some(*retry_after));
    }
    let message = match error {
        ServiceError::Invalid(violations) => {
            for v in violations.iter() {
                details.add_bad_request_violation(v.field.clone(), v.description.clone());
            }
            error.to_string()
        }
        ServiceError::Unavailable(_) => {
            "storage is unavailable; nothing was changed or disclosed".to_owned()
        }
        ServiceError::Policy(_) => {
            "the access decision could not be made; nothing was disclosed".to_owned()
        }
        ServiceError::NotAudited => {
            "the call could not be audited; nothing was disclosed".to_owned()
        }
        other => other.to_string(),
    };
    log(error, code, method, request_id);
    Status::with_error_details(code, message, details)
}
