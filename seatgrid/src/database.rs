//! Policy: the server writes, so it talks to the one PostgreSQL that accepts writes. `DATABASE_URL`
//! may name several hosts the way libpq does (`postgres://u@db1:5432,db2:5432/seatgrid?target_session_attrs=read-write`,
//! as for a Patroni pair): the server connects to the one that is not in recovery, and a follower
//! task checks it every [`CHECK_EVERY`]. When the primary is lost (killed, or demoted by Patroni),
//! statements in flight fail and are answered 503 with `Retry-After`; the follower finds the
//! promoted host, points every pool of the process at it, and connections opened before the switch
//! are dropped instead of reused. One host (the usual case) is used as given, with no follower.
//!
//! sqlx 0.8 takes one host per pool, hence this module rather than a connection-string option.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgPool};

/// How often the follower checks that the pools still point at the primary.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one host may take to answer the check.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `DATABASE_URL` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("DATABASE_URL is not a PostgreSQL URL ({0})")]
    NotPostgres(String),
    #[error("DATABASE_URL asks for target_session_attrs={0}; the server writes, so only read-write (or primary) is possible")]
    SessionAttrs(String),
}

/// One host of `DATABASE_URL`: its single-host URL (a secret: it may carry a password) and options.
#[derive(Clone)]
pub struct Host {
    pub url: String,
    pub options: PgConnectOptions,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.options.get_host(), self.options.get_port())
    }
}

/// The hosts of a libpq-style URL, in the order given (`target_session_attrs` removed).
pub fn hosts(url: &str) -> Result<Vec<Host>, UrlError> {
    let bad = |why: &str| UrlError::NotPostgres(why.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, host_list) = match authority.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), authority),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("target_session_attrs", "read-write" | "primary")) => {}
            Some(("target_session_attrs", v)) => return Err(UrlError::SessionAttrs(v.into())),
            _ => params.push(pair),
        }
    }
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    host_list
        .split(',')
        .map(|host| {
            let url = format!("{scheme}://{user}{host}{path}{query}");
            let options = url
                .parse::<PgConnectOptions>()
                .map_err(|e| bad(&e.to_string()))?;
            Ok(Host { url, options })
        })
        .collect()
}

/// Is `options`' server the primary? `None` if it cannot be reached in time. A database not
/// created yet is asked through the `postgres` database.
pub async fn is_primary(options: &PgConnectOptions) -> Option<bool> {
    let probe = async {
        let mut connection = match options.connect().await {
            Ok(connection) => connection,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
                options.clone().database("postgres").connect().await.ok()?
            }
            Err(_) => return None,
        };
        let in_recovery = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&mut connection)
            .await
            .ok()?;
        connection.close().await.ok();
        Some(!in_recovery)
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
}

/// The first host that accepts writes; with one host, that host unasked.
pub async fn find_primary(hosts: &[Host]) -> Option<&Host> {
    if let [only] = hosts {
        return Some(only);
    }
    for host in hosts {
        if is_primary(&host.options).await == Some(true) {
            return Some(host);
        }
    }
    None
}

/// When the pools last changed host, so that older connections are not handed out again.
#[derive(Debug, Clone)]
pub struct Switches {
    start: Instant,
    /// Milliseconds from `start` to the last switch; 0 before any.
    last_ms: Arc<AtomicU64>,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Switches {
    fn record(&self) {
        let ms = self.start.elapsed().as_millis().max(1) as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Was a connection of this age opened before the last switch?
    pub fn predates_switch(&self, age: Duration) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        last != 0
            && age
                > self
                    .start
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last))
    }

    /// Pool options that drop connections opened before the last switch (a check in memory, no
    /// round trip).
    pub fn pool_options(&self) -> PgPoolOptions {
        let switches = self.clone();
        PgPoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(move |_, meta| {
                let fresh = !switches.predates_switch(meta.age);
                Box::pin(async move { Ok(fresh) })
            })
    }
}

/// The server's PostgreSQL: its pool, and what [`Database::follower`] needs to keep it (and any
/// pool made with [`PgPool::options`] of it) on the primary.
pub struct Database {
    pub pool: PgPool,
    hosts: Vec<Host>,
    switches: Switches,
    statement_timeout: String,
}

/// Limits of the server's pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

impl Database {
    /// Finds the primary among `url`'s hosts (waiting up to `wait` for one) and opens the pool.
    pub async fn connect(url: &str, limits: PoolLimits, wait: Duration) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let hosts = hosts(url)?;
        let deadline = Instant::now() + wait;
        let primary = loop {
            if let Some(primary) = find_primary(&hosts).await {
                break primary.clone();
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "none of DATABASE_URL's hosts ({hosts:?}) accepts writes"
            );
            tokio::time::sleep(CHECK_EVERY).await;
        };
        migrations::ensure_database(&primary.url)
            .await
            .context("cannot reach PostgreSQL at DATABASE_URL")?;
        let switches = Switches::default();
        let statement_timeout = format!("{}ms", limits.statement_timeout.as_millis());
        let pool = switches
            .pool_options()
            .max_connections(limits.max_connections)
            .acquire_timeout(limits.acquire_timeout)
            .connect_with(with_timeout(primary.options.clone(), &statement_timeout))
            .await
            .context("cannot connect to PostgreSQL at DATABASE_URL")?;
        Ok(Self {
            pool,
            hosts,
            switches,
            statement_timeout,
        })
    }

    /// A follower for `pools` (the first is the one checked), to be spawned; it returns at once
    /// when `DATABASE_URL` names a single host.
    pub fn follower(&self, pools: Vec<PgPool>) -> impl std::future::Future<Output = ()> + Send {
        let (hosts, switches, timeout) = (
            self.hosts.clone(),
            self.switches.clone(),
            self.statement_timeout.clone(),
        );
        follow_primary(hosts, pools, switches, move |o| with_timeout(o, &timeout))
    }
}

fn with_timeout(options: PgConnectOptions, statement_timeout: &str) -> PgConnectOptions {
    options.options([("statement_timeout", statement_timeout)])
}

/// Keeps `pools` on the primary among `hosts` (each with `extra` options applied, as the pools
/// were built). Returns at once when there is a single host.
async fn follow_primary(
    hosts: Vec<Host>,
    pools: Vec<PgPool>,
    switches: Switches,
    extra: impl Fn(PgConnectOptions) -> PgConnectOptions,
) {
    let (Some(main), true) = (pools.first(), hosts.len() > 1) else {
        return;
    };
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let current = main.connect_options();
        if is_primary(&current).await == Some(true) {
            continue;
        }
        let Some(primary) = find_primary(&hosts).await else {
            tracing::warn!(hosts = ?hosts, "no PostgreSQL host accepts writes yet");
            metrics::gauge!("seatgrid_database_primary_found").set(0.0);
            continue;
        };
        let same = primary.options.get_host() == current.get_host()
            && primary.options.get_port() == current.get_port();
        metrics::gauge!("seatgrid_database_primary_found").set(1.0);
        if same {
            continue;
        }
        tracing::warn!(primary = ?primary, "PostgreSQL primary moved; switching the pools");
        metrics::counter!("seatgrid_database_primary_switches_total").increment(1);
        let options = extra(primary.options.clone());
        for pool in &pools {
            pool.set_connect_options(options.clone());
        }
        switches.record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libpq_multi_host_url_gives_one_url_per_host() {
        let hosts = hosts(
            "postgres://app:s3cret@db1:5441,db2:5442/seatgrid?target_session_attrs=read-write&sslmode=disable",
        )
        .unwrap();
        let urls: Vec<_> = hosts.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "postgres://app:s3cret@db1:5441/seatgrid?sslmode=disable",
                "postgres://app:s3cret@db2:5442/seatgrid?sslmode=disable"
            ]
        );
        assert_eq!(hosts[1].options.get_port(), 5442);
        assert_eq!(hosts[1].options.get_database(), Some("seatgrid"));
        // The password never prints.
        assert_eq!(format!("{hosts:?}"), "[db1:5441, db2:5442]");
    }

    #[test]
    fn a_single_host_url_is_kept_as_given() {
        let hosts = hosts("postgres://postgres@127.0.0.1:5432/seatgrid").unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].url, "postgres://postgres@127.0.0.1:5432/seatgrid");
    }

    #[test]
    fn read_only_session_attrs_are_refused() {
        assert!(matches!(
            hosts("postgres://a,b/x?target_session_attrs=standby"),
            Err(UrlError::SessionAttrs(v)) if v == "standby"
        ));
        assert!(matches!(hosts("db1,db2"), Err(UrlError::NotPostgres(_))));
    }

    #[test]
    fn connections_older_than_the_last_switch_are_dropped() {
        let switches = Switches::default();
        assert!(!switches.predates_switch(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(20));
        switches.record();
        assert!(switches.predates_switch(Duration::from_secs(1)));
        assert!(!switches.predates_switch(Duration::ZERO));
    }
}
