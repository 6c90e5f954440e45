//! TLS: the server's configuration and the checks on client certificates.
//!
//! The handshake asks every client for a certificate but, by itself, only
//! makes the client prove it holds the certificate's private key. Whether
//! the certificate chains to a trusted CA and is in date is checked for
//! each call ([`ClientCas::check`]), so that a call over an untrusted,
//! expired or missing certificate is refused with a gRPC status the caller
//! can read and written to the ledger with the certificate's fingerprint,
//! instead of vanishing in a failed handshake. No call on Accord's services
//! is served before its certificate has passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{ServerConfig, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::domain::credential::{CertificateMatch, Fingerprint};
use crate::peers::{Admitted, Peers};

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long accepting pauses after it fails.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The cryptography used throughout (rustls with *ring*; its defaults:
/// TLS 1.2 and 1.3, modern cipher suites only).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a client certificate is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("no client certificate was presented: agency systems connect with mutual TLS")]
    Missing,
    #[error("the client certificate was not issued by a certificate authority Accord trusts")]
    UnknownCa,
    #[error("the client certificate has expired")]
    Expired,
    #[error("the client certificate is not valid yet")]
    NotYetValid,
    #[error("the client certificate is not valid: {0}")]
    Invalid(String),
}

impl CertificateProblem {
    /// The stable reason code audited and returned.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "CLIENT_CERTIFICATE_MISSING",
            Self::UnknownCa => "CLIENT_CERTIFICATE_UNKNOWN_CA",
            Self::Expired => "CLIENT_CERTIFICATE_EXPIRED",
            Self::NotYetValid => "CLIENT_CERTIFICATE_NOT_YET_VALID",
            Self::Invalid(_) => "CLIENT_CERTIFICATE_INVALID",
        }
    }
}

/// Reads every certificate in a PEM file.
pub fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds a malformed certificate", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate (PEM)", path.display());
    }
    Ok(certs)
}

/// The certificate authorities that issue agencies' client certificates.
/// Clones share one set, which [`LiveTls::reload`] replaces.
#[derive(Clone)]
pub struct ClientCas {
    current: Arc<ArcSwap<CaSet>>,
}

/// One set of client CAs, and which set it is (each reload makes another).
struct CaSet {
    verifier: Arc<dyn ClientCertVerifier>,
    generation: u64,
}

impl std::fmt::Debug for ClientCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCas").finish_non_exhaustive()
    }
}

impl ClientCas {
    /// The CAs whose certificates are in the PEM file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in read_certificates(path)? {
            roots.add(cert).with_context(|| {
                format!("{} holds a certificate that is not a CA", path.display())
            })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .context("cannot build the client certificate verifier")?;
        Ok(Self {
            current: Arc::new(ArcSwap::from_pointee(CaSet {
                verifier,
                generation: 0,
            })),
        })
    }

    /// Which set of CAs is in use: it changes when they are reloaded, so
    /// that a chain checked against earlier CAs is checked again.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// Makes `fresh`'s CAs the ones every clone of this set uses.
    fn adopt(&self, fresh: &ClientCas) {
        let verifier = fresh.current.load().verifier.clone();
        let generation = self.generation() + 1;
        self.current.store(Arc::new(CaSet {
            verifier,
            generation,
        }));
    }

    /// Checks a presented chain (leaf first): issued by one of the CAs for
    /// client authentication, and valid at `now`.
    pub fn check(
        &self,
        chain: &[CertificateDer<'static>],
        now: DateTime<Utc>,
    ) -> Result<(), CertificateProblem> {
        let (leaf, intermediates) = chain.split_first().ok_or(CertificateProblem::Missing)?;
        let seconds = u64::try_from(now.timestamp()).unwrap_or(0);
        let now = UnixTime::since_unix_epoch(Duration::from_secs(seconds));
        match self
            .current
            .load()
            .verifier
            .verify_client_cert(leaf, intermediates, now)
        {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(e)) => Err(match e {
                CertificateError::UnknownIssuer => CertificateProblem::UnknownCa,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    CertificateProblem::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    CertificateProblem::NotYetValid
                }
                other => CertificateProblem::Invalid(format!("{other:?}")),
            }),
            Err(other) => Err(CertificateProblem::Invalid(other.to_string())),
        }
    }

    /// The server's TLS configuration: its certificate chain and key from
    /// PEM files, asking every client for a certificate from these CAs.
    pub fn server_config(&self, cert_file: &Path, key_file: &Path) -> anyhow::Result<ServerConfig> {
        let chain = read_certificates(cert_file)?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .with_context(|| format!("cannot read a private key from {}", key_file.display()))?;
        let verifier = Arc::new(ProofOfPossession(self.current.load().verifier.clone()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("cannot choose TLS versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .with_context(|| {
                format!(
                    "the server certificate {} and key {} do not make a usable pair",
                    cert_file.display(),
                    key_file.display()
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// The files of the server's TLS configuration.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server certificate's private key (PEM).
    pub key: PathBuf,
    /// The CAs of client certificates (PEM bundle).
    pub client_cas: PathBuf,
}

/// The server's TLS configuration as it is now. Each connection's
/// handshake uses the configuration of the moment it was accepted, and the
/// connection keeps it: a reload changes what new connections see, while
/// established connections and the calls on them go on undisturbed. The
/// client CAs a call's certificate is checked against are the current ones.
#[derive(Clone)]
pub struct LiveTls {
    files: TlsFiles,
    cas: ClientCas,
    server: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl LiveTls {
    /// Reads the configuration from `files`.
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let cas = ClientCas::load(&files.client_cas)?;
        let server = cas.server_config(&files.cert, &files.key)?;
        Ok(Self {
            files,
            cas,
            server: Arc::new(ArcSwap::from_pointee(server)),
        })
    }

    /// The client CAs, shared: they follow reloads.
    pub fn client_cas(&self) -> &ClientCas {
        &self.cas
    }

    /// Reads the files again and, only if all of them make a usable
    /// configuration, makes it the one new connections and calls use.
    /// On failure nothing changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        let cas = ClientCas::load(&self.files.client_cas)?;
        let server = cas.server_config(&self.files.cert, &self.files.key)?;
        self.cas.adopt(&cas);
        self.server.store(Arc::new(server));
        Ok(())
    }

    /// An acceptor with the configuration as it is now.
    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server.load_full())
    }
}

/// The handshake's client-certificate check: the client must prove it holds
/// the key of any certificate it presents; the chain itself is checked per
/// call (see the module documentation).
#[derive(Debug)]
struct ProofOfPossession(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for ProofOfPossession {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What identifies a client certificate to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Examined {
    pub fingerprint: Fingerprint,
    /// Its fingerprint, SPKI pin and subject alternative names (DNS names
    /// and URIs), each as the registry would hold it.
    pub matchers: Vec<CertificateMatch>,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// The end of its validity period.
    pub not_after: DateTime<Utc>,
}

/// Reads what identifies `leaf`.
pub fn examine(leaf: &CertificateDer<'_>) -> Result<Examined, CertificateProblem> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let fingerprint = Fingerprint::of(leaf);
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| CertificateProblem::Invalid(format!("cannot be parsed: {e}")))?;
    let spki = Fingerprint::of(cert.tbs_certificate.subject_pki.raw);
    let mut matchers = vec![
        CertificateMatch::CertificateSha256(fingerprint.0),
        CertificateMatch::SpkiSha256(spki.0),
    ];
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| CertificateProblem::Invalid(format!("bad subject alternative names: {e}")))?;
    for name in sans.iter().flat_map(|s| s.value.general_names.iter()) {
        let text = match name {
            GeneralName::DNSName(n) | GeneralName::URI(n) => *n,
            _ => continue,
        };
        if let Ok(m) = CertificateMatch::subject_alt_name(text) {
            matchers.push(m);
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .ok_or_else(|| CertificateProblem::Invalid("validity out of range".to_owned()))?;
    Ok(Examined {
        fingerprint,
        matchers,
        common_name,
        not_after,
    })
}

/// Accepts TCP connections on `listener` and completes their TLS
/// handshakes (each with a time limit, none holding up another, each with
/// the TLS configuration as it is when the connection is accepted), yielding
/// the established connections. A connection over `peers`' limits (too
/// many from its address, or too many handshakes in progress) is closed at
/// once. Stops when the receiver is dropped.
pub fn incoming(
    listener: TcpListener,
    tls: LiveTls,
    peers: Peers,
) -> ReceiverStream<std::io::Result<Admitted<TlsStream<TcpStream>>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. out of file descriptors: back off rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Some(slot) = peers.admit(peer.ip()) else {
                tracing::debug!(%peer, "too many connections from this address; closed");
                continue;
            };
            let Some(handshaking) = peers.handshake() else {
                tracing::debug!(%peer, "too many TLS handshakes in progress; closed");
                continue;
            };
            // Small gRPC frames must leave at once (see `App`).
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
            }
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                drop(handshaking);
                match handshake {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(Admitted::new(tls, slot))).await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
