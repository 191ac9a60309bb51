//! Limits every request meets before a handler runs: rate limits per client and per customer,
//! a body size cap and a time cap on every route (REST and GraphQL alike).
//!
//! Policy:
//! - Rate limits are token buckets (GCRA, `governor`): one per client address and one per
//!   customer (the verified token's subject, so one customer cannot spread over many addresses).
//!   Over either: 429 with `Retry-After`. Health checks and metrics are never limited, nor is the
//!   payment webhook: the provider sends every outcome of a sale from few addresses, each call is
//!   authenticated by its signature before anything else (a forgery costs one HMAC), and a 429
//!   would only delay money news by the provider's retry backoff. The limits
//!   are configurable, and off only when configured off (benchmarks, where one machine is every
//!   client).
//! - Idle buckets are forgotten every minute, so memory follows the clients active in the last
//!   minute, not every client ever seen.
//! - Bodies over the limit: 413. Requests running past the time limit: 503 with `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use booking::Identity;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// Requests per second and burst for one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The rate limits; `None` in the config turns them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_client: Rate,
    pub per_customer: Rate,
}

impl Default for RateLimits {
    /// A browser needs a few requests a second; a flash-sale buyer a handful per minute. Bursts
    /// cover a page load. Many buyers behind one NAT share the per-client bucket, hence its size.
    fn default() -> Self {
        Self {
            per_client: Rate {
                per_second: 50,
                burst: 100,
            },
            per_customer: Rate {
                per_second: 5,
                burst: 20,
            },
        }
    }
}

fn quota(rate: Rate) -> Quota {
    let per_second = NonZeroU32::new(rate.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

/// The limiters of one server.
pub struct Limiters {
    clients: DefaultKeyedRateLimiter<IpAddr>,
    customers: DefaultKeyedRateLimiter<String>,
}

impl Limiters {
    pub fn new(limits: RateLimits) -> Arc<Self> {
        Arc::new(Self {
            clients: RateLimiter::keyed(quota(limits.per_client)),
            customers: RateLimiter::keyed(quota(limits.per_customer)),
        })
    }

    /// Forgets idle buckets every minute, for as long as the limiters live.
    pub fn spawn_cleanup(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(limiters) = weak.upgrade() else {
                    return;
                };
                limiters.clients.retain_recent();
                limiters.clients.shrink_to_fit();
                limiters.customers.retain_recent();
                limiters.customers.shrink_to_fit();
            }
        })
    }
}

/// The client's address as the server saw the connection.
pub fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

fn limited(wait: Duration, whose: &str) -> Response {
    let seconds = u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from this {whose}; retry after {seconds} s"),
    );
    error.retry_after_seconds = Some(seconds);
    error.into_response()
}

/// The rate-limit middleware (see the module's policy); it runs after
/// [`super::auth::identify`], whose verified caller keys the per-customer bucket.
/// (Off, `SEATGRID_RATE_LIMITS=off`, the layer is left out.)
pub async fn rate_limit(
    State(limiters): State<Arc<Limiters>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path.starts_with("/health/") || path == "/metrics" || path == "/api/payments/webhook" {
        return next.run(request).await;
    }
    let clock = DefaultClock::default();
    if let Err(not_until) = limiters.clients.check_key(&client_ip(&request)) {
        return limited(not_until.wait_time_from(clock.now()), "client");
    }
    if let Some(Identity::Caller(caller)) = request.extensions().get::<Identity>() {
        if let Err(not_until) = limiters.customers.check_key(&caller.customer.to_string()) {
            return limited(not_until.wait_time_from(clock.now()), "customer");
        }
    }
    next.run(request).await
}

/// Requests that take longer than the time limit are answered 503 with `Retry-After`.
pub fn timed_out(limit: Duration) -> Response {
    let mut error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "request_timeout",
        format!(
            "the request took longer than {} s; it may still complete, retry with the same \
             Idempotency-Key",
            limit.as_secs()
        ),
    );
    error.retry_after_seconds = Some(1);
    error.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_burst_then_the_next_request_waits_and_other_keys_do_not() {
        let limiter: DefaultKeyedRateLimiter<IpAddr> = RateLimiter::keyed(quota(Rate {
            per_second: 1,
            burst: 2,
        }));
        let a: IpAddr = [10, 0, 0, 1].into();
        assert!(limiter.check_key(&a).is_ok());
        assert!(limiter.check_key(&a).is_ok());
        assert!(limiter.check_key(&a).is_err());
        assert!(limiter.check_key(&[10, 0, 0, 2].into()).is_ok());
    }
}
