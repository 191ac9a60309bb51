//! How the read side's long-running tasks (projector, ingester, live updates) wait before trying a
//! lost connection again: exponential from 100 ms to 5 s, with jitter, for as long as it takes.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// The reconnect policy, as a builder for `backon`'s `retry`.
pub fn reconnect() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
}

/// The same policy as an endless sequence of delays, for loops that keep state between tries.
pub fn reconnect_delays() -> ExponentialBackoff {
    reconnect().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_never_end() {
        let delays: Vec<Duration> = reconnect_delays().take(20).collect();
        assert_eq!(delays.len(), 20);
        assert!(delays[0] < Duration::from_millis(201));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
        assert!(delays[19] >= Duration::from_secs(5));
    }
}
