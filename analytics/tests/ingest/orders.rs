//! The orders report counts money from confirmed orders and refunds.

use analytics::reports::Reports;
use analytics::testing::server_url;
use booking::{BookingCommands, Caller};
use domain::{EventId, HoldId, OrderId, SeatRef};

use crate::helpers::*;

/// A payment's outcome for `order`, as the webhook records it (the provider's id is per order).
fn news(
    id: &str,
    kind: booking::payments::WebhookType,
    order: &booking::orders::OrderView,
) -> booking::payments::WebhookEvent {
    use booking::payments::{WebhookData, WebhookEvent, WebhookObject};
    WebhookEvent {
        id: id.into(),
        kind,
        created: chrono::Utc::now().timestamp(),
        data: WebhookData {
            object: WebhookObject {
                id: format!("pi_{}", order.order_id.simple()),
                order_id: order.order_id,
                amount_cents: order.amount_cents,
                currency: order.currency.clone(),
                failure_reason: Some("card_declined".into()),
            },
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_report_counts_money_from_confirmed_orders_and_refunds() {
    use booking::payments::WebhookType::{PaymentFailed, PaymentSucceeded, RefundSucceeded};
    let (pool, service, ch) = setup(&server_url()).await;
    let ingester = start_ingester(&pool, &ch);
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    let event_id = EventId(event.id);
    // Five buyers, each ordering two Premium seats (2 x 9,000): two pay, one is refunded after
    // cancelling, one's payment fails, one cancels before paying.
    let mut orders = Vec::new();
    for b in 0..5u32 {
        let buyer = Caller::buyer(&format!("buyer{b}")).unwrap();
        let seats = vec![SeatRef::Id(b * 2), SeatRef::Id(b * 2 + 1)];
        let hold = service
            .hold_seats(event_id, &buyer, seats.into(), &ctx())
            .await
            .unwrap();
        let order = service
            .place_order(vec![HoldId(hold.hold_id)], &buyer, &ctx())
            .await
            .unwrap();
        assert_eq!(order.amount_cents, 18_000);
        orders.push((buyer, order));
    }
    let settle = |o: &booking::orders::OrderView| service.settle_order(OrderId(o.order_id));
    for (i, (buyer, order)) in orders.iter().enumerate() {
        let outcome = match i {
            0..=2 => PaymentSucceeded,
            3 => PaymentFailed,
            _ => {
                service
                    .cancel_order(OrderId(order.order_id), buyer, &ctx())
                    .await
                    .unwrap();
                settle(order).await.unwrap();
                continue;
            }
        };
        service
            .record_payment(news(&format!("evt_{i}"), outcome, order), &ctx())
            .await
            .unwrap();
        settle(order).await.unwrap();
    }
    let (buyer, refunded) = &orders[2];
    service
        .cancel_order(OrderId(refunded.order_id), buyer, &ctx())
        .await
        .unwrap();
    service
        .record_payment(news("evt_refund", RefundSucceeded, refunded), &ctx())
        .await
        .unwrap();
    settle(refunded).await.unwrap();
    wait_ingested(&pool).await;
    ingester.abort();

    let report = Reports::new(ch.writer()).orders(event.id).await.unwrap();
    assert_eq!(
        (report.orders, report.paid, report.confirmed),
        (5, 3, 3),
        "{report:?}"
    );
    assert_eq!(
        (report.payment_failed, report.cancelled, report.refunded),
        (1, 1, 1)
    );
    assert_eq!(report.revenue_cents, 2 * 18_000, "confirmed and kept");
    assert_eq!(report.refunded_cents, 18_000);
    assert!((report.payment_failure_rate() - 0.25).abs() < 1e-9);
    assert!(report.time_to_pay_p95_ms >= report.time_to_pay_p50_ms);
    assert!(report.time_to_pay_p50_ms >= 0 && report.time_to_confirm_p95_ms > 0);
}
