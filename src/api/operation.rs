//! One path for every unary RPC: an [`Operation`] says what its method is,
//! who may call it, how its request becomes domain input, how it runs and
//! how its result becomes the response; [`Api::serve`] admits the caller,
//! runs it, audits a refusal and answers, the same way for all of them.
//! A call decided on state held in memory is decided again on fresh state
//! when that state moved before its entry could commit, or when it was
//! refused ([`Call::decide_again`]); its caller is authenticated again
//! first if the authentication relied on the registry.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_stream::Stream;

use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{Api, input};
use crate::domain::{Purpose, Violations};
use crate::service::{Access, Audited, Call, ServiceError, Services};

/// The size of a message on the wire (its protobuf encoding), for the
/// access log.
pub trait WireSize {
    fn wire_size(&self) -> usize;
}

impl<T: prost::Message> WireSize for T {
    fn wire_size(&self) -> usize {
        self.encoded_len()
    }
}

/// The messages of a server stream, as an operation answers them (their
/// sizes are not counted in the access log line).
pub struct ServerStream<T>(pub Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>);

impl<T> Stream for ServerStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.as_mut().poll_next(cx)
    }
}

impl<T> WireSize for ServerStream<T> {
    fn wire_size(&self) -> usize {
        0
    }
}

/// One RPC of Accord's services.
pub trait Operation {
    /// The generated request message.
    type Request: Send + WireSize;
    /// What the request becomes once checked (cloned for each time the
    /// call is decided).
    type Input: Send + Clone;
    /// What the audited service returns.
    type Output: Send;
    /// The generated response message.
    type Response: WireSize;

    /// The full method path, e.g. `/accord.v1.CatalogService/GetRecordClass`.
    const METHOD: &'static str;
    /// Who may call it.
    const ACCESS: Access;

    /// Checks the request, reporting every problem at once; `call` gives
    /// the time of the call and takes its declared purpose.
    fn input(request: Self::Request, call: &Call) -> Result<Self::Input, Violations>;

    /// Runs the audited service: its result comes with the receipt of the
    /// call's ledger entry, without which nothing is answered.
    fn run(
        services: &Services,
        call: &Call,
        input: Self::Input,
    ) -> impl Future<Output = Result<Audited<Self::Output>, ServiceError>> + Send;

    /// The response to a success of `call`.
    fn render(output: Self::Output, call: &Call) -> Self::Response;
}

/// The input of a request that declares a purpose of use, once checked:
/// the purpose is the call's from then on.
pub fn declared<T>(
    call: &Call,
    checked: Result<(Purpose, T), Violations>,
) -> Result<T, Violations> {
    checked.map(|(purpose, input)| {
        call.set_purpose(purpose);
        input
    })
}

impl Api {
    /// Serves `request` as the operation `O`: begins the call (caller and
    /// access), checks the input, runs it, and answers; a refusal or
    /// failure is audited and becomes a status.
    pub async fn serve<O: Operation>(
        &self,
        request: Request<O::Request>,
    ) -> Result<Response<O::Response>, Status> {
        let started = std::time::Instant::now();
        let request_bytes = request.get_ref().wire_size();
        // Every call is a span, refused or not: a child of the caller's
        // trace context when traces are exported.
        let span = tracing::info_span!(
            "call",
            method = O::METHOD,
            request_id = tracing::field::Empty
        );
        crate::telemetry::follow_caller(&span, request.metadata());
        async {
            let (call, established) = match self.begin(&request, O::METHOD, O::ACCESS).await {
                Ok(begun) => begun,
                Err(status) => {
                    // Refused before it was served (unauthenticated, or
                    // not admitted): its caller as far as established.
                    let took = started.elapsed();
                    let caller = request
                        .extensions()
                        .get::<super::Established>()
                        .map(|e| &e.authenticated.caller);
                    let agency = caller.map_or("", |c| c.agency.as_str());
                    crate::monitor::call(O::METHOD, status.code(), "", agency, took);
                    let info = tonic_types::StatusExt::get_details_error_info(&status);
                    access_log(&AccessLine {
                        method: O::METHOD,
                        code: status.code(),
                        reason: info.as_ref().map_or("", |i| i.reason.as_str()),
                        agency,
                        principal: caller.map_or("", |c| c.principal.as_str()),
                        request_id: info
                            .as_ref()
                            .and_then(|i| i.metadata.get("request_id"))
                            .map_or("", String::as_str),
                        trace_id: &super::trace_id(request.metadata()),
                        took,
                        request_bytes,
                        response_bytes: 0,
                    });
                    return Err(status);
                }
            };
            tracing::Span::current().record("request_id", call.request_id.as_str());
            let result = async {
                let checked = input(O::input(request.into_inner(), &call))?;
                loop {
                    let decided = async {
                        O::run(&self.services, &call, checked.clone())
                            .await?
                            .release(&call)
                    }
                    .await;
                    match decided {
                        Err(e) if call.decide_again(&e) => {
                            tracing::debug!(error = %e, "deciding again on fresh state");
                            self.authenticate_again(&call, &established).await?;
                            self.services.admit(&call, O::ACCESS).await?;
                        }
                        decided => break decided,
                    }
                }
            }
            .await;
            let reason = result.as_ref().err().map_or("", ServiceError::reason_code);
            let answer = self
                .finish(&call, result, |output| O::render(output, &call))
                .await;
            let code = answer
                .as_ref()
                .map_or_else(Status::code, |_| tonic::Code::Ok);
            let took = started.elapsed();
            crate::monitor::call(O::METHOD, code, reason, call.caller.agency.as_str(), took);
            access_log(&AccessLine {
                method: O::METHOD,
                code,
                reason,
                agency: call.caller.agency.as_str(),
                principal: call.caller.principal.as_str(),
                request_id: &call.request_id,
                trace_id: &call.trace_id,
                took,
                request_bytes,
                response_bytes: answer.as_ref().map_or(0, |r| r.get_ref().wire_size()),
            });
            answer
        }
        .instrument(span)
        .await
    }
}

/// What the access log says of one call.
struct AccessLine<'a> {
    method: &'static str,
    code: tonic::Code,
    reason: &'a str,
    agency: &'a str,
    principal: &'a str,
    request_id: &'a str,
    trace_id: &'a str,
    took: std::time::Duration,
    request_bytes: usize,
    response_bytes: usize,
}

/// The access log: one line per call at INFO (target `accord::access`),
/// naming who called and how it went — never what was asked for or
/// disclosed, nor any credential.
fn access_log(a: &AccessLine<'_>) {
    tracing::info!(
        target: "accord::access",
        method = a.method,
        code = crate::monitor::code_label(a.code),
        reason_code = a.reason,
        agency = a.agency,
        principal = a.principal,
        request_id = a.request_id,
        trace_id = a.trace_id,
        latency_ms = a.took.as_secs_f64() * 1000.0,
        request_bytes = a.request_bytes,
        response_bytes = a.response_bytes,
        "call"
    );
}

/// Declares an [`Operation`] as a unit struct, from its parts:
///
/// ```text
/// operation! {
///     GetSubject: "SubjectService"/"GetSubject", Member,
///     pb::GetSubjectRequest => pb::GetSubjectResponse,
///     input(request, call) -> SubjectId { declared(call, convert::get_subject(request)) },
///     run(services, call, id) -> Subject { services.get_subject(call, &id).await },
///     render(subject, _call) { pb::GetSubjectResponse { subject: Some(convert::subject_out(subject)) } },
/// }
/// ```
macro_rules! operation {
    (
        $name:ident: $service:literal / $method:literal, $access:ident,
        $request:ty => $response:ty,
        input($r:pat, $c:pat) -> $input:ty $input_body:block,
        run($s:pat, $call:pat, $i:pat) -> $output:ty $run_body:block,
        render($o:pat, $rc:pat) $render_body:block $(,)?
    ) => {
        #[doc = concat!("The operation of `accord.v1.", $service, "/", $method, "`.")]
        #[derive(Debug)]
        pub struct $name;

        impl $crate::api::operation::Operation for $name {
            type Request = $request;
            type Input = $input;
            type Output = $output;
            type Response = $response;
            const METHOD: &'static str = $crate::api::method!($service, $method);
            const ACCESS: $crate::service::Access = $crate::service::Access::$access;

            fn input(
                $r: $request,
                $c: &$crate::service::Call,
            ) -> Result<$input, $crate::domain::Violations> $input_body

            async fn run(
                $s: &$crate::service::Services,
                $call: &$crate::service::Call,
                $i: $input,
            ) -> Result<$crate::service::Audited<$output>, $crate::service::ServiceError> $run_body

            fn render($o: $output, $rc: &$crate::service::Call) -> $response $render_body
        }
    };
}
pub(crate) use operation;

/// Implements a generated service trait for its adapter, each method
/// served by its [`Operation`]; what follows the table (a streaming
/// method's stream type) goes into the implementation as it is.
macro_rules! serve {
    ($service:path, $adapter:ty { $($rpc:ident => $op:ty),+ $(,)? } $($extra:tt)*) => {
        #[tonic::async_trait]
        impl $service for $adapter {
            $($extra)*

            $(
                async fn $rpc(
                    &self,
                    request: tonic::Request<<$op as $crate::api::operation::Operation>::Request>,
                ) -> Result<
                    tonic::Response<<$op as $crate::api::operation::Operation>::Response>,
                    tonic::Status,
                > {
                    self.0.serve::<$op>(request).await
                }
            )+
        }
    };
}
pub(crate) use serve;
