//! SeatGrid's REST adapter: the HTTP face of the application core (`booking`).
//!
//! - [`http`]: REST endpoints, problem+json errors, idempotency keys, OpenAPI.
//! - [`startup`]: `Application::build` and `run_until_stopped` (the server, with the core's expiry
//!   sweeper beside it).

pub mod http;
pub mod startup;

pub use startup::{Application, CommandApiConfig, StartupError};

/// The server settings tests start from: any free port, holds as short as 1 s, no sweeper (a test
/// that wants one sets `sweep_interval`).
#[cfg(feature = "testing")]
pub mod testing {
    use std::net::SocketAddr;

    use booking::RetryPolicy;
    use domain::EventPolicy;

    use crate::CommandApiConfig;

    pub fn config() -> CommandApiConfig {
        CommandApiConfig {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            policy: EventPolicy {
                min_hold_seconds: 1,
                ..EventPolicy::default()
            },
            retry: RetryPolicy::default(),
            sweep_interval: None,
            max_body_bytes: 64 * 1024,
        }
    }
}
