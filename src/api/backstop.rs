//! The audit backstop: a tower layer that writes a ledger entry for calls
//! on Accord's services that fail before any adapter sees them — messages
//! that cannot be decoded or are too large, unknown methods — so that every
//! call, even a malformed one, is in the ledger. It is also where callers
//! are authenticated: a refused caller is answered (and audited) here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tonic::Code;
use tonic::metadata::MetadataMap;
use tower::{Layer, Service};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::{Api, Presentation, REQUEST_ID_HEADER, request_id};
use crate::service::Unserved;

/// Path prefix of the services the backstop covers.
const ACCORD_PREFIX: &str = "/accord.v1.";

/// Accord's limits on a request's metadata, answered call by call with
/// RESOURCE_EXHAUSTED (and audited), below the HTTP/2 limit at which the
/// protocol itself refuses the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// The most bytes of metadata, counted as HTTP/2 does (each name and
    /// value, plus 32 per entry).
    pub max_bytes: usize,
    /// The most metadata entries.
    pub max_count: usize,
}

impl HeaderLimits {
    /// Why `headers` are over the limits, if they are.
    fn exceeded(&self, headers: &http::HeaderMap) -> Option<String> {
        let count = headers.len();
        if count > self.max_count {
            return Some(format!(
                "the request carries {count} metadata entries; at most {} are accepted",
                self.max_count
            ));
        }
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        (bytes > self.max_bytes).then(|| {
            format!(
                "the request's metadata is {bytes} bytes; at most {} are accepted",
                self.max_bytes
            )
        })
    }
}

/// Why a call no adapter took over ended, from the status it was answered
/// with.
fn unserved(code: Code) -> Unserved {
    match code {
        Code::Unimplemented => Unserved::UnknownMethod,
        Code::ResourceExhausted => Unserved::MessageTooLarge,
        Code::Ok => Unserved::NotServed,
        _ => Unserved::NotDecoded,
    }
}

/// Set by an adapter when it takes a call over (and with it the duty to
/// audit it).
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<AtomicBool>);

impl Seen {
    /// Marks the call as taken over by an adapter.
    pub fn mark(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn marked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The layer, for `Server::builder().layer(…)`.
#[derive(Debug, Clone)]
pub struct BackstopLayer {
    api: Api,
    limits: HeaderLimits,
}

impl BackstopLayer {
    /// A backstop auditing through `api`, holding requests to `limits`.
    pub fn new(api: Api, limits: HeaderLimits) -> Self {
        Self { api, limits }
    }
}

impl<S> Layer<S> for BackstopLayer {
    type Service = Backstop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Backstop {
            inner,
            api: self.api.clone(),
            limits: self.limits,
        }
    }
}

/// The service the layer wraps around the router.
#[derive(Debug, Clone)]
pub struct Backstop<S> {
    inner: S,
    api: Api,
    limits: HeaderLimits,
}

/// The gRPC status of a response, from its headers (trailers-only
/// responses, which is how calls that never reach a handler end).
fn status_of<B>(response: &http::Response<B>) -> Option<(Code, String)> {
    let code = response
        .headers()
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| {
            percent_encoding::percent_decode_str(m)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some((Code::from_i32(code), message))
}

impl<S, B, RB> Service<http::Request<B>> for Backstop<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was made ready is the one to call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let path = request.uri().path().to_owned();
        if !path.starts_with(ACCORD_PREFIX) {
            return Box::pin(inner.call(request));
        }
        let seen = Seen::default();
        request.extensions_mut().insert(seen.clone());
        // One request id for the whole call: the caller's if it is a sensible
        // one, else a new one; the adapter and the ledger see it, and every
        // response, success or error, carries it back.
        let request_id = request_id(&MetadataMap::from_headers(request.headers().clone()));
        let id_header = http::HeaderValue::from_str(&request_id).ok();
        if let Some(v) = &id_header {
            request.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
        }
        let metadata = MetadataMap::from_headers(request.headers().clone());
        let peer_certificates = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs);
        let api = self.api.clone();
        let too_much = self.limits.exceeded(request.headers());
        Box::pin(async move {
            // Nothing on Accord's services is served, or even decoded,
            // before its caller is established.
            let presentation = Presentation {
                metadata,
                peer_certificates,
            };
            let established = match api.authenticate(presentation, &request_id, &path).await {
                Ok(established) => established,
                Err(status) => {
                    let mut response = status.into_http::<RB>();
                    if let Some(v) = id_header {
                        response.headers_mut().insert(REQUEST_ID_HEADER, v);
                    }
                    return Ok(response);
                }
            };
            let caller = established.authenticated.caller.clone();
            if let Some(why) = too_much {
                api.audit_unserved(&caller, &path, Unserved::HeadersTooLarge, &why, request_id)
                    .await;
                let mut response = tonic::Status::resource_exhausted(why).into_http::<RB>();
                if let Some(v) = id_header {
                    response.headers_mut().insert(REQUEST_ID_HEADER, v);
                }
                return Ok(response);
            }
            request.extensions_mut().insert(established);
            let mut response = inner.call(request).await?;
            if !seen.marked() {
                let (mut code, message) =
                    status_of(&response).unwrap_or((Code::Unknown, String::new()));
                if code == Code::OutOfRange {
                    // tonic answers a message over the size limit with
                    // OUT_OF_RANGE; gRPC's status rules call for
                    // RESOURCE_EXHAUSTED (no handler of Accord's answers
                    // OUT_OF_RANGE, so only a decoding limit lands here).
                    code = Code::ResourceExhausted;
                    response
                        .headers_mut()
                        .insert("grpc-status", http::HeaderValue::from(code as i32));
                }
                api.audit_unserved(&caller, &path, unserved(code), &message, request_id)
                    .await;
            }
            if let Some(v) = id_header {
                response.headers_mut().insert(REQUEST_ID_HEADER, v);
            }
            Ok(response)
        })
    }
}
