//! One path for every unary RPC: an [`Operation`] says what its method is,
//! who may call it, how its request becomes domain input, how it runs and
//! how its result becomes the response; [`Api::serve`] admits the caller,
//! runs it, audits a refusal and answers, the same way for all of them.

use std::future::Future;

use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{Api, input};
use crate::domain::{Purpose, Violations};
use crate::service::{Access, Call, ServiceError, Services};

/// One RPC of Accord's services.
pub trait Operation {
    /// The generated request message.
    type Request: Send;
    /// What the request becomes once checked.
    type Input: Send;
    /// What the audited service returns.
    type Output: Send;
    /// The generated response message.
    type Response;

    /// The full method path, e.g. `/accord.v1.CatalogService/GetRecordClass`.
    const METHOD: &'static str;
    /// Who may call it.
    const ACCESS: Access;

    /// Checks the request, reporting every problem at once; `call` gives
    /// the time of the call and takes its declared purpose.
    fn input(request: Self::Request, call: &Call) -> Result<Self::Input, Violations>;

    /// Runs the audited service.
    fn run(
        services: &Services,
        call: &Call,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, ServiceError>> + Send;

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
        let call = self.begin(&request, O::METHOD, O::ACCESS).await?;
        let span = tracing::info_span!(
            "call",
            method = O::METHOD,
            request_id = call.request_id.as_str()
        );
        async {
            let result = async {
                let checked = input(O::input(request.into_inner(), &call))?;
                O::run(&self.services, &call, checked).await
            }
            .await;
            self.finish(&call, result, |output| O::render(output, &call))
                .await
        }
        .instrument(span)
        .await
    }
}
