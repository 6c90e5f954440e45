//! Staff sign-in to the console: OpenID Connect authorization code flow
//! with PKCE (S256), `state` and `nonce`, against the agency's identity
//! provider, with `openidconnect`. The provider is found through its
//! discovery document (fetched on the first sign-in and kept); the console
//! is a confidential client (its secret never leaves the server). The
//! access token it receives — for Accord's audience, asked for with the
//! configured scopes and, where the provider wants one, an RFC 8707
//! `resource` — is what it forwards to Accord on each call; the ID token
//! only tells the console who signed in.

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::OnceCell;

use super::session::{Pending, Staff, random_token};

/// Why a sign-in failed. Shown to the staff member in general terms; the
/// detail is logged.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider cannot be reached or described itself wrongly: {0}")]
    Discovery(String),
    #[error("the identity provider's answer does not belong to this sign-in")]
    WrongState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the code could not be exchanged for tokens: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
}

/// An HTTP error of the client `openidconnect` calls through.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// The console's client registration at the identity provider.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The provider's issuer (`iss`); its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The console's callback URL, as registered.
    pub redirect_url: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The RFC 8707 resource indicator to ask for, if any.
    pub resource: Option<String>,
}

/// Signing staff in with one identity provider.
#[derive(Debug)]
pub struct SignIn {
    registration: Registration,
    http: reqwest::Client,
    metadata: OnceCell<CoreProviderMetadata>,
}

/// How long a session lasts when the provider does not say how long its
/// access token does.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

impl SignIn {
    /// Sign-in through `registration`, over `http` (HTTPS only, no
    /// redirects followed).
    pub fn new(registration: Registration, http: reqwest::Client) -> Self {
        Self {
            registration,
            http,
            metadata: OnceCell::new(),
        }
    }

    /// Performs one HTTP request for `openidconnect`.
    async fn call(
        http: reqwest::Client,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
        let response = http
            .execute(request)
            .await
            .map_err(|e| HttpError(e.to_string()))?;
        let mut answer = axum::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| HttpError(e.to_string()))?;
        answer
            .body(body.to_vec())
            .map_err(|e| HttpError(e.to_string()))
    }

    /// The provider's metadata, discovered once.
    async fn metadata(&self) -> Result<&CoreProviderMetadata, SignInError> {
        self.metadata
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.registration.issuer.clone())
                    .map_err(|e| SignInError::Discovery(e.to_string()))?;
                let http = self.http.clone();
                let client = move |r| Self::call(http.clone(), r);
                CoreProviderMetadata::discover_async(issuer, &client)
                    .await
                    .map_err(|e| SignInError::Discovery(format!("{e:#}")))
            })
            .await
    }

    /// The client, over the discovered metadata.
    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SignInError,
    > {
        let redirect = RedirectUrl::new(self.registration.redirect_url.clone())
            .map_err(|e| SignInError::Discovery(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?.clone(),
            ClientId::new(self.registration.client_id.clone()),
            Some(ClientSecret::new(self.registration.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser to sign in, and what the answer must
    /// match; `then` is where to go afterwards.
    pub async fn start(&self, then: String) -> Result<(String, Pending), SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                || CsrfToken::new(random_token()),
                || Nonce::new(random_token()),
            )
            .add_scopes(self.registration.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(resource) = &self.registration.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let (url, state, nonce) = request.url();
        Ok((
            url.to_string(),
            Pending {
                state: state.secret().clone(),
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                then,
            },
        ))
    }

    /// Finishes the sign-in `pending` with the provider's answer: the
    /// code and state it sent back.
    pub async fn finish(
        &self,
        pending: Pending,
        code: &str,
        state: &str,
    ) -> Result<Staff, SignInError> {
        if !super::session::same_secret(state, &pending.state) {
            return Err(SignInError::WrongState);
        }
        let client = self.client().await?;
        let http = self.http.clone();
        let call = move |r| Self::call(http.clone(), r);
        let mut exchange = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SignInError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier));
        if let Some(resource) = &self.registration.resource {
            exchange = exchange.add_extra_param("resource", resource.clone());
        }
        let tokens = exchange
            .request_async(&call)
            .await
            .map_err(|e| SignInError::Exchange(format!("{e:#}")))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SignInError::IdToken("none was issued".to_owned()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|e| SignInError::IdToken(e.to_string()))?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        let lifetime = tokens.expires_in().unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok(Staff {
            principal: claims.subject().as_str().to_owned(),
            name,
            access_token: tokens.access_token().secret().clone(),
            expires: Instant::now() + lifetime,
            csrf: random_token(),
        })
    }
}
