//! The pages in a real browser (Debian's Chromium through chromedriver) against the whole system:
//! two buyers race for one seat, a hold's countdown runs out, a buyer checks out and pays, an
//! organizer creates an event and watches a hold arrive on the sale dashboard. The screenshots in
//! `docs/screenshots/` (shown in the README) are taken here.

use std::time::Duration;

use serde_json::json;

use crate::browser::Driver;
use crate::helpers::{spawn_system, spawn_system_with_analytics, spawn_with_payments};
use crate::payments_mock::{free_port, MockProcess, SECRET};

const SEAT: u32 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buyers_race_for_one_seat_and_the_loser_sees_it_taken_without_reloading() {
    let app = spawn_system().await;
    let event = app.create_grid_event(6, 12, 600).await;
    app.wait_for_read_side(&event).await;
    let driver = Driver::start().await;
    let (ann, ben) = tokio::join!(driver.browser(1280, 900), driver.browser(1280, 900));
    let page = format!("/events/{event}");
    tokio::join!(
        ann.sign_in(&app.address, "ann", "buyer", &page),
        ben.sign_in(&app.address, "ben", "buyer", &page)
    );
    tokio::join!(ann.seat_map_ready(), ben.seat_map_ready());

    // Both pick the same seat by clicking it on the map, then press "Hold" at once.
    tokio::join!(ann.click_seat(SEAT), ben.click_seat(SEAT));
    for buyer in [&ann, &ben] {
        assert_eq!(buyer.text("#hold-selected").await, "Hold 1 seat(s)");
    }
    tokio::join!(ann.click("#hold-selected"), ben.click("#hold-selected"));
    let outcome = "return document.querySelector('[data-hold]') ? 'won'
        : (/someone else/i.test(document.querySelector('.message').textContent) ? 'lost' : '')";
    let (a, b) = tokio::join!(
        ann.until(Duration::from_secs(10), "ann's answer", outcome),
        ben.until(Duration::from_secs(10), "ben's answer", outcome)
    );
    let (winner, loser) = match (a.as_str(), b.as_str()) {
        (Some("won"), Some("lost")) => (&ann, &ben),
        (Some("lost"), Some("won")) => (&ben, &ann),
        other => panic!("exactly one buyer wins the seat: {other:?}"),
    };
    // The loser's map shows the seat held, pushed by the server: no reload.
    loser
        .until(
            Duration::from_secs(5),
            "the seat to turn held on the loser's map",
            &format!("return window.seatgrid.map.statusOf({SEAT}) === 'H'"),
        )
        .await;
    let held_at = winner.js("return window.seatgrid.heldAt", vec![]).await;
    let seen_at = loser
        .js(
            &format!("return window.seatgrid.map.changedAt.get({SEAT})"),
            vec![],
        )
        .await;
    let late = seen_at.as_f64().unwrap() - held_at.as_f64().unwrap();
    println!("the loser's map showed the seat held {late:.0} ms after the winner's answer");
    assert!(
        late < 1000.0,
        "the seat turned held on the loser's map {late} ms after the winner's hold (target < 1 s)"
    );
    assert_eq!(winner.seat_status(SEAT).await, "H");
    let label = loser
        .js(&format!("return window.seatgrid.map.label({SEAT})"), vec![])
        .await;
    assert_eq!(label, json!("Row 2, seat 1, €50.00, held"));
    winner.screenshot("buyer-seat-held").await;
    loser.screenshot("buyer-seat-taken").await;
    tokio::join!(ann.close(), ben.close());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_picked_with_the_keyboard_is_held_and_comes_back_when_the_countdown_runs_out() {
    let app = spawn_system().await;
    let event = app.create_grid_event(3, 8, 4).await;
    app.wait_for_read_side(&event).await;
    let driver = Driver::start().await;
    let cara = driver.browser(1280, 900).await;
    cara.sign_in(&app.address, "cara", "buyer", &format!("/events/{event}"))
        .await;
    cara.seat_map_ready().await;
    // Zooming redraws the map with larger seats.
    let before = cara.js("return window.seatgrid.map.cell", vec![]).await;
    cara.click("#zoom-in").await;
    let after = cara.js("return window.seatgrid.map.cell", vec![]).await;
    assert!(after.as_f64() > before.as_f64(), "{before} -> {after}");
    // Keyboard only: focus the map, move one seat right and one row down, pick it.
    cara.js("document.getElementById('seat-map').focus()", vec![])
        .await;
    let canvas = cara
        .client
        .find(fantoccini::Locator::Id("seat-map"))
        .await
        .unwrap();
    canvas.send_keys("\u{E014}\u{E015}\u{E007}").await.unwrap(); // Right, Down, Enter
    let spoken = cara.text("#seat-focus").await;
    assert!(spoken.starts_with("Row 2, seat"), "{spoken}");
    let picked = cara
        .js("return [...window.seatgrid.map.selected]", vec![])
        .await;
    assert_eq!(picked.as_array().unwrap().len(), 1, "{picked}");
    let seat = picked[0].as_u64().unwrap() as u32;
    cara.click("#hold-selected").await;
    cara.until(
        Duration::from_secs(10),
        "the hold",
        "return document.querySelector('.countdown')",
    )
    .await;
    let left = cara.text(".countdown").await;
    assert!(left.ends_with("left") || left == "expiring...", "{left}");
    cara.screenshot("buyer-countdown").await;
    // The hold runs out: the page says so and the seat is available again, on its own.
    cara.until(
        Duration::from_secs(20),
        "the expiry message",
        "return /expired/.test(document.querySelector('.message').textContent)",
    )
    .await;
    cara.until(
        Duration::from_secs(10),
        "the seat to come back",
        &format!(
            "return window.seatgrid.map.statusOf({seat}) === 'A' && !window.seatgrid.map.mine.size"
        ),
    )
    .await;
    assert!(
        cara.js("return document.querySelector('[data-hold]')", vec![])
            .await
            .is_null(),
        "the expired hold is gone from the panel"
    );
    cara.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_checks_out_pays_and_finds_the_ticket_on_a_phone_sized_screen() {
    let port = free_port();
    let app = spawn_with_payments(format!("http://127.0.0.1:{port}"), SECRET).await;
    let _mock = MockProcess::start_on(
        port,
        &format!("{}/api/payments/webhook", app.address),
        &[("PAYMENTS_MOCK_FAILURE_RATE", "0")],
    );
    let event = app.create_grid_event(4, 10, 600).await;
    app.wait_for_read_side(&event).await;
    let driver = Driver::start().await;
    let dan = driver.browser(390, 844).await;
    dan.sign_in(&app.address, "dan", "buyer", &format!("/events/{event}"))
        .await;
    dan.seat_map_ready().await;
    // "2 best seats together", then pay.
    dan.click("#hold-best").await;
    dan.until(
        Duration::from_secs(10),
        "the hold",
        "return document.querySelector('#checkout')",
    )
    .await;
    let mine = dan.js("return window.seatgrid.map.mine.size", vec![]).await;
    assert_eq!(mine, json!(2));
    dan.click("#checkout").await;
    dan.until(
        Duration::from_secs(20),
        "the confirmed order",
        "return document.querySelector('[data-order-status=CONFIRMED]')",
    )
    .await;
    dan.screenshot("buyer-phone-confirmed").await;
    dan.click("a[href='/tickets']").await;
    let tickets = dan
        .until(
            Duration::from_secs(10),
            "the tickets",
            "const t = document.querySelectorAll('li.ticket'); return t.length && t[0].textContent",
        )
        .await;
    assert!(
        tickets.as_str().unwrap().contains("Test night"),
        "{tickets}"
    );
    dan.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_creates_an_event_and_sees_a_hold_appear_on_the_sale_dashboard() {
    let app = spawn_system_with_analytics().await;
    let driver = Driver::start().await;
    let olga = driver.browser(1280, 1000).await;
    olga.sign_in(&app.address, "olga", "organizer", "/organizer")
        .await;
    olga.until(
        Duration::from_secs(10),
        "the event form",
        "return document.getElementById('create-event')",
    )
    .await;
    olga.type_into("#event-name", "Browser night").await;
    // The preview follows the form: the two default sections' seats.
    let summary = olga.text("form.create p.muted").await;
    assert_eq!(summary, "468 seats in 2 section(s)");
    olga.screenshot("organizer-new-event").await;
    olga.click("#create-submit").await;
    let path = olga
        .until(
            Duration::from_secs(10),
            "the dashboard",
            "return /^\\/organizer\\/events\\//.test(location.pathname) && document.querySelector('.tiles .tile') && location.pathname",
        )
        .await;
    let event = path
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // A buyer holds two seats through the API; the dashboard shows it live.
    let held = app.hold(&event, "finn", &[0, 1]).await;
    assert_eq!(held["data"]["holdSeats"]["status"], "HELD", "{held}");
    olga.until(
        Duration::from_secs(10),
        "the hold on the dashboard",
        "return document.querySelector('.tiles').dataset.held === '2'
            && /finn/.test(document.getElementById('live-holds').textContent)",
    )
    .await;
    // The reports (ClickHouse) count it a few seconds later.
    olga.until(
        Duration::from_secs(30),
        "the hold in the reports",
        "return /Holds: 1,/.test(document.querySelector('.figures').textContent)",
    )
    .await;
    olga.screenshot("organizer-dashboard").await;
    olga.close().await;
}
