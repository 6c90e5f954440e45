//! What establishing a caller costs in secure mode, per call: checking the
//! client certificate's chain, reading what identifies it, verifying an
//! ES256 staff token, and the whole of `MutualTls::authenticate` (those
//! plus the registry lookups in an SQLite database, on the registry version
//! held and on one read afresh), on a development
//! setup made by `accord dev init`.
//!
//! `cargo bench --bench identity`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use accord::auth::jwt::{TokenCheck, verify};
use accord::auth::tls::{ClientCas, examine, read_certificates};
use accord::auth::{Authenticator, Basis, Presented};
use accord::clock::SystemClock;
use accord::config::{Config, Overrides};
use accord::domain::AgencyCode;
use accord::domain::credential::{JwksSource, TokenIssuer, TokenIssuerId};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use tonic::metadata::MetadataMap;

fn identity(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    runtime
        .block_on(accord::dev::setup::init(&dev))
        .expect("a development setup");
    let config = Config::load(Some(&dev.join("accord.toml")), &Overrides::default()).unwrap();
    let store = runtime
        .block_on(accord::app::open_store(
            &config,
            accord::app::Setup::MustExist,
        ))
        .expect("the setup's database");
    let clock: accord::clock::SharedClock = Arc::new(SystemClock);
    let (_, _, authenticator) = accord::app::SecureMode::load(&config, &clock)
        .unwrap()
        .authenticator(&store, clock);
    let chain = read_certificates(&dev.join("leeds-cc.pem")).unwrap();
    let cas = ClientCas::load(&dev.join("ca.pem")).unwrap();
    let roles = ["social_worker".to_owned()];
    let token = accord::dev::setup::token(&dev, "leeds-cc", "sw-1", &roles, 60).unwrap();
    let jwks = std::fs::read_to_string(dev.join("leeds-cc-jwks.json")).unwrap();
    let issuer = TokenIssuer {
        id: TokenIssuerId::generate(),
        agency: AgencyCode::parse("leeds-cc").unwrap(),
        issuer: accord::dev::setup::issuer_of("leeds-cc"),
        jwks: JwksSource::Document(jwks.clone()),
        subject_claim: "sub".into(),
        roles_claim: "roles".into(),
        create_time: Utc::now(),
    };
    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());

    let mut group = c.benchmark_group("identity");
    group.bench_function("client_certificate_chain", |b| {
        b.iter(|| assert!(black_box(cas.check(black_box(&chain), Utc::now())).is_ok()));
    });
    group.bench_function("examine_certificate", |b| {
        b.iter(|| black_box(examine(&chain[0]).unwrap()));
    });
    group.bench_function("es256_token_with_jwks_parse", |b| {
        b.iter(|| {
            let keys = serde_json::from_str(&jwks).unwrap();
            let check = TokenCheck {
                audience: &config.token_audience,
                leeway_seconds: 60,
                now: Utc::now(),
            };
            black_box(verify(&token, &issuer, &keys, &check).unwrap())
        });
    });
    for (name, basis) in [
        ("authenticate_sqlite_held", Basis::Held),
        ("authenticate_sqlite_fresh", Basis::Fresh),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let presented = Presented {
                    metadata: &metadata,
                    peer_certificates: Some(&chain),
                };
                let authenticator = &authenticator;
                async move {
                    black_box(
                        authenticator
                            .authenticate(&presented, basis)
                            .await
                            .unwrap(),
                    )
                }
            });
        });
    }
    group.finish();
    runtime.block_on(store.close());
}

criterion_group!(benches, identity);
criterion_main!(benches);
