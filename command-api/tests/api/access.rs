//! Who may call what: the 401/403 matrix over every REST route, and the limits no caller can
//! get past (giant layouts, prices past the maximum, rate limits).

use std::time::{Duration, Instant};

use booking::Role;
use command_api::http::limits::{Rate, RateLimits};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, bearer, spawn_app, spawn_app_with, test_config, TestApp};

/// How a request authenticates in the matrix.
#[derive(Debug, Clone, Copy)]
enum As {
    Nobody,
    Garbage,
    ForeignKey,
    Expired,
    Buyer(&'static str),
    Organizer(&'static str),
    Admin,
}

impl As {
    fn header(self) -> Option<String> {
        let foreign = || {
            booking::Authenticator::hs256(b"another-secret-another-secret-32")
                .unwrap()
                .mint("olga", Role::Admin, Duration::from_secs(60))
                .unwrap()
        };
        let expired = || {
            let claims = json!({"sub": "alice", "role": "buyer", "exp": 1_000_000});
            jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(command_api::testing::SECRET).unwrap(),
            )
            .unwrap()
        };
        match self {
            Self::Nobody => None,
            Self::Garbage => Some("Bearer not-a-token".into()),
            Self::ForeignKey => Some(format!("Bearer {}", foreign())),
            Self::Expired => Some(format!("Bearer {}", expired())),
            Self::Buyer(sub) => Some(bearer(sub, Role::Buyer)),
            Self::Organizer(sub) => Some(bearer(sub, Role::Organizer)),
            Self::Admin => Some(bearer("root", Role::Admin)),
        }
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: As,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(h) = who.header() {
        request = request.header("authorization", h);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    request.send().await.unwrap()
}

async fn expect(response: reqwest::Response, status: StatusCode, code: Option<&str>, what: &str) {
    let got = response.status();
    let unauthenticated = response.headers().get("www-authenticate").cloned();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: {body}");
    if let Some(code) = code {
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["code"], code, "{what}: {body}");
    }
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            unauthenticated.is_some(),
            "{what}: 401 names the Bearer scheme"
        );
    }
}

#[tokio::test]
async fn every_route_refuses_callers_without_the_right_and_serves_those_with_it() {
    let app = spawn_app().await;
    let event = app.create_grid_event(2, 10, json!({})).await; // organizer olga's
    let hold = app.hold_ok(&event, "alice", json!([1])).await;
    let hold = hold["hold_id"].as_str().unwrap().to_owned();
    let new_event = json!({"name": "Show", "rows": 1, "cols": 2});

    // Public reads: no token needed.
    for path in [
        format!("/api/events/{event}"),
        format!("/api/events/{event}/seats"),
    ] {
        expect(
            call(&app, Method::GET, &path, As::Nobody, None).await,
            StatusCode::OK,
            None,
            &path,
        )
        .await;
    }
    // Everything that acts for someone: 401 without a valid token, whatever else is wrong.
    let protected = [
        (
            Method::POST,
            "/api/events".to_owned(),
            Some(new_event.clone()),
        ),
        (
            Method::POST,
            format!("/api/events/{event}/holds"),
            Some(json!({"seats": [5]})),
        ),
        (Method::GET, format!("/api/holds/{hold}"), None),
        (Method::POST, format!("/api/holds/{hold}/book"), None),
        (Method::DELETE, format!("/api/holds/{hold}"), None),
    ];
    for (method, path, body) in &protected {
        for who in [As::Nobody, As::Garbage, As::ForeignKey, As::Expired] {
            let what = format!("{method} {path} as {who:?}");
            let response = call(&app, method.clone(), path, who, body.clone()).await;
            expect(
                response,
                StatusCode::UNAUTHORIZED,
                Some("unauthenticated"),
                &what,
            )
            .await;
        }
    }

    // Creating events: organizers and admins.
    let create = |who| {
        call(
            &app,
            Method::POST,
            "/api/events",
            who,
            Some(new_event.clone()),
        )
    };
    expect(
        create(As::Buyer("bob")).await,
        StatusCode::FORBIDDEN,
        Some("forbidden"),
        "buyer creates",
    )
    .await;
    expect(
        create(As::Organizer("oscar")).await,
        StatusCode::CREATED,
        None,
        "organizer creates",
    )
    .await;
    expect(
        create(As::Admin).await,
        StatusCode::CREATED,
        None,
        "admin creates",
    )
    .await;

    // Reading a hold: its customer, its event's organizer, admins.
    let hold_path = format!("/api/holds/{hold}");
    let read = |who| call(&app, Method::GET, &hold_path, who, None);
    for (who, status) in [
        (As::Buyer("alice"), StatusCode::OK),
        (As::Organizer("olga"), StatusCode::OK),
        (As::Admin, StatusCode::OK),
        (As::Buyer("mallory"), StatusCode::FORBIDDEN),
        (As::Organizer("oscar"), StatusCode::FORBIDDEN),
    ] {
        expect(
            read(who).await,
            status,
            None,
            &format!("read hold as {who:?}"),
        )
        .await;
    }

    // Releasing: the hold's customer only (not even its organizer). Booking without payment: the
    // event's organizer or an admin (complimentary tickets); buyers, even the hold's own, order.
    for who in [As::Buyer("mallory"), As::Organizer("olga"), As::Admin] {
        let release = call(
            &app,
            Method::DELETE,
            &format!("/api/holds/{hold}"),
            who,
            None,
        )
        .await;
        expect(
            release,
            StatusCode::FORBIDDEN,
            Some("not_hold_owner"),
            &format!("release as {who:?}"),
        )
        .await;
    }
    for who in [
        As::Buyer("mallory"),
        As::Buyer("alice"),
        As::Organizer("oscar"),
    ] {
        let book = call(
            &app,
            Method::POST,
            &format!("/api/holds/{hold}/book"),
            who,
            None,
        )
        .await;
        expect(
            book,
            StatusCode::FORBIDDEN,
            Some("forbidden"),
            &format!("book as {who:?}"),
        )
        .await;
    }
    let book = call(
        &app,
        Method::POST,
        &format!("/api/holds/{hold}/book"),
        As::Organizer("olga"),
        None,
    )
    .await;
    expect(book, StatusCode::OK, None, "olga comps alice's hold").await;

    // Holding: any caller, always for themselves (a customer_id in the body is refused).
    let held = call(
        &app,
        Method::POST,
        &format!("/api/events/{event}/holds"),
        As::Organizer("olga"),
        Some(json!({"seats": [7]})),
    )
    .await;
    assert_eq!(held.status(), StatusCode::CREATED);
    assert_eq!(held.json::<Value>().await.unwrap()["customer_id"], "olga");
    let smuggled = call(
        &app,
        Method::POST,
        &format!("/api/events/{event}/holds"),
        As::Buyer("mallory"),
        Some(json!({"customer_id": "alice", "seats": [8]})),
    )
    .await;
    assert_problem(smuggled, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
}

#[tokio::test]
async fn a_token_whose_subject_is_not_a_customer_id_is_401() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 5, json!({})).await;
    let response = app.hold(&event, "no spaces allowed", json!([1])).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_giant_layout_is_a_fast_422_and_allocates_nothing() {
    let app = spawn_app().await;
    for body in [
        json!({"name": "x", "layout": {"rows": 4_294_967_295u64, "cols": 1, "price_cents": 1}}),
        json!({"name": "x", "rows": 1, "cols": 4_294_967_295u64}),
        json!({"name": "x", "rows": 1000, "cols": 1000}),
    ] {
        let started = Instant::now();
        let response = app.post("/api/events", &body).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused at once"
        );
    }
}

#[tokio::test]
async fn prices_past_the_maximum_are_422_and_totals_never_overflow() {
    let app = spawn_app().await;
    let too_dear = json!({"name": "x", "rows": 1, "cols": 1, "price_cents": u64::MAX});
    assert_problem(
        app.post("/api/events", &too_dear).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    // At the maximum price, the largest hold's total is exact.
    let max = domain::layout::MAX_PRICE_CENTS;
    let event = app
        .create_grid_event(
            1,
            100,
            json!({"price_cents": max, "max_seats_per_customer": 100}),
        )
        .await;
    let seats: Vec<u32> = (0..100).collect();
    let hold = app.hold_ok(&event, "whale", json!(seats)).await;
    assert_eq!(hold["total_cents"].as_u64(), Some(max * 100));
}

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after_per_customer_and_per_client() {
    let mut config = test_config();
    config.rate_limits = Some(RateLimits {
        per_client: Rate {
            per_second: 1,
            burst: 8,
        },
        per_customer: Rate {
            per_second: 1,
            burst: 3,
        },
    });
    let app = spawn_app_with(config).await;
    let event = app.create_grid_event(1, 20, json!({})).await;
    let mut statuses = Vec::new();
    for seat in 0..4 {
        statuses.push(app.hold(&event, "eager", json!([seat])).await);
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status() == StatusCode::CREATED));
    assert!(
        last.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert_problem(last, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another customer from the same address still gets in, until the address's own limit.
    let mut client_limited = false;
    for i in 0..10 {
        let response = app
            .hold(&event, &format!("other{i}"), json!([10 + i]))
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            client_limited = true;
            break;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert!(client_limited, "the per-client bucket runs out too");
    // Health checks are never limited.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}
