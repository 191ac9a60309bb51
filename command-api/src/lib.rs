//! SeatGrid's REST adapter: the HTTP face of the application core (`booking`).
//!
//! - [`http`]: REST endpoints, problem+json errors, idempotency keys, OpenAPI.
//! - [`startup`]: `Application::build` and `run_until_stopped` (the server, with the core's expiry
//!   sweeper beside it).

pub mod http;
pub mod startup;

pub use startup::{Application, CommandApiConfig, StartupError};

/// The server settings tests start from: any free port, holds as short as 1 s, no sweeper (a test
/// that wants one sets `sweep_interval`), no rate limits (a test that wants them sets
/// `rate_limits`), and tokens signed with [`testing::SECRET`] ([`testing::token`] mints them).
#[cfg(feature = "testing")]
pub mod testing {
    use std::net::SocketAddr;
    use std::sync::{Arc, LazyLock};
    use std::time::Duration;

    use booking::{Authenticator, RetryPolicy, Role};
    use domain::EventPolicy;

    use crate::CommandApiConfig;

    /// The HS256 secret of test servers.
    pub const SECRET: &[u8] = b"seatgrid-test-secret-not-for-production-use";

    static AUTH: LazyLock<Arc<Authenticator>> =
        LazyLock::new(|| Arc::new(Authenticator::hs256(SECRET).expect("test secret")));

    /// The authenticator of test servers.
    pub fn auth() -> Arc<Authenticator> {
        AUTH.clone()
    }

    /// A token for `sub` with `role`, valid for an hour on test servers.
    pub fn token(sub: &str, role: Role) -> String {
        AUTH.mint(sub, role, Duration::from_secs(3600))
            .expect("the test secret mints")
    }

    /// `Bearer <token>` for `sub` with `role`.
    pub fn bearer(sub: &str, role: Role) -> String {
        format!("Bearer {}", token(sub, role))
    }

    pub fn config() -> CommandApiConfig {
        CommandApiConfig {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            policy: EventPolicy {
                min_hold_seconds: 1,
                ..EventPolicy::default()
            },
            retry: RetryPolicy::default(),
            sweep_interval: None,
            auth: auth(),
            rate_limits: None,
            ..CommandApiConfig::default()
        }
    }
}
