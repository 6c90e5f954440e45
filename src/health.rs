//! What the gRPC health service tells load balancers: SERVING only while
//! the database can serve audited calls (a probe, bounded in time, checks
//! it) and the server is not shutting down.

use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::pb::agency_service_server::AgencyServiceServer;
use crate::api::pb::agreement_service_server::AgreementServiceServer;
use crate::api::pb::audit_service_server::AuditServiceServer;
use crate::api::pb::catalog_service_server::CatalogServiceServer;
use crate::api::pb::consent_service_server::ConsentServiceServer;
use crate::api::pb::event_service_server::EventServiceServer;
use crate::api::pb::record_service_server::RecordServiceServer;
use crate::api::pb::subject_service_server::SubjectServiceServer;
use crate::api::{
    AgencyApi, AgreementApi, AuditApi, CatalogApi, ConsentApi, EventApi, RecordApi, SubjectApi,
};
use crate::monitor::http::Readiness;
use crate::store::SqlStore;

/// The names health is reported under: the server as a whole ("") and
/// each of Accord's services.
const NAMES: [&str; 9] = [
    "",
    AgencyServiceServer::<AgencyApi>::NAME,
    AgreementServiceServer::<AgreementApi>::NAME,
    AuditServiceServer::<AuditApi>::NAME,
    CatalogServiceServer::<CatalogApi>::NAME,
    ConsentServiceServer::<ConsentApi>::NAME,
    EventServiceServer::<EventApi>::NAME,
    RecordServiceServer::<RecordApi>::NAME,
    SubjectServiceServer::<SubjectApi>::NAME,
];

/// The health status of the server and its services, all alike.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    /// The same status, for the HTTP readiness probe.
    readiness: Readiness,
}

impl Health {
    /// Reports through `reporter` and `readiness`.
    pub fn new(reporter: HealthReporter, readiness: Readiness) -> Self {
        Self {
            reporter,
            readiness,
        }
    }

    /// Sets every service SERVING or NOT_SERVING.
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in NAMES {
            self.reporter.set_service_status(name, status).await;
        }
        self.readiness.set(serving);
    }

    /// Probes `store` every `interval`, each probe given at most `wait`,
    /// and reports what it finds (logging each change); runs until
    /// dropped.
    pub async fn follow_store(self, store: SqlStore, interval: Duration, wait: Duration) {
        let mut serving = true;
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let probed = match tokio::time::timeout(wait, store.probe()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(crate::telemetry::causes(&e)),
                Err(_) => Err(format!("the database did not answer within {wait:?}")),
            };
            match (&probed, serving) {
                (Err(cause), true) => tracing::error!(
                    error = cause,
                    "the database cannot serve audited calls; health is NOT_SERVING"
                ),
                (Ok(()), false) => {
                    tracing::info!("the database serves calls again; health is SERVING");
                }
                _ => {}
            }
            serving = probed.is_ok();
            self.set(serving).await;
        }
    }
}
