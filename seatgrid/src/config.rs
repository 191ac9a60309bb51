//! Typed configuration, read from the environment in this one place, by one library (`envy`).
//!
//! Connection settings (`DATABASE_URL`, `REDIS_URL`, `CLICKHOUSE_*`, `LOG_FORMAT`), the token
//! keys (`AUTH_*`, see [`crate::auth`]) plus `SEATGRID_*` variables, each with a default that
//! works on a developer machine (except the token key, which `scripts/up` sets). Every value that
//! may hold a password is a [`SecretString`], so `Debug` never prints it. `RUST_LOG` filters logs
//! and `LOG_FORMAT=json` switches them to JSON lines.

use std::net::SocketAddr;
use std::time::Duration;

use booking::RetryPolicy;
use command_api::http::limits::{Rate, RateLimits};
use command_api::CommandApiConfig;
use domain::EventPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

#[derive(Debug)]
pub struct Settings {
    /// `DATABASE_URL`.
    pub database_url: SecretString,
    /// `REDIS_URL`: the read-model cache and live-update channels.
    pub redis_url: SecretString,
    /// `CLICKHOUSE_*`: analytics; `CLICKHOUSE_URL=off` runs without them.
    pub clickhouse: Option<analytics::ClickHouseConfig>,
    /// `AUTH_*`: where tokens are verified from.
    pub auth: crate::auth::AuthSettings,
    /// `PAYMENTS_WEBHOOK_SECRET`, if payments are configured.
    pub payments_webhook_secret: Option<std::sync::Arc<SecretString>>,
    /// `PAYMENTS_PROVIDER_URL`, if payments are configured.
    pub payments_provider_url: Option<String>,
    pub app: AppSettings,
}

/// The variables without a prefix: where the services are.
#[derive(Debug, Deserialize)]
struct Connections {
    #[serde(default = "defaults::database_url")]
    database_url: SecretString,
    #[serde(default = "defaults::redis_url")]
    redis_url: SecretString,
    #[serde(default = "defaults::clickhouse_url")]
    clickhouse_url: String,
    #[serde(default = "defaults::clickhouse_database")]
    clickhouse_database: String,
    #[serde(default = "defaults::clickhouse_user")]
    clickhouse_user: String,
    #[serde(default = "defaults::empty_secret")]
    clickhouse_password: SecretString,
    #[serde(default = "defaults::clickhouse_reader")]
    clickhouse_reader_user: String,
    #[serde(default = "defaults::clickhouse_reader_password")]
    clickhouse_reader_password: SecretString,
    /// `CLICKHOUSE_CLUSTER` and `CLICKHOUSE_SHARD_DATABASES` (comma-separated): the sharded
    /// layout (`analytics::Sharding`); unset, one server.
    clickhouse_cluster: Option<String>,
    clickhouse_shard_databases: Option<String>,
    log_format: Option<String>,
    /// `PAYMENTS_WEBHOOK_SECRET`: payment notifications are signed with it; unset, none are taken.
    payments_webhook_secret: Option<SecretString>,
    /// `PAYMENTS_PROVIDER_URL`: where placed orders' payments are asked; unset, none are.
    payments_provider_url: Option<String>,
}

/// `SEATGRID_*` variables, named here without the prefix.
#[derive(Debug, Clone, Deserialize)]
pub struct AppSettings {
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    #[serde(default = "defaults::db_max_connections")]
    pub db_max_connections: u32,
    #[serde(default = "defaults::hold_seconds")]
    pub hold_seconds_default: u32,
    #[serde(default = "defaults::hold_seconds_max")]
    pub hold_seconds_max: u32,
    #[serde(default = "defaults::seats_per_customer")]
    pub seats_per_customer_default: u32,
    #[serde(default = "defaults::seats_per_customer_max")]
    pub seats_per_customer_max: u32,
    #[serde(default = "defaults::command_attempts")]
    pub command_attempts: u32,
    /// How long a buyer has to pay for an order.
    #[serde(default = "defaults::payment_window_seconds")]
    pub payment_window_seconds: u32,
    /// 0 turns the expiry sweeper off.
    #[serde(default = "defaults::sweep_seconds")]
    pub sweep_seconds: u64,
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// A request running longer is answered 503.
    #[serde(default = "defaults::request_timeout_seconds")]
    pub request_timeout_seconds: u64,
    /// How long a request waits for a database connection before a 503 with `Retry-After`.
    #[serde(default = "defaults::db_acquire_timeout_ms")]
    pub db_acquire_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` on every connection of the pool.
    #[serde(default = "defaults::db_statement_timeout_ms")]
    pub db_statement_timeout_ms: u64,
    /// `off` turns rate limiting off (benchmarks only); anything else leaves it on.
    #[serde(default = "defaults::on")]
    pub rate_limits: String,
    #[serde(default = "defaults::client_per_second")]
    pub rate_limit_client_per_second: u32,
    #[serde(default = "defaults::client_burst")]
    pub rate_limit_client_burst: u32,
    #[serde(default = "defaults::customer_per_second")]
    pub rate_limit_customer_per_second: u32,
    #[serde(default = "defaults::customer_burst")]
    pub rate_limit_customer_burst: u32,
    /// `on` lets `POST /api/dev/token` mint tokens for any name (development machines only; needs
    /// AUTH_HS256_SECRET). Anything else leaves it off.
    #[serde(default = "defaults::off")]
    pub dev_login: String,
    /// What `seatgrid serve` runs: `all`, or some of api, projector, ingester, sweeper, payments
    /// (`crate::roles`); `serve --roles` overrides it.
    #[serde(default)]
    pub roles: crate::roles::Roles,
    /// GraphQL WebSockets: live operations per connection, connections per client address.
    #[serde(default = "defaults::ws_max_subscriptions")]
    pub ws_max_subscriptions: usize,
    #[serde(default = "defaults::ws_max_per_client")]
    pub ws_max_per_client: usize,
    /// Prepended to every Redis key and channel, so installations can share one Redis.
    #[serde(default = "defaults::redis_prefix")]
    pub redis_prefix: String,
    #[serde(default)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

mod defaults {
    use std::net::SocketAddr;

    use secrecy::SecretString;

    pub fn database_url() -> SecretString {
        super::DEFAULT_DATABASE_URL.into()
    }
    pub fn redis_url() -> SecretString {
        super::DEFAULT_REDIS_URL.into()
    }
    pub fn clickhouse_url() -> String {
        super::DEFAULT_CLICKHOUSE_URL.into()
    }
    pub fn clickhouse_database() -> String {
        "seatgrid".into()
    }
    pub fn clickhouse_user() -> String {
        "default".into()
    }
    pub fn clickhouse_reader() -> String {
        "seatgrid_reader".into()
    }
    pub fn clickhouse_reader_password() -> SecretString {
        "seatgrid_reader".into()
    }
    pub fn empty_secret() -> SecretString {
        "".into()
    }
    pub fn listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5000))
    }
    /// Two connections per CPU core. PostgreSQL shares the machine's cores with the server, and
    /// more backends than it can run at once buy nothing: in the flash-sale benchmark on 2 cores
    /// (`scripts/bench-sweep SEATGRID_DB_MAX_CONNECTIONS 3 4 8 30`), 3-4 connections gave 10-13%
    /// more requests/s and a quarter lower hold p95 than 30 on one day, and the same as 30 within
    /// noise on another. Requests beyond the pool wait for a connection. At least 4: the
    /// projector's LISTEN keeps one for itself.
    pub fn db_max_connections() -> u32 {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        u32::try_from(2 * cores).unwrap_or(u32::MAX).max(4)
    }
    pub fn hold_seconds() -> u32 {
        600
    }
    pub fn hold_seconds_max() -> u32 {
        3600
    }
    pub fn payment_window_seconds() -> u32 {
        600
    }
    pub fn seats_per_customer() -> u32 {
        10
    }
    pub fn seats_per_customer_max() -> u32 {
        100
    }
    pub fn command_attempts() -> u32 {
        8
    }
    pub fn sweep_seconds() -> u64 {
        5
    }
    pub fn max_body_bytes() -> usize {
        64 * 1024
    }
    pub fn redis_prefix() -> String {
        "sg:".into()
    }
    pub fn request_timeout_seconds() -> u64 {
        30
    }
    /// Long enough that a flash sale queueing for the pool on 2 cores is served (hold p99 was
    /// 1.3-1.6 s at 2,000 users on the slowest host measured; 1 s shed 1-2% of requests as 503),
    /// short enough that an exhausted pool answers well before the old 5 s.
    pub fn db_acquire_timeout_ms() -> u64 {
        2_000
    }
    pub fn db_statement_timeout_ms() -> u64 {
        10_000
    }
    pub fn on() -> String {
        "on".into()
    }
    pub fn off() -> String {
        "off".into()
    }
    pub fn client_per_second() -> u32 {
        50
    }
    pub fn client_burst() -> u32 {
        100
    }
    pub fn customer_per_second() -> u32 {
        5
    }
    pub fn customer_burst() -> u32 {
        20
    }
    pub fn ws_max_subscriptions() -> usize {
        20
    }
    pub fn ws_max_per_client() -> usize {
        50
    }
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/seatgrid";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars().collect::<Vec<_>>())
    }

    /// Settings from the given variables (the environment's, or a test's).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)> + Clone,
    ) -> Result<Self, ConfigError> {
        let connections: Connections =
            envy::from_iter(vars.clone()).map_err(|e| ConfigError(e.to_string()))?;
        let mut app: AppSettings = envy::prefixed("SEATGRID_")
            .from_iter(vars.clone())
            .map_err(|e| ConfigError(format!("SEATGRID_{e}")))?;
        if let Some(format) = &connections.log_format {
            app.log_format = match format.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" | "" => LogFormat::Text,
                other => {
                    return Err(ConfigError(format!(
                        "LOG_FORMAT must be text or json, got {other:?}"
                    )))
                }
            };
        }
        let auth: crate::auth::AuthSettings = envy::prefixed("AUTH_")
            .from_iter(vars.clone())
            .map_err(|e| ConfigError(format!("AUTH_{e}")))?;
        let c = connections;
        let clickhouse = (c.clickhouse_url != "off").then(|| analytics::ClickHouseConfig {
            url: c.clickhouse_url,
            database: c.clickhouse_database,
            user: c.clickhouse_user,
            password: c.clickhouse_password,
            reader_user: c.clickhouse_reader_user,
            reader_password: c.clickhouse_reader_password,
            sharding: c.clickhouse_cluster.map(|cluster| analytics::Sharding {
                cluster,
                shard_databases: c
                    .clickhouse_shard_databases
                    .unwrap_or_default()
                    .split(',')
                    .map(|d| d.trim().to_owned())
                    .filter(|d| !d.is_empty())
                    .collect(),
            }),
        });
        let settings = Self {
            database_url: c.database_url,
            redis_url: c.redis_url,
            clickhouse,
            auth,
            payments_provider_url: c.payments_provider_url.filter(|u| !u.is_empty()),
            payments_webhook_secret: c
                .payments_webhook_secret
                .filter(|s| !s.expose_secret().is_empty())
                .map(std::sync::Arc::new),
            app,
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let a = &self.app;
        let problems: Vec<String> = [
            (a.db_max_connections == 0, "SEATGRID_DB_MAX_CONNECTIONS must be at least 1"),
            (a.hold_seconds_max < 10, "SEATGRID_HOLD_SECONDS_MAX must be at least 10"),
            (
                !(10..=a.hold_seconds_max).contains(&a.hold_seconds_default),
                "SEATGRID_HOLD_SECONDS_DEFAULT must be between 10 and SEATGRID_HOLD_SECONDS_MAX",
            ),
            (
                !(1..=a.seats_per_customer_max).contains(&a.seats_per_customer_default),
                "SEATGRID_SEATS_PER_CUSTOMER_DEFAULT must be between 1 and SEATGRID_SEATS_PER_CUSTOMER_MAX",
            ),
            (a.command_attempts == 0, "SEATGRID_COMMAND_ATTEMPTS must be at least 1"),
            (
                !(10..=a.hold_seconds_max).contains(&a.payment_window_seconds),
                "SEATGRID_PAYMENT_WINDOW_SECONDS must be between 10 and SEATGRID_HOLD_SECONDS_MAX",
            ),
            (a.max_body_bytes < 1024, "SEATGRID_MAX_BODY_BYTES must be at least 1024"),
            (a.request_timeout_seconds == 0, "SEATGRID_REQUEST_TIMEOUT_SECONDS must be at least 1"),
            (a.db_acquire_timeout_ms == 0, "SEATGRID_DB_ACQUIRE_TIMEOUT_MS must be at least 1"),
            (
                self.clickhouse
                    .as_ref()
                    .and_then(|c| c.sharding.as_ref())
                    .is_some_and(|s| s.shard_databases.is_empty()),
                "CLICKHOUSE_CLUSTER needs CLICKHOUSE_SHARD_DATABASES (its shards' databases)",
            ),
            (
                a.dev_login == "on" && self.auth.hs256_secret.is_none(),
                "SEATGRID_DEV_LOGIN=on needs AUTH_HS256_SECRET (tokens are minted with it)",
            ),
            (
                a.rate_limit_client_per_second == 0 || a.rate_limit_customer_per_second == 0,
                "SEATGRID_RATE_LIMIT_*_PER_SECOND must be at least 1 (SEATGRID_RATE_LIMITS=off turns them off)",
            ),
        ]
        .into_iter()
        .filter_map(|(bad, msg)| bad.then_some(msg.to_owned()))
        .chain(self.auth.problems())

        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems.join("; ")))
        }
    }

    pub fn system(&self) -> crate::system::SystemConfig {
        crate::system::SystemConfig {
            command: self.command_api(),
            ws: self.ws_limits(),
            redis_url: self.redis_url.expose_secret().to_owned(),
            redis_prefix: self.app.redis_prefix.clone(),
            runner: projections::RunnerConfig::default(),
            clickhouse: self.clickhouse.clone(),
            ingest: analytics::IngestConfig::default(),
            payment_provider_url: self.payments_provider_url.clone(),
            roles: self.app.roles,
            leadership: crate::leadership::LeaderConfig::default(),
        }
    }

    pub fn command_api(&self) -> CommandApiConfig {
        let a = &self.app;
        CommandApiConfig {
            listen_addr: a.listen,
            policy: EventPolicy {
                default_hold_seconds: a.hold_seconds_default,
                max_hold_seconds: a.hold_seconds_max,
                default_seats_per_customer: a.seats_per_customer_default,
                max_seats_per_customer: a.seats_per_customer_max,
                payment_window_seconds: a.payment_window_seconds,
                ..EventPolicy::default()
            },
            retry: RetryPolicy {
                max_attempts: a.command_attempts,
                ..RetryPolicy::default()
            },
            sweep_interval: (a.sweep_seconds > 0).then(|| Duration::from_secs(a.sweep_seconds)),
            max_body_bytes: a.max_body_bytes,
            request_timeout: Duration::from_secs(a.request_timeout_seconds),
            rate_limits: (a.rate_limits != "off").then_some(RateLimits {
                per_client: Rate {
                    per_second: a.rate_limit_client_per_second,
                    burst: a.rate_limit_client_burst,
                },
                per_customer: Rate {
                    per_second: a.rate_limit_customer_per_second,
                    burst: a.rate_limit_customer_burst,
                },
            }),
            payments_webhook_secret: self.payments_webhook_secret.clone(),
            dev_login: a.dev_login == "on",
            // The authenticator is built from `self.auth` when the server starts (JWKS fetch).
            ..CommandApiConfig::default()
        }
    }

    /// The GraphQL WebSocket limits.
    pub fn ws_limits(&self) -> query_api::WsLimits {
        query_api::WsLimits {
            max_subscriptions: self.app.ws_max_subscriptions,
            max_per_client: self.app.ws_max_per_client,
            ..query_api::WsLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_work_on_a_developer_machine() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!(s.app.listen.port(), 5000);
        assert_eq!(s.clickhouse.unwrap().database, "seatgrid");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_vars(vars(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("REDIS_URL", "redis://:hunter2@cache"),
            ("CLICKHOUSE_PASSWORD", "hunter2"),
            ("CLICKHOUSE_READER_PASSWORD", "hunter2"),
            ("AUTH_HS256_SECRET", "hunter2hunter2hunter2hunter2hunter2"),
            ("PAYMENTS_WEBHOOK_SECRET", "hunter2"),
        ]))
        .unwrap();
        assert!(s.payments_webhook_secret.is_some());
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(s.clickhouse.unwrap().password.expose_secret(), "hunter2");
    }

    #[test]
    fn every_problem_is_named() {
        let error = Settings::from_vars(vars(&[
            ("SEATGRID_DB_MAX_CONNECTIONS", "0"),
            ("SEATGRID_MAX_BODY_BYTES", "10"),
            ("AUTH_HS256_SECRET", "short"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(error.contains("SEATGRID_DB_MAX_CONNECTIONS"), "{error}");
        assert!(error.contains("SEATGRID_MAX_BODY_BYTES"), "{error}");
        assert!(error.contains("AUTH_HS256_SECRET"), "{error}");
        let bad = Settings::from_vars(vars(&[("SEATGRID_LISTEN", "nowhere")]));
        assert!(bad.is_err());
        assert!(Settings::from_vars(vars(&[("CLICKHOUSE_URL", "off")]))
            .unwrap()
            .clickhouse
            .is_none());
    }

    #[test]
    fn development_sign_in_is_off_by_default_and_needs_the_development_secret() {
        let secret = ("AUTH_HS256_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(
            !Settings::from_vars(vars(&[secret]))
                .unwrap()
                .command_api()
                .dev_login
        );
        let on = Settings::from_vars(vars(&[secret, ("SEATGRID_DEV_LOGIN", "on")])).unwrap();
        assert!(on.command_api().dev_login);
        let error = Settings::from_vars(vars(&[("SEATGRID_DEV_LOGIN", "on")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("SEATGRID_DEV_LOGIN"), "{error}");
    }

    #[test]
    fn roles_default_to_all_and_an_unknown_one_is_named() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.system().roles, crate::roles::Roles::ALL);
        let s = Settings::from_vars(vars(&[("SEATGRID_ROLES", "api,sweeper")])).unwrap();
        assert!(s.system().roles.api && !s.system().roles.projector);
        let error = Settings::from_vars(vars(&[("SEATGRID_ROLES", "api,cashier")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SEATGRID_ROLES") && error.contains("cashier"),
            "{error}"
        );
    }

    #[test]
    fn a_clickhouse_cluster_names_its_shard_databases() {
        let s = Settings::from_vars(vars(&[
            ("CLICKHOUSE_CLUSTER", "seatgrid_shards"),
            (
                "CLICKHOUSE_SHARD_DATABASES",
                "seatgrid_shard_1, seatgrid_shard_2",
            ),
        ]))
        .unwrap();
        let sharding = s.clickhouse.unwrap().sharding.unwrap();
        assert_eq!(sharding.cluster, "seatgrid_shards");
        assert_eq!(
            sharding.shard_databases,
            ["seatgrid_shard_1", "seatgrid_shard_2"]
        );
        let one = Settings::from_vars(vars(&[])).unwrap();
        assert!(one.clickhouse.unwrap().sharding.is_none());
        let error = Settings::from_vars(vars(&[("CLICKHOUSE_CLUSTER", "seatgrid_shards")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("CLICKHOUSE_SHARD_DATABASES"), "{error}");
    }
}
