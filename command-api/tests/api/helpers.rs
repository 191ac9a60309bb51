//! `spawn_app()`: a real server on a free port over a fresh database, and the checks several tests
//! share (replaying the event store to prove no seat was ever sold twice).

use domain::stored::aggregate_type::SEAT_BLOCK;
use std::collections::{BTreeMap, HashMap};
use std::sync::Once;
use std::time::Duration;

use booking::Role;
use chrono::{DateTime, Utc};
pub use command_api::testing::bearer;
use command_api::{Application, CommandApiConfig};
use domain::SeatBlockEvent;
use projections::EventLog;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

static TRACING: Once = Once::new();

/// The organizer who creates the tests' events (`TestApp::post` acts as them).
pub const ORGANIZER: &str = "olga";

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .with_test_writer()
                .init();
        }
    });
}

/// Test configuration: short holds allowed (1 s), sweeper off unless a test runs it.
pub fn test_config() -> CommandApiConfig {
    command_api::testing::config()
}

/// A running server. It runs on its own runtime and thread, so [`TestApp::crash`] can stop it
/// the way a killed process stops: in-flight requests just die.
pub struct TestApp {
    pub address: String,
    pub db_url: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// A server with `config` (say, with rate limits on).
pub async fn spawn_app_with(config: CommandApiConfig) -> TestApp {
    init_tracing();
    let (db_url, pool) = migrations::testing::fresh_database(5).await;
    start_with(db_url, pool, config).await
}

/// Starts a server on an existing database (for restarts). The server opens its own pool inside
/// its own runtime, as a process would: connections live on the runtime that opened them, so a
/// pool shared with a crashed server would hand the next one dead connections. `pool` stays the
/// test's, for its own checks.
pub async fn start_on(db_url: String, pool: PgPool) -> TestApp {
    start_with(db_url, pool, test_config()).await
}

async fn start_with(db_url: String, pool: PgPool, config: CommandApiConfig) -> TestApp {
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let server_url = db_url.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.spawn(async move {
            let server_pool = PgPoolOptions::new()
                .max_connections(20)
                .connect(&server_url)
                .await
                .expect("server pool");
            let app = Application::build(config, server_pool)
                .await
                .expect("build app");
            addr_tx.send(app.local_addr()).expect("report address");
            app.run_until_stopped(std::future::pending()).await.ok();
        });
        let _ = stop_rx.recv();
        runtime.shutdown_background();
    });
    let addr = addr_rx.await.expect("server started");
    TestApp {
        address: format!("http://{addr}"),
        db_url,
        pool,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// Stops the server abruptly, as if the process were killed; the database stays.
    pub fn crash(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST` as the organizer [`ORGANIZER`] (who creates the tests' events).
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("authorization", bearer(ORGANIZER, Role::Organizer))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET` as an admin (who may read every hold).
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("authorization", bearer("root", Role::Admin))
            .send()
            .await
            .unwrap()
    }

    /// Creates a grid event and returns its id.
    pub async fn create_grid_event(&self, rows: u32, cols: u32, extra: Value) -> String {
        let mut body =
            json!({"name": "Test sale", "rows": rows, "cols": cols, "price_cents": 2500});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let response = self.post("/api/events", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let view: Value = response.json().await.unwrap();
        view["id"].as_str().unwrap().to_owned()
    }

    /// Holds `seats` as the buyer `customer`.
    pub async fn hold(&self, event_id: &str, customer: &str, seats: Value) -> Response {
        self.client
            .post(self.url(&format!("/api/events/{event_id}/holds")))
            .header("authorization", bearer(customer, Role::Buyer))
            .json(&json!({"seats": seats}))
            .send()
            .await
            .unwrap()
    }

    /// Holds seats that must be free; returns the hold's view.
    pub async fn hold_ok(&self, event_id: &str, customer: &str, seats: Value) -> Value {
        let response = self.hold(event_id, customer, seats).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn as_customer(
        &self,
        method: reqwest::Method,
        path: &str,
        customer: &str,
    ) -> Response {
        self.client
            .request(method, self.url(path))
            .header("authorization", bearer(customer, Role::Buyer))
            .send()
            .await
            .unwrap()
    }

    /// Books a hold without payment as the event's organizer (a complimentary ticket: buyers
    /// pay through orders).
    pub async fn comp(&self, hold_id: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/holds/{hold_id}/book")))
            .header("authorization", bearer(ORGANIZER, Role::Organizer))
            .send()
            .await
            .unwrap()
    }

    /// A hold's `status` as `GET /api/holds/{id}` reports it.
    pub async fn hold_status(&self, hold_id: &str) -> String {
        let hold: Value = self
            .get(&format!("/api/holds/{hold_id}"))
            .await
            .json()
            .await
            .unwrap();
        hold["status"].as_str().unwrap().to_owned()
    }

    pub async fn seat_map(&self, event_id: &str) -> String {
        let map: Value = self
            .get(&format!("/api/events/{event_id}/seats"))
            .await
            .json()
            .await
            .unwrap();
        map["seats"].as_str().unwrap().to_owned()
    }
}

/// Reads a problem+json error and checks its status and code.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "expected {status} {code}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], format!("urn:seatgrid:problem:{code}"));
    body
}

/// Seat ids of a hold view.
pub fn seat_ids(view: &Value) -> Vec<u64> {
    view["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seat_id"].as_u64().unwrap())
        .collect()
}

#[derive(Debug, Default)]
pub struct Replay {
    /// Every hold the store says was placed, with its seats.
    pub held: HashMap<String, Vec<u32>>,
    /// How often each seat was booked.
    pub bookings_per_seat: BTreeMap<u32, u32>,
}

/// Every event in the store, in global order, once all of them are readable. The log only shows
/// transactions older than the oldest one still running on the whole server, so an open
/// transaction of another test (any database) can hide the newest events for a moment; a replay
/// that ran then would miss seats a client was told it holds.
async fn read_every_stored_event(pool: &PgPool) -> Vec<projections::RecordedEvent> {
    let log = EventLog::new(pool.clone());
    for _ in 0..500 {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .unwrap();
        let events = log.read_all().await.unwrap();
        if events.len() as i64 >= stored {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the stored events never all became readable");
}

/// Replays every seat-block event in the global order and panics at the first seat held by two
/// live holds at once, or booked twice. Returns what it saw.
pub async fn replay_and_check_no_double_sale(pool: &PgPool) -> Replay {
    struct Owner {
        hold: String,
        expires_at: DateTime<Utc>,
        booked: bool,
    }
    let events = read_every_stored_event(pool).await;
    let mut owners: HashMap<u32, Owner> = HashMap::new();
    let mut replay = Replay::default();
    for recorded in events.iter().filter(|e| e.aggregate_type == SEAT_BLOCK) {
        let event: SeatBlockEvent = serde_json::from_str(recorded.payload.get()).unwrap();
        let change = event.change();
        let hold = change.hold_id.to_string();
        let seats: Vec<u32> = change.seats.iter().map(|s| s.0).collect();
        match &event {
            SeatBlockEvent::SeatHeld(c) => {
                for seat in &seats {
                    if let Some(owner) = owners.get(seat) {
                        let live = owner.booked || c.at < owner.expires_at;
                        assert!(
                            !live,
                            "seat {seat} held by {hold} while {} still owned it",
                            owner.hold
                        );
                    }
                    owners.insert(
                        *seat,
                        Owner {
                            hold: hold.clone(),
                            expires_at: c.expires_at,
                            booked: false,
                        },
                    );
                }
                replay.held.entry(hold).or_default().extend(seats);
            }
            SeatBlockEvent::SeatBooked(c) => {
                for seat in &seats {
                    let owner = owners.get_mut(seat).expect("booked seat has an owner");
                    assert_eq!(
                        owner.hold, hold,
                        "seat {seat} booked by a hold not owning it"
                    );
                    assert!(
                        c.at < owner.expires_at,
                        "hold {hold} booked after its expiry"
                    );
                    owner.booked = true;
                    *replay.bookings_per_seat.entry(*seat).or_default() += 1;
                }
            }
            SeatBlockEvent::HoldExtended { change: c, .. } => {
                for seat in &seats {
                    if let Some(owner) = owners.get_mut(seat).filter(|o| o.hold == hold) {
                        owner.expires_at = c.expires_at;
                    }
                }
            }
            SeatBlockEvent::BookingUndone(_) => {
                for seat in &seats {
                    let owner = owners.remove(seat).expect("an undone seat has an owner");
                    assert!(
                        owner.booked && owner.hold == hold,
                        "undid seat {seat} not booked by {hold}"
                    );
                    let times = replay.bookings_per_seat.entry(*seat).or_default();
                    *times -= 1;
                    if *times == 0 {
                        replay.bookings_per_seat.remove(seat);
                    }
                }
            }
            SeatBlockEvent::SeatReleased(_) | SeatBlockEvent::HoldExpired(_) => {
                for seat in &seats {
                    if owners.get(seat).is_some_and(|o| o.hold == hold) {
                        let owner = &owners[seat];
                        assert!(!owner.booked, "a booked seat {seat} was freed");
                        owners.remove(seat);
                    }
                }
            }
        }
    }
    for (seat, times) in &replay.bookings_per_seat {
        assert_eq!(*times, 1, "seat {seat} booked {times} times");
    }
    replay
}

/// An application core of its own on `app`'s database (its own writers, picks and reads), for
/// tests that count what one core reads from the store.
pub fn own_core(app: &TestApp) -> std::sync::Arc<booking::BookingService> {
    std::sync::Arc::new(booking::BookingService::new(
        booking::EventStore::new(app.pool.clone(), Default::default()),
        Default::default(),
    ))
}

/// `buyers` holds through `core` sent at once (after a barrier): buyer `i` is `crowd-{i}` and
/// asks for `choice(i)`. The answers, in buyer order.
pub async fn crowd_at_once(
    core: &std::sync::Arc<booking::BookingService>,
    event_id: domain::EventId,
    buyers: usize,
    choice: impl Fn(usize) -> booking::SeatChoice,
) -> Vec<Result<booking::views::HoldView, booking::CommandError>> {
    use booking::BookingCommands;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(buyers));
    let tasks: Vec<_> = (0..buyers)
        .map(|i| {
            let (core, start, choice) = (core.clone(), start.clone(), choice(i));
            tokio::spawn(async move {
                let caller = booking::Caller::buyer(&format!("crowd-{i}")).unwrap();
                let ctx = booking::RequestContext {
                    correlation_id: format!("crowd-{i}"),
                    id_seed: None,
                };
                start.wait().await;
                core.hold_seats(event_id, &caller, choice, &ctx).await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(buyers);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}
