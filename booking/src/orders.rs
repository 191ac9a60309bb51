//! Placing an order from a customer's live holds, and reading it back (the rules of the order
//! itself are `domain::order`'s).
//!
//! Policy:
//! - An order takes 1 to [`MAX_HOLDS`] live holds of the caller, all of one ticketed event. Each
//!   hold is taken into the order (a hold is in one order at most) and its expiry moved to the end
//!   of the payment window (`EventPolicy::payment_window_seconds`, 10 minutes by default) from
//!   now, but never past the event's longest hold
//!   counted from the hold's placement: a buyer mid-payment keeps the seats. The order's payment is
//!   due when its first hold expires.
//! - Its amount is the seats' prices from the event's layout, summed with checked arithmetic, and
//!   stays what was placed.
//! - With an idempotency seed the order id derives from it, so a re-run places nothing new.
//! - An order is read by its customer and by its event's manager, and cancelled by its customer
//!   only: before payment (its holds are released by the order process), or once confirmed (the
//!   payment is refunded, then the seats go back on sale). Cancelling again changes nothing.
//! - A provider's notification (already verified by the adapter) is recorded on its order; each
//!   provider event id counts once (the order remembers them), so duplicates and late copies are
//!   harmless. A payment of another amount or currency than the order's is refused and logged.

use chrono::{Duration, Utc};
use domain::{
    CustomerAllowanceCommand, HoldId, HoldStatus, Order, OrderCommand, OrderId, OrderPlaced,
    SeatBlockCommand, SeatBlockError,
};

use crate::book_release::owned_by;
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::identity::Caller;
use crate::payments::{WebhookEvent, WebhookType};
use crate::reads::LocatedHold;
use crate::service::BookingService;
use crate::store::StoreError;
use crate::views::seat_views;

/// The most holds one order may take.
pub const MAX_HOLDS: usize = 10;

pub use crate::views::OrderView;

/// Why a hold cannot go into an order, as the caller should hear it.
fn not_orderable(status: HoldStatus, hold_id: HoldId) -> Option<CommandError> {
    match status {
        HoldStatus::Held => None,
        HoldStatus::Booked => Some(CommandError::HoldBooked(hold_id)),
        HoldStatus::Released => Some(CommandError::HoldReleased(hold_id)),
        HoldStatus::Expired => Some(CommandError::HoldExpired(hold_id)),
        HoldStatus::Pending | HoldStatus::Failed => Some(CommandError::HoldFailed(hold_id)),
    }
}

fn block_refused(e: StoreError<SeatBlockError>, hold_id: HoldId) -> CommandError {
    match e {
        StoreError::Rejected(SeatBlockError::HoldInOrder(_)) => {
            CommandError::Invalid(vec![format!("hold {hold_id} is already in another order")])
        }
        StoreError::Rejected(SeatBlockError::HoldExpired(_)) => CommandError::HoldExpired(hold_id),
        StoreError::Rejected(SeatBlockError::HoldReleased(_)) => {
            CommandError::HoldReleased(hold_id)
        }
        StoreError::Rejected(SeatBlockError::AlreadyBooked(_)) => CommandError::HoldBooked(hold_id),
        StoreError::Rejected(e) => CommandError::Internal(e.to_string()),
        other => other.into(),
    }
}

impl BookingService {
    /// Places an order for the caller's `hold_ids` (see the module policy).
    pub(crate) async fn run_place_order(
        &self,
        hold_ids: &[HoldId],
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<OrderView, CommandError> {
        let mut problems = Vec::new();
        if hold_ids.is_empty() || hold_ids.len() > MAX_HOLDS {
            problems.push(format!("an order takes 1 to {MAX_HOLDS} holds"));
        }
        let mut distinct = hold_ids.to_vec();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != hold_ids.len() {
            problems.push("a hold is listed more than once".into());
        }
        if !problems.is_empty() {
            return Err(CommandError::Invalid(problems));
        }
        let customer = &caller.customer;
        let order_id = OrderId(ctx.new_id(&format!("order\n{customer}")));
        if let Some(order) = self.load_order(order_id).await? {
            return self.order_view(&order).await; // a re-run of a placed order
        }
        let now = Utc::now();
        let mut located: Vec<LocatedHold> = Vec::with_capacity(hold_ids.len());
        for hold_id in hold_ids {
            let l = self.locate(*hold_id).await?;
            owned_by(&l, customer)?;
            let status = self.located_hold_view(&l, now).await?.status;
            if let Some(e) = not_orderable(status, *hold_id) {
                return Err(e);
            }
            located.push(l);
        }
        let event = located[0].event.clone();
        let event_id = event.definition.event_id;
        if located
            .iter()
            .any(|l| l.event.definition.event_id != event_id)
        {
            return Err(CommandError::Invalid(vec![
                "an order's holds must all be for one event".into(),
            ]));
        }
        let seats: Vec<_> = located
            .iter()
            .flat_map(|l| l.entry.change.seats.clone())
            .collect();
        let amount_cents = domain::order::price(&event.layout, &seats)
            .map_err(|e| CommandError::Invalid(vec![e.to_string()]))?;

        let meta = ctx.metadata("PlaceOrder", Some(customer));
        let cap = Duration::seconds(i64::from(self.policy().max_hold_seconds));
        let window = Duration::seconds(i64::from(self.policy().payment_window_seconds));
        let mut payment_due = now + window;
        for l in &located {
            let change = &l.entry.change;
            let hold_id = change.hold_id;
            let until = (now + window).min(change.at + cap).max(change.expires_at);
            payment_due = payment_due.min(until);
            for block in event.by_block(&change.seats).into_keys() {
                self.store
                    .execute::<domain::SeatBlock>(&event.block_id(block), &meta, || {
                        SeatBlockCommand::ExtendHold {
                            order_id,
                            hold_id,
                            customer_id: customer.clone(),
                            until,
                            now: Utc::now(),
                        }
                    })
                    .await
                    .map_err(|e| block_refused(e, hold_id))?;
            }
            self.store
                .execute::<domain::CustomerAllowance>(&l.allowance_id, &meta, || {
                    CustomerAllowanceCommand::Extend {
                        hold_id,
                        until,
                        now: Utc::now(),
                    }
                })
                .await
                .map_err(|e| match e {
                    StoreError::Rejected(e) => CommandError::Internal(e.to_string()),
                    other => other.into(),
                })?;
        }
        fail::fail_point!("place_order.before_order");
        let placed = OrderPlaced {
            order_id,
            event_id,
            customer_id: customer.clone(),
            holds: hold_ids.to_vec(),
            seats,
            amount_cents,
            currency: event.definition.currency.clone(),
            payment_due,
            at: now,
        };
        self.store
            .execute::<Order>(&order_id.to_string(), &meta, || {
                OrderCommand::Place(placed.clone())
            })
            .await
            .map_err(|e| match e {
                StoreError::Rejected(e) => CommandError::Invalid(vec![e.to_string()]),
                other => other.into(),
            })?;
        let order = self
            .load_order(order_id)
            .await?
            .ok_or_else(|| CommandError::Internal("a placed order does not load".into()))?;
        self.order_view(&order).await
    }

    /// An order, for its customer or its event's manager.
    pub(crate) async fn run_order(
        &self,
        order_id: OrderId,
        caller: &Caller,
    ) -> Result<OrderView, CommandError> {
        let not_found = || CommandError::OrderNotFound(order_id);
        let order = self.load_order(order_id).await?.ok_or_else(not_found)?;
        let placed = order.placed().ok_or_else(not_found)?;
        let event = self.load_known_event(placed.event_id).await?;
        if !caller.may_read_hold(&placed.customer_id, &event.definition) {
            return Err(CommandError::Forbidden(
                "an order is its customer's to read".into(),
            ));
        }
        self.order_view(&order).await
    }

    /// Cancels the caller's order (see the module policy); answers the order as it now stands.
    pub(crate) async fn run_cancel_order(
        &self,
        order_id: OrderId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<OrderView, CommandError> {
        let order = self
            .load_order(order_id)
            .await?
            .ok_or(CommandError::OrderNotFound(order_id))?;
        if order.placed().map(|p| &p.customer_id) != Some(&caller.customer) {
            return Err(CommandError::Forbidden(
                "an order is cancelled by its customer".into(),
            ));
        }
        let meta = ctx.metadata("CancelOrder", Some(&caller.customer));
        let result = self
            .store
            .execute::<Order>(&order_id.to_string(), &meta, || OrderCommand::Cancel {
                customer_id: caller.customer.clone(),
                now: Utc::now(),
            })
            .await;
        match result {
            Ok(()) => {}
            Err(StoreError::Rejected(domain::OrderError::WrongStatus(..))) => {
                return Err(CommandError::OrderNotCancellable(order_id))
            }
            Err(StoreError::Rejected(e)) => return Err(CommandError::Internal(e.to_string())),
            Err(e) => return Err(e.into()),
        }
        let order = self
            .load_order(order_id)
            .await?
            .ok_or(CommandError::OrderNotFound(order_id))?;
        self.order_view(&order).await
    }

    /// Records that the provider took the order's payment request (the relay calls this); a
    /// copy changes nothing.
    pub async fn record_payment_request(
        &self,
        order_id: OrderId,
        started: &crate::payments::PaymentStarted,
    ) -> Result<(), CommandError> {
        let ctx = RequestContext {
            correlation_id: format!("order-{order_id}"),
            id_seed: None,
        };
        let command = OrderCommand::RecordPaymentRequested {
            payment_intent: started.payment_intent.clone(),
            payment_url: started.payment_url.clone(),
            now: Utc::now(),
        };
        self.decide_order(order_id, &ctx, command).await
    }

    /// Records a verified provider notification on its order.
    pub(crate) async fn run_record_payment(
        &self,
        event: &WebhookEvent,
        ctx: &RequestContext,
    ) -> Result<(), CommandError> {
        let object = &event.data.object;
        let order_id = OrderId(object.order_id);
        let order = self.load_order(order_id).await?;
        let placed = order
            .as_ref()
            .and_then(Order::placed)
            .ok_or(CommandError::OrderNotFound(order_id))?;
        if object.amount_cents != placed.amount_cents || object.currency != placed.currency {
            tracing::error!(%order_id, provider_event = %event.id, "payment of another amount than the order's");
            return Err(CommandError::Invalid(vec![format!(
                "order {order_id} is for {} {}, the notification says {} {}",
                placed.amount_cents, placed.currency, object.amount_cents, object.currency
            )]));
        }
        let meta = ctx.metadata("RecordPayment", Some(&placed.customer_id));
        let id = &event.id;
        let result = self
            .store
            .execute::<Order>(&order_id.to_string(), &meta, || match event.kind {
                WebhookType::PaymentSucceeded => OrderCommand::RecordPaymentSucceeded {
                    provider_event_id: id.clone(),
                    payment_intent: Some(object.id.clone()),
                    now: Utc::now(),
                },
                WebhookType::PaymentFailed => OrderCommand::RecordPaymentFailed {
                    provider_event_id: id.clone(),
                    reason: object
                        .failure_reason
                        .clone()
                        .unwrap_or_else(|| "declined".into()),
                    now: Utc::now(),
                },
                WebhookType::RefundSucceeded => OrderCommand::RecordRefunded {
                    provider_event_id: id.clone(),
                    now: Utc::now(),
                },
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            // The news does not apply to the order as it stands (a refund nobody asked for):
            // received, kept in the log, changes nothing.
            Err(StoreError::Rejected(e)) => {
                tracing::warn!(%order_id, provider_event = %event.id, error = %e, "notification changes nothing");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn load_order(&self, order_id: OrderId) -> Result<Option<Order>, CommandError> {
        Ok(self.store.load_one::<Order>(&order_id.to_string()).await?)
    }

    async fn order_view(&self, order: &Order) -> Result<OrderView, CommandError> {
        let (Some(placed), Some(status)) = (order.placed(), order.status_at(Utc::now())) else {
            return Err(CommandError::Internal(
                "an order without its placement".into(),
            ));
        };
        let event = self.load_known_event(placed.event_id).await?;
        Ok(OrderView {
            order_id: placed.order_id.0,
            event_id: placed.event_id.0,
            customer_id: placed.customer_id.to_string(),
            status,
            holds: order.holds().iter().map(|h| h.0).collect(),
            seats: seat_views(&event, &placed.seats),
            amount_cents: placed.amount_cents,
            currency: placed.currency.clone(),
            payment_due: placed.payment_due,
            payment_key: placed.order_id.to_string(),
            payment_intent: order.payment_intent().map(str::to_owned),
            payment_url: order.payment_url().map(str::to_owned),
            refund_reason: order.refund_reason(),
        })
    }
}
