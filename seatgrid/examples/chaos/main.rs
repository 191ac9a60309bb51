//! The fault-injection suite's two programs, driven by `scripts/chaos`:
//! - `chaos load --url URL --out DIR --seconds N --buyers K --event-seconds S`: buyers against a
//!   server that the script kills, restarts and cuts off (see `load.rs`);
//! - `chaos audit --url URL --database-url DB --out DIR [--clickhouse-url URL
//!   --clickhouse-database NAME] [--sweep-slack-seconds N]`: checks what clients were told
//!   against the store, the read models, the API and ClickHouse (see `audit.rs`); exits 1 on any
//!   violation.

mod audit;
mod load;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

fn flags() -> (String, HashMap<String, String>) {
    let mut it = std::env::args().skip(1);
    let command = it.next().unwrap_or_default();
    let mut flags = HashMap::new();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        flags.insert(flag.trim_start_matches("--").to_owned(), value);
    }
    (command, flags)
}

#[tokio::main]
async fn main() {
    let (command, flags) = flags();
    let get = |k: &str| flags.get(k).cloned();
    let need = |k: &str| get(k).unwrap_or_else(|| panic!("--{k} is required"));
    let number = |k: &str, default: u64| get(k).map_or(default, |v| v.parse().expect("a number"));
    match command.as_str() {
        "load" => {
            load::run(load::LoadArgs {
                url: need("url"),
                out: PathBuf::from(need("out")),
                seconds: number("seconds", 60),
                buyers: number("buyers", 12) as usize,
                event_seconds: number("event-seconds", 20),
            })
            .await
        }
        "audit" => {
            let clean = audit::run(audit::AuditArgs {
                url: need("url"),
                database_url: need("database-url"),
                out: PathBuf::from(need("out")),
                clickhouse_url: get("clickhouse-url"),
                clickhouse_database: get("clickhouse-database").unwrap_or("seatgrid".into()),
                sweep_slack: Duration::from_secs(number("sweep-slack-seconds", 15)),
            })
            .await;
            std::process::exit(if clean { 0 } else { 1 });
        }
        other => {
            eprintln!("usage: chaos load|audit ... (got {other:?})");
            std::process::exit(2);
        }
    }
}
