//! Read-side freshness under load: how long after a hold's 201 does the seat show `held` in the
//! GraphQL `seatMap` query and in a `seatUpdates` subscription?
//!
//! Run it through `scripts/bench-freshness`, which starts a release server and records the figures
//! in docs/BENCHMARKS.md. Arguments: `--url URL --rate HOLDS_PER_SECOND --seconds N`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    url: String,
    rate: u32,
    seconds: u32,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:5000".into(),
        rate: 300,
        seconds: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value,
            "--rate" => a.rate = value.parse().expect("--rate is a number"),
            "--seconds" => a.seconds = value.parse().expect("--seconds is a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 95.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    )
}

#[tokio::main]
async fn main() {
    let args = args();
    let client = reqwest::Client::new();
    // Tokens signed with the server's development secret (scripts/bench-freshness exports it).
    let secret = std::env::var("AUTH_HS256_SECRET").expect("AUTH_HS256_SECRET is set");
    let minter = Arc::new(booking::Authenticator::hs256(secret.as_bytes()).expect("a secret"));
    let hour = Duration::from_secs(3600);
    let bearer = {
        let minter = minter.clone();
        move |sub: &str, role| format!("Bearer {}", minter.mint(sub, role, hour).expect("mints"))
    };
    let organizer = bearer("bench-organizer", booking::Role::Organizer);
    let holds = (args.rate * args.seconds) as usize;
    let cols = 100;
    let rows = holds.div_ceil(cols).max(1);
    let created: Value = client
        .post(format!("{}/api/events", args.url))
        .header("authorization", &organizer)
        .json(&json!({"name": "Freshness bench", "rows": rows, "cols": cols, "price_cents": 1000}))
        .send()
        .await
        .expect("server reachable")
        .json()
        .await
        .unwrap();
    let event_id = created["id"].as_str().expect("event created").to_owned();
    // Subscriptions need the event on the read side first.
    for _ in 0..500 {
        let body: Value = client
            .post(format!("{}/graphql", args.url))
            .json(&json!({"query": "query($e: UUID!) { event(id: $e) { id } }", "variables": {"e": event_id}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if body["data"]["event"]["id"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The subscription: when did each seat's HELD arrive?
    let pushed: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let ws_url = format!("{}/graphql/ws", args.url.replacen("http", "ws", 1));
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    ws.next().await.expect("ack").unwrap();
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($e: UUID!) { seatUpdates(eventId: $e) { seatId status } }",
            "variables": {"e": event_id}}})
        .to_string(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed_in = pushed.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                let u = &v["payload"]["data"]["seatUpdates"];
                if u["status"] == "HELD" {
                    let seat = u["seatId"].as_u64().unwrap_or(u64::MAX);
                    pushed_in
                        .lock()
                        .unwrap()
                        .entry(seat)
                        .or_insert_with(Instant::now);
                }
            }
        }
    });

    // The load: one single-seat hold per tick at the requested rate, each by its own customer.
    // Every 10th hold also polls seatMap until its seat reads H.
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let mut ticker = tokio::time::interval(interval);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(holds);
    for seat in 0..holds as u64 {
        ticker.tick().await;
        let client = client.clone();
        let url = args.url.clone();
        let event_id = event_id.clone();
        let authorization = bearer(&format!("fan{seat}"), booking::Role::Buyer);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = client
                .post(format!("{url}/api/events/{event_id}/holds"))
                .header("authorization", authorization)
                .json(&json!({"seats": [seat]}))
                .send()
                .await;
            let acked = Instant::now();
            let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
            if status != 201 {
                return (seat, status, sent, acked, None);
            }
            let mut seen = None;
            if seat % 10 == 0 {
                let query = json!({
                    "query": "query($e: UUID!) { seatMap(eventId: $e) { seats } }",
                    "variables": {"e": event_id}});
                for _ in 0..2_000 {
                    let body: Value = match client
                        .post(format!("{url}/graphql"))
                        .json(&query)
                        .send()
                        .await
                    {
                        Ok(r) => r.json().await.unwrap_or_default(),
                        Err(_) => Value::Null,
                    };
                    let map = body["data"]["seatMap"]["seats"].as_str().unwrap_or("");
                    if map.as_bytes().get(seat as usize) == Some(&b'H') {
                        seen = Some(Instant::now());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            (seat, status, sent, acked, seen)
        }));
    }
    let mut hold_ms = Vec::new();
    let mut map_ms = Vec::new();
    let mut acks = HashMap::new();
    let mut failures: std::collections::BTreeMap<u16, u32> = Default::default();
    for t in tasks {
        let (seat, status, sent, acked, seen) = t.await.unwrap();
        if status != 201 {
            *failures.entry(status).or_default() += 1;
            continue;
        }
        hold_ms.push((acked - sent).as_secs_f64() * 1e3);
        acks.insert(seat, acked);
        if let Some(seen) = seen {
            map_ms.push(seen.saturating_duration_since(acked).as_secs_f64() * 1e3);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pushed = pushed.lock().unwrap();
    let sub_ms: Vec<f64> = acks
        .iter()
        .filter_map(|(seat, acked)| {
            pushed
                .get(seat)
                .map(|p| p.saturating_duration_since(*acked).as_secs_f64() * 1e3)
        })
        .collect();
    let missing = acks.len() - sub_ms.len();
    println!(
        "holds sent: {holds} in {elapsed:.1} s ({:.0}/s), 201s: {}, other answers (status: count): \
         {failures:?}, HELD never pushed: {missing}",
        holds as f64 / elapsed,
        acks.len()
    );
    println!("| measurement | samples | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!("{}", summary("hold request (send to 201)", hold_ms));
    println!("{}", summary("201 to HELD in seatMap query", map_ms));
    println!(
        "{}",
        summary("201 to HELD in seatUpdates subscription", sub_ms)
    );
}
