//! gRPC adapters: authenticate, convert, call the audited service, convert
//! back. No storage or policy logic lives here.

pub mod backstop;
pub mod convert;
pub mod error;
pub mod inflight;
pub mod operation;
pub mod pb;

mod agency;
mod agreement;
mod audit;
mod catalog;
mod consent;
mod event;
mod record;
mod subject;

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

pub use agency::AgencyApi;
pub use agreement::AgreementApi;
pub use audit::AuditApi;
pub use catalog::CatalogApi;
pub use consent::ConsentApi;
pub use event::EventApi;
pub use record::RecordApi;
pub use subject::SubjectApi;

use crate::auth::{AuthFailure, Authenticated, Basis, Presented, SharedAuthenticator};
use crate::domain::Caller;
use crate::domain::Violations;
use crate::service::{Access, Call, ServiceError, Services, Unserved};

/// The longest action (method path) an entry records: paths come from
/// callers, and one that names no method can be long.
const MAX_ACTION_CHARS: usize = 200;

/// Metadata key of the request id, read from requests and set on responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The full gRPC method path of `Service/Method` in `accord.v1`.
macro_rules! method {
    ($service:literal, $method:literal) => {
        concat!("/accord.v1.", $service, "/", $method)
    };
}
pub(crate) use method;

/// What every adapter shares: the services and the authenticator.
#[derive(Debug, Clone)]
pub struct Api {
    services: Services,
    authenticator: SharedAuthenticator,
}

/// The caller of a request, established by the backstop layer before any
/// adapter sees it, and what the request presented, to authenticate it
/// again if the registry changes while it is served.
#[derive(Debug, Clone)]
pub struct Established {
    authenticated: Authenticated,
    presentation: Arc<Presentation>,
}

/// What a request presented to be authenticated, kept with it.
#[derive(Debug)]
pub struct Presentation {
    metadata: MetadataMap,
    peer_certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl Presentation {
    fn presented(&self) -> Presented<'_> {
        Presented {
            metadata: &self.metadata,
            peer_certificates: self.peer_certificates.as_deref().map(Vec::as_slice),
        }
    }
}

/// Metadata key of the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The trace id of the caller's W3C `traceparent`
/// (`{version}-{trace id}-{parent id}-{flags}`), or empty when it sent none
/// or one that is not valid (which W3C trace context says to ignore).
pub fn trace_id(metadata: &MetadataMap) -> String {
    let Some(value) = metadata
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return String::new();
    };
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let parts: Vec<&str> = value.trim().split('-').collect();
    match parts.as_slice() {
        [version, trace, parent, flags, ..]
            if hex(version, 2)
                && *version != "ff"
                && (*version != "00" || parts.len() == 4)
                && hex(trace, 32)
                && nonzero(trace)
                && hex(parent, 16)
                && nonzero(parent)
                && hex(flags, 2) =>
        {
            (*trace).to_owned()
        }
        _ => String::new(),
    }
}

/// The request id: the caller's, if it is a sensible one, else a new one.
fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

impl Api {
    /// An adapter context over `services`, identifying callers with
    /// `authenticator`.
    pub fn new(services: Services, authenticator: SharedAuthenticator) -> Self {
        Self {
            services,
            authenticator,
        }
    }

    /// Establishes the caller of a request that presented `presentation`.
    /// A refusal is audited and returned as the status to answer with.
    async fn authenticate(
        &self,
        presentation: Presentation,
        request_id: &str,
        action: &str,
    ) -> Result<Established, Status> {
        match self
            .authenticator
            .authenticate(&presentation.presented(), Basis::Held)
            .await
        {
            Ok(authenticated) => Ok(Established {
                authenticated,
                presentation: Arc::new(presentation),
            }),
            Err(failure) => {
                // The path comes from the caller: keep it bounded.
                let action: String = action.chars().take(MAX_ACTION_CHARS).collect();
                Err(self
                    .refuse_unauthenticated(failure, request_id, &action)
                    .await)
            }
        }
    }

    /// Before `call` is decided again: if its caller's authentication
    /// relied on the registry, authenticates it again on the registry as
    /// it is now, so that its entry relies on that; a caller no longer
    /// established, or established differently, is refused.
    async fn authenticate_again(
        &self,
        call: &Call,
        established: &Established,
    ) -> Result<(), ServiceError> {
        if call.registry().is_none() {
            return Ok(());
        }
        let again = self
            .authenticator
            .authenticate(&established.presentation.presented(), Basis::Fresh)
            .await
            .map_err(ServiceError::Unauthenticated)?;
        if again.caller != call.caller {
            return Err(ServiceError::Unauthenticated(AuthFailure::new(
                "CREDENTIALS_CHANGED",
                "the registry changed what the client certificate and token establish while \
                 the call was served: call again",
            )));
        }
        call.set_registry(again.registry);
        Ok(())
    }

    async fn refuse_unauthenticated(
        &self,
        failure: AuthFailure,
        request_id: &str,
        action: &str,
    ) -> Status {
        crate::monitor::auth_failure(failure.code);
        let error = self
            .services
            .refuse_unauthenticated(failure, request_id.to_owned(), action)
            .await;
        error::to_status(&error, request_id, action)
    }

    /// Starts serving a call by its authenticated caller and checks
    /// `access`. Refusals are audited before they are returned.
    async fn begin<T>(
        &self,
        request: &Request<T>,
        action: &'static str,
        access: Access,
    ) -> Result<(Call, Established), Status> {
        if let Some(seen) = request.extensions().get::<backstop::Seen>() {
            seen.mark();
        }
        let request_id = request_id(request.metadata());
        let Some(established) = request.extensions().get::<Established>().cloned() else {
            let failure = AuthFailure::new(
                "NOT_AUTHENTICATED",
                "the call reached the service without being authenticated",
            );
            return Err(self
                .refuse_unauthenticated(failure, &request_id, action)
                .await);
        };
        let call = Call::new(
            established.authenticated.caller.clone(),
            request_id,
            action,
            self.services.now(),
        )
        .traced(trace_id(request.metadata()));
        call.set_registry(established.authenticated.registry);
        loop {
            match self.services.admit_limited(&call, access).await {
                Ok(()) => return Ok((call, established)),
                Err(e) if call.decide_again(&e) => {}
                Err(e) => return Err(self.refuse(&call, e).await),
            }
        }
    }

    /// Audits a call that failed before an adapter took it over. The
    /// response is already an error, so nothing was disclosed; if even the
    /// ledger fails, the failure is logged.
    async fn audit_unserved(
        &self,
        caller: &Caller,
        action: &str,
        why: Unserved,
        message: &str,
        request_id: String,
    ) {
        // Keep the action and reason bounded: they come from the caller.
        let action: String = action.chars().take(MAX_ACTION_CHARS).collect();
        let reason: String = message.chars().take(500).collect();
        if let Err(e) = self
            .services
            .record_unserved_call(caller, request_id, &action, why, &reason)
            .await
        {
            tracing::error!(error = %e, action, "could not audit a call that failed before it was served");
        }
    }

    /// Audits a refusal and turns it into a status.
    async fn refuse(&self, call: &Call, error: ServiceError) -> Status {
        let error = self.services.refuse(call, error).await;
        error::to_status(&error, &call.request_id, call.action)
    }

    /// Finishes a call: a success becomes a response; a failure is audited
    /// and becomes a status. (The backstop layer sets the request id on
    /// both.)
    async fn finish<T, M>(
        &self,
        call: &Call,
        result: Result<T, ServiceError>,
        message: impl FnOnce(T) -> M,
    ) -> Result<Response<M>, Status> {
        match result {
            Ok(value) => Ok(Response::new(message(value))),
            Err(e) => Err(self.refuse(call, e).await),
        }
    }
}

/// Converts input, turning violations into a service error.
fn input<T>(result: Result<T, Violations>) -> Result<T, ServiceError> {
    result.map_err(ServiceError::Invalid)
}
