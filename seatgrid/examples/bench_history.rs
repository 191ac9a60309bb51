//! Does a seat block's command cost grow with its history? One client holds and releases one seat
//! of a 10-seat event over and over (one customer, one seat block), and compares hold latency
//! over the cycles right after the first few with the cycles after many.
//!
//! Run it through `scripts/bench-history`, which starts a release server and records the figures
//! in docs/BENCHMARKS.md. Arguments: `--url URL --cycles N --window N`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Args {
    url: String,
    cycles: usize,
    window: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:5000".into(),
        cycles: 10_000,
        window: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value,
            "--cycles" => a.cycles = value.parse().expect("--cycles is a number"),
            "--window" => a.window = value.parse().expect("--window is a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn row(name: &str, mut ms: Vec<f64>) -> (f64, String) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p99) = (percentile(&ms, 50.0), percentile(&ms, 99.0));
    (
        p99,
        format!("| {name} | {} | {p50:.2} | {p99:.2} |", ms.len()),
    )
}

#[tokio::main]
async fn main() {
    let args = args();
    let client = reqwest::Client::new();
    let secret = std::env::var("AUTH_HS256_SECRET").expect("AUTH_HS256_SECRET is set");
    let minter = booking::Authenticator::hs256(secret.as_bytes()).expect("a secret");
    let hour = Duration::from_secs(3600);
    let organizer = format!(
        "Bearer {}",
        minter
            .mint("bench-organizer", booking::Role::Organizer, hour)
            .unwrap()
    );
    let buyer = format!(
        "Bearer {}",
        minter
            .mint("bench-buyer", booking::Role::Buyer, hour)
            .unwrap()
    );
    let create = |name: &str| {
        client
            .post(format!("{}/api/events", args.url))
            .header("authorization", &organizer)
            .json(&json!({"name": name, "rows": 1, "cols": 10, "price_cents": 1000}))
            .send()
    };
    // The server warms up (connections, prepared statements, caches) on an event of its own, so
    // the comparison below is between histories only.
    let warm_up: Value = create("Warm-up")
        .await
        .expect("server reachable")
        .json()
        .await
        .unwrap();
    let warm_up = warm_up["id"].as_str().expect("event created").to_owned();
    let created: Value = create("History bench").await.unwrap().json().await.unwrap();
    let event_id = created["id"].as_str().expect("event created").to_owned();
    let early = 10..10 + args.window;
    let late = args.cycles..args.cycles + args.window;
    let (mut early_ms, mut late_ms) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let warm_up_cycles = 500;
    for n in 0..warm_up_cycles + late.end {
        let (event_id, cycle) = match n.checked_sub(warm_up_cycles) {
            Some(cycle) => (&event_id, cycle),
            None => (&warm_up, usize::MAX),
        };
        let t = Instant::now();
        let response = client
            .post(format!("{}/api/events/{event_id}/holds", args.url))
            .header("authorization", &buyer)
            .json(&json!({"seats": [n % 10]}))
            .send()
            .await
            .expect("server reachable");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(response.status(), 201, "cycle {n}: hold refused");
        let hold: Value = response.json().await.unwrap();
        if early.contains(&cycle) {
            early_ms.push(ms);
        } else if late.contains(&cycle) {
            late_ms.push(ms);
        }
        let released = client
            .delete(format!(
                "{}/api/holds/{}",
                args.url,
                hold["hold_id"].as_str().unwrap()
            ))
            .header("authorization", &buyer)
            .send()
            .await
            .expect("server reachable");
        assert!(released.status().is_success(), "cycle {n}: release refused");
    }
    let (early_p99, early_row) = row(&format!("after {} cycles", early.start), early_ms);
    let (late_p99, late_row) = row(&format!("after {} cycles", late.start), late_ms);
    println!(
        "One customer holds and releases one seat of a 10-seat event (one seat block) {} times, \
         one request at a time, after {warm_up_cycles} cycles on another event to warm the server \
         up ({:.0} s in all).\n",
        late.end,
        started.elapsed().as_secs_f64()
    );
    println!("| hold latency | holds | p50 ms | p99 ms |\n|---|---|---|---|");
    println!("{early_row}\n{late_row}");
    let ratio = late_p99 / early_p99;
    let verdict = if (ratio - 1.0).abs() <= 0.2 {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "\np99 after {} cycles / p99 after {}: {ratio:.2} (target: within 20 %, {verdict})",
        late.start, early.start
    );
}
