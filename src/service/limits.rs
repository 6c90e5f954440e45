//! Rate limits: each agency's calls (all its systems and staff together)
//! and each client certificate's, as token buckets (`governor`). An
//! agency's limit is its own, set in the registry by the operator, or the
//! configured default; it is read again at most every
//! [`LIMIT_REFRESH`], so a change reaches every process within that. The
//! operator's own calls are not limited. A call over a limit is refused
//! (RESOURCE_EXHAUSTED, with when to try again) and audited like any
//! refusal.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Call, ServiceError, Services};
use crate::domain::agency::RateLimit;
use crate::domain::{AgencyCode, Role};

/// How long an agency's limit, as read from the registry, is used before
/// it is read again.
pub const LIMIT_REFRESH: Duration = Duration::from_secs(30);

/// Which limit a call is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Agency,
    Certificate,
}

impl LimitScope {
    pub fn code(self) -> &'static str {
        match self {
            Self::Agency => "agency",
            Self::Certificate => "client_certificate",
        }
    }
}

/// The quota of `limit`; `None`: no limit.
fn quota(limit: RateLimit) -> Option<Quota> {
    let per_second = NonZeroU32::new(limit.per_second)?;
    let burst = NonZeroU32::new(limit.burst.max(limit.per_second)).unwrap_or(per_second);
    Some(Quota::per_second(per_second).allow_burst(burst))
}

/// An agency's bucket, and when its limit was read.
struct Bucket {
    limit: RateLimit,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    read_at: Instant,
}

/// The buckets of one process.
pub struct RateLimits {
    default: RateLimit,
    agencies: Mutex<HashMap<AgencyCode, Bucket>>,
    certificates: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(RateLimit::NONE, RateLimit::NONE)
    }
}

impl RateLimits {
    /// Agencies limited to `default` unless the registry says otherwise;
    /// each client certificate to `certificate`.
    pub fn new(default: RateLimit, certificate: RateLimit) -> Self {
        Self {
            default,
            agencies: Mutex::new(HashMap::new()),
            certificates: quota(certificate).map(RateLimiter::keyed),
        }
    }

    /// Forgets what was read of `agency`'s limit (it was just changed).
    pub fn forget(&self, agency: &AgencyCode) {
        self.buckets().remove(agency);
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<AgencyCode, Bucket>> {
        self.agencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The limiter of `agency`, if its limit was read recently enough.
    fn held(&self, agency: &AgencyCode) -> Option<Option<Arc<DefaultDirectRateLimiter>>> {
        self.buckets()
            .get(agency)
            .filter(|b| b.read_at.elapsed() < LIMIT_REFRESH)
            .map(|b| b.limiter.clone())
    }

    /// Keeps `limit` for `agency`, with its bucket (kept as it was if the
    /// limit did not change).
    fn hold(&self, agency: &AgencyCode, limit: RateLimit) -> Option<Arc<DefaultDirectRateLimiter>> {
        let mut buckets = self.buckets();
        let bucket = buckets.entry(agency.clone()).or_insert_with(|| Bucket {
            limit,
            limiter: quota(limit).map(|q| Arc::new(RateLimiter::direct(q))),
            read_at: Instant::now(),
        });
        if bucket.limit != limit {
            bucket.limit = limit;
            bucket.limiter = quota(limit).map(|q| Arc::new(RateLimiter::direct(q)));
        }
        bucket.read_at = Instant::now();
        bucket.limiter.clone()
    }
}

/// How long until a refused call may be tried again, at least a
/// millisecond.
fn wait_from(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    not_until
        .wait_time_from(DefaultClock::default().now())
        .max(Duration::from_millis(1))
}

impl Services {
    /// Refuses `call` if its agency or its client certificate is over its
    /// rate limit; takes one call from each bucket otherwise.
    pub(super) async fn check_rate(&self, call: &Call) -> Result<(), ServiceError> {
        if Role::OPERATOR_ONLY.iter().any(|r| call.caller.has_role(r)) {
            return Ok(());
        }
        let agency = &call.caller.agency;
        let limiter = match self.limits.held(agency) {
            Some(limiter) => limiter,
            None => {
                let limit = self
                    .store
                    .agency(agency)
                    .await?
                    .and_then(|a| a.rate_limit)
                    .unwrap_or(self.limits.default);
                self.limits.hold(agency, limit)
            }
        };
        let over = |scope: LimitScope, retry_after: Duration| {
            crate::monitor::rate_limited(agency.as_str(), scope.code());
            ServiceError::RateLimited { scope, retry_after }
        };
        if let Some(limiter) = limiter
            && let Err(not_until) = limiter.check()
        {
            return Err(over(LimitScope::Agency, wait_from(&not_until)));
        }
        if let (Some(certificates), Some(fingerprint)) =
            (&self.limits.certificates, call.caller.client_certificate)
            && let Err(not_until) = certificates.check_key(&fingerprint.to_string())
        {
            return Err(over(LimitScope::Certificate, wait_from(&not_until)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_calls_a_second_is_no_limit() {
        assert!(quota(RateLimit::NONE).is_none());
        assert!(
            quota(RateLimit {
                per_second: 5,
                burst: 10
            })
            .is_some()
        );
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let limits = RateLimits::new(
            RateLimit {
                per_second: 1,
                burst: 3,
            },
            RateLimit::NONE,
        );
        let code = AgencyCode::parse("leeds-cc").unwrap();
        let limiter = limits.hold(&code, limits.default).unwrap();
        for _ in 0..3 {
            assert!(limiter.check().is_ok());
        }
        let refused = limiter.check().unwrap_err();
        assert!(wait_from(&refused) <= Duration::from_secs(1));
        // Holding the same limit again keeps the bucket as it is.
        let same = limits.hold(&code, limits.default).unwrap();
        assert!(same.check().is_err());
        // A new limit is a new bucket.
        let raised = limits
            .hold(
                &code,
                RateLimit {
                    per_second: 100,
                    burst: 100,
                },
            )
            .unwrap();
        assert!(raised.check().is_ok());
    }

    #[test]
    fn each_client_certificate_has_its_own_bucket() {
        let limits = RateLimits::new(
            RateLimit::NONE,
            RateLimit {
                per_second: 1,
                burst: 2,
            },
        );
        let certificates = limits.certificates.as_ref().unwrap();
        let (a, b) = ("aa".to_owned(), "bb".to_owned());
        assert!(certificates.check_key(&a).is_ok());
        assert!(certificates.check_key(&a).is_ok());
        assert!(certificates.check_key(&a).is_err());
        assert!(
            certificates.check_key(&b).is_ok(),
            "another certificate is not held up"
        );
    }
}
