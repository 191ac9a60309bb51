//! The load driver: buyers hold, buy (an order paid through the provider), get complimentary
//! tickets, and release seats against a server that is being killed, restarted and cut off, retrying as a real client would (same idempotency key), and writing down
//! every answer they were given (an acknowledgement is a 2xx).
//!
//! A new event is created every `--event-seconds`, so the sale never simply sells out. Some
//! requests are cut by the client after a few milliseconds (the connection is dropped mid-request)
//! and then retried with the same key.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct LoadArgs {
    pub url: String,
    pub out: PathBuf,
    pub seconds: u64,
    pub buyers: usize,
    pub event_seconds: u64,
}

/// Where acknowledgements and events are written (one JSON object per line).
#[derive(Clone)]
struct Journal(Arc<Mutex<std::fs::File>>);

impl Journal {
    fn write(&self, line: Value) {
        let mut file = self.0.lock().unwrap();
        writeln!(file, "{line}").unwrap();
        file.flush().unwrap();
    }
}

/// Requests cut by the client mid-request, and requests sent again after no usable answer.
static CUTS: AtomicU64 = AtomicU64::new(0);
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// A small deterministic generator per buyer (xorshift), enough for picking seats and actions.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Shared {
    url: String,
    client: reqwest::Client,
    minter: booking::Authenticator,
    event: Mutex<String>,
    journal: Journal,
}

impl Shared {
    fn bearer(&self, sub: &str, role: booking::Role) -> String {
        let token = self.minter.mint(sub, role, Duration::from_secs(7200));
        format!("Bearer {}", token.expect("mints"))
    }
}

pub const ROWS: u32 = 4;
pub const COLS: u32 = 25;
/// The shortest hold the server allows, so holds expire during the run.
pub const HOLD_SECONDS: u32 = 10;

async fn create_event(shared: &Shared, n: usize) -> String {
    let organizer = shared.bearer("chaos-organizer", booking::Role::Organizer);
    let body = json!({"name": format!("Chaos {n}"), "rows": ROWS, "cols": COLS, "price_cents": 2500,
                      "hold_seconds": HOLD_SECONDS, "max_seats_per_customer": 6});
    let key = uuid::Uuid::new_v4().to_string();
    loop {
        let sent = shared
            .client
            .post(format!("{}/api/events", shared.url))
            .header("authorization", &organizer)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        if let Ok(r) = sent {
            if r.status().is_client_error() {
                panic!(
                    "the server refused the chaos event: {}",
                    r.text().await.unwrap_or_default()
                );
            }
            if r.status().is_success() {
                let v: Value = r.json().await.unwrap_or_default();
                if let Some(id) = v["id"].as_str() {
                    shared.journal.write(json!({"op": "event", "event_id": id}));
                    return id.to_owned();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Sends a request until it gets an answer that is not a transport error or a 5xx (a server
/// being restarted), cutting the first try short now and then. The same builder (and so the same
/// idempotency key) is used every time.
async fn answer(
    dice: &mut Dice,
    deadline: Instant,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Option<(u16, Value)> {
    let mut cut = dice.below(10) == 0;
    while Instant::now() < deadline + Duration::from_secs(15) {
        let mut request = build();
        if cut {
            request = request.timeout(Duration::from_millis(1 + dice.below(15)));
        }
        let sent = request.send().await;
        if cut && matches!(&sent, Err(e) if e.is_timeout()) {
            CUTS.fetch_add(1, Ordering::Relaxed);
        }
        cut = false;
        match sent {
            Ok(r) if r.status().is_server_error() || r.status() == 429 => {}
            Ok(r) => {
                let status = r.status().as_u16();
                return Some((status, r.json().await.unwrap_or(Value::Null)));
            }
            Err(_) => {}
        }
        RETRIES.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200 + dice.below(300))).await;
    }
    None
}

async fn buyer(shared: Arc<Shared>, n: usize, deadline: Instant) {
    let customer = format!("chaos-buyer-{n}");
    let token = shared.bearer(&customer, booking::Role::Buyer);
    // Booking without payment is the organizer's (complimentary tickets).
    let organizer = shared.bearer("chaos-organizer", booking::Role::Organizer);
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ ((n as u64 + 1) * 0x1000_0001));
    while Instant::now() < deadline {
        let event = shared.event.lock().unwrap().clone();
        let seats: Vec<u64> = (0..1 + dice.below(3))
            .map(|_| dice.below(u64::from(ROWS * COLS)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let key = uuid::Uuid::new_v4().to_string();
        let (url, client) = (&shared.url, &shared.client);
        let held = answer(&mut dice, deadline, || {
            client
                .post(format!("{url}/api/events/{event}/holds"))
                .header("authorization", &token)
                .header("idempotency-key", &key)
                .json(&json!({ "seats": seats }))
        })
        .await;
        let Some((201, hold)) = held else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Some(id) = hold["hold_id"].as_str().map(str::to_owned) else {
            continue;
        };
        shared
            .journal
            .write(json!({"op": "hold", "hold_id": id, "event_id": event,
            "customer": customer, "seats": seats, "status": hold["status"]}));
        match dice.below(10) {
            0..=1 => {
                // A complimentary ticket: the organizer books it without payment.
                let key = uuid::Uuid::new_v4().to_string();
                let booked = answer(&mut dice, deadline, || {
                    client
                        .post(format!("{url}/api/holds/{id}/book"))
                        .header("authorization", &organizer)
                        .header("idempotency-key", &key)
                })
                .await;
                if let Some((200, view)) = booked {
                    shared
                        .journal
                        .write(json!({"op": "book", "hold_id": id, "status": view["status"]}));
                }
            }
            2..=4 => {
                // A purchase: an order, paid through the provider (the mock fails some payments);
                // now and then the buyer cancels before the money arrives.
                let key = uuid::Uuid::new_v4().to_string();
                let ordered = answer(&mut dice, deadline, || {
                    client
                        .post(format!("{url}/api/orders"))
                        .header("authorization", &token)
                        .header("idempotency-key", &key)
                        .json(&json!({ "hold_ids": [id] }))
                })
                .await;
                let Some((201, order)) = ordered else {
                    continue;
                };
                let order_id = order["order_id"].as_str().unwrap_or_default().to_owned();
                shared
                    .journal
                    .write(json!({"op": "order", "order_id": order_id, "hold_id": id}));
                if dice.below(5) == 0 {
                    let key = uuid::Uuid::new_v4().to_string();
                    let cancelled = answer(&mut dice, deadline, || {
                        client
                            .post(format!("{url}/api/orders/{order_id}/cancel"))
                            .header("authorization", &token)
                            .header("idempotency-key", &key)
                    })
                    .await;
                    if let Some((200, view)) = cancelled {
                        shared.journal.write(
                            json!({"op": "cancel_order", "order_id": order_id, "status": view["status"]}),
                        );
                    }
                }
            }
            5..=6 => {
                let released = answer(&mut dice, deadline, || {
                    client
                        .delete(format!("{url}/api/holds/{id}"))
                        .header("authorization", &token)
                })
                .await;
                if let Some((status, _)) = released {
                    if (200..300).contains(&status) {
                        shared
                            .journal
                            .write(json!({"op": "release", "hold_id": id}));
                    }
                }
            }
            _ => {} // left to expire
        }
    }
}

pub async fn run(args: LoadArgs) {
    let secret = std::env::var("AUTH_HS256_SECRET").expect("AUTH_HS256_SECRET is set");
    std::fs::create_dir_all(&args.out).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.out.join("acks.jsonl"))
        .unwrap();
    let shared = Arc::new(Shared {
        url: args.url.clone(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        minter: booking::Authenticator::hs256(secret.as_bytes()).expect("a secret"),
        event: Mutex::new(String::new()),
        journal: Journal(Arc::new(Mutex::new(file))),
    });
    let first = create_event(&shared, 0).await;
    *shared.event.lock().unwrap() = first;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let buyers: Vec<_> = (0..args.buyers)
        .map(|n| tokio::spawn(buyer(shared.clone(), n, deadline)))
        .collect();
    let mut made = 1;
    while Instant::now() + Duration::from_secs(args.event_seconds) < deadline {
        tokio::time::sleep(Duration::from_secs(args.event_seconds)).await;
        let next = create_event(&shared, made).await;
        *shared.event.lock().unwrap() = next;
        made += 1;
    }
    for b in buyers {
        let _ = b.await;
    }
    eprintln!(
        "load: {} buyers for {:.0} s over {made} events; {} requests cut by the client \
         mid-request, {} sent again after no usable answer",
        args.buyers,
        started.elapsed().as_secs_f64(),
        CUTS.load(Ordering::Relaxed),
        RETRIES.load(Ordering::Relaxed)
    );
}
