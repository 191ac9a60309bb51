//! Settling an order after its payment's outcome: the order process's steps, in the core.
//!
//! Policy:
//! - Every step is idempotent and decided from the order's recorded status, so the process that
//!   calls [`BookingService::settle_order`] may do so any number of times, after any crash.
//! - `paid`: every hold of the order is booked for its customer (the booking path: allowance
//!   committed, then every block, all or nothing), then the order is confirmed. A hold that can
//!   no longer be booked (it expired, or was released when the payment first failed) is placed
//!   again on the same seats if they are still free (a new hold, its id derived from the order
//!   and the old hold, so a re-run finds it) and replaces the old one in the order
//!   (`HoldReplaced`); the payer keeps the seats. If the seats went to someone else, the holds
//!   already booked for the order are taken back, its holds released, and the order asks for a
//!   refund (`seats_lost`): an order is booked whole or not at all, and never oversold.
//! - `payment_failed`, `expired` or `cancelled`: the order's holds are released, so the seats go
//!   back on sale at once instead of at the holds' expiry.
//! - `refunded` after the customer cancelled a confirmed order: the money is back with the
//!   customer, so the bookings are taken back and the seats go on sale again.

use chrono::Utc;
use domain::{
    CustomerId, EventId, HoldId, HoldStatus, Order, OrderCommand, OrderId, OrderStatus,
    RefundReason, SeatRef,
};

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::service::BookingService;
use crate::store::StoreError;

/// How one hold of a paid order ended up.
enum Booked {
    Yes,
    /// Its seats went to someone else (or cannot be held again); why, for the log.
    Lost(CommandError),
}

impl BookingService {
    /// Brings an order's seats in line with its status (see the module policy).
    pub async fn settle_order(&self, order_id: OrderId) -> Result<(), CommandError> {
        let Some(order) = self.store.load_one::<Order>(&order_id.to_string()).await? else {
            return Err(CommandError::OrderNotFound(order_id));
        };
        let (Some(placed), Some(status)) = (order.placed(), order.status()) else {
            return Ok(());
        };
        let ctx = RequestContext {
            correlation_id: format!("order-{order_id}"),
            id_seed: None,
        };
        let customer = placed.customer_id.clone();
        let holds = order.holds();
        match status {
            OrderStatus::Paid => {
                let mut booked = Vec::new();
                for hold_id in &holds {
                    let booking = self
                        .book_for_order(order_id, placed.event_id, *hold_id, &customer, &ctx)
                        .await?;
                    match booking {
                        (Booked::Yes, now_held) => {
                            booked.push(now_held);
                            fail::fail_point!("settle.after_hold");
                        }
                        (Booked::Lost(why), _) => {
                            tracing::warn!(%order_id, %hold_id, reason = %why, "paid too late for its seats; refunding");
                            self.take_back_all(&booked, &customer, &ctx).await?;
                            let current = self.order_holds(order_id).await?;
                            self.release_all(&current, &customer, &ctx).await?;
                            let command = OrderCommand::RefundSeatsLost { now: Utc::now() };
                            return self.decide_order(order_id, &ctx, command).await;
                        }
                    }
                }
                fail::fail_point!("settle.before_confirm");
                self.decide_order(order_id, &ctx, OrderCommand::Confirm { now: Utc::now() })
                    .await
            }
            OrderStatus::PaymentFailed | OrderStatus::Expired | OrderStatus::Cancelled => {
                self.release_all(&holds, &customer, &ctx).await
            }
            OrderStatus::Refunded
                if order.refund_reason() == Some(RefundReason::CustomerCancelled) =>
            {
                self.take_back_all(&holds, &customer, &ctx).await
            }
            OrderStatus::PendingPayment
            | OrderStatus::Confirmed
            | OrderStatus::RefundPending
            | OrderStatus::Refunded => Ok(()),
        }
    }

    /// Books one hold of a paid order, placing it again on its seats when it lapsed (see the
    /// policy). Answers how it went and the hold that now stands for it in the order.
    async fn book_for_order(
        &self,
        order_id: OrderId,
        event_id: EventId,
        hold_id: HoldId,
        customer: &CustomerId,
        ctx: &RequestContext,
    ) -> Result<(Booked, HoldId), CommandError> {
        match self.run_book_hold(hold_id, customer.clone(), ctx).await {
            Ok(_) | Err(CommandError::HoldBooked(_)) => return Ok((Booked::Yes, hold_id)),
            Err(
                CommandError::HoldExpired(_)
                | CommandError::HoldReleased(_)
                | CommandError::HoldFailed(_),
            ) => {}
            Err(e) => return Err(e),
        }
        // The hold lapsed: hold its seats again if nobody took them.
        let located = self.locate(hold_id).await?;
        let seats: Vec<SeatRef> = located
            .entry
            .change
            .seats
            .iter()
            .map(|s| SeatRef::Id(s.0))
            .collect();
        let again = RequestContext {
            correlation_id: ctx.correlation_id.clone(),
            id_seed: Some(format!("rebook\n{order_id}\n{hold_id}")),
        };
        let view = match self
            .run_hold_seats(event_id, customer.clone(), seats.into(), &again)
            .await
        {
            Ok(view) if matches!(view.status, HoldStatus::Held | HoldStatus::Booked) => view,
            Ok(view) => {
                let why = CommandError::HoldExpired(HoldId(view.hold_id));
                return Ok((Booked::Lost(why), hold_id));
            }
            Err(e @ (CommandError::Unavailable(_) | CommandError::Contention)) => return Err(e),
            Err(e @ CommandError::Internal(_)) => return Err(e),
            Err(why) => return Ok((Booked::Lost(why), hold_id)),
        };
        let new_hold = HoldId(view.hold_id);
        let replace = OrderCommand::ReplaceHold {
            from: hold_id,
            to: new_hold,
            now: Utc::now(),
        };
        self.decide_order(order_id, ctx, replace).await?;
        tracing::info!(%order_id, old = %hold_id, new = %new_hold, "seats held again for a late payer");
        match self.run_book_hold(new_hold, customer.clone(), ctx).await {
            Ok(_) | Err(CommandError::HoldBooked(_)) => Ok((Booked::Yes, new_hold)),
            Err(
                why @ (CommandError::HoldExpired(_)
                | CommandError::HoldReleased(_)
                | CommandError::HoldFailed(_)),
            ) => Ok((Booked::Lost(why), new_hold)),
            Err(e) => Err(e),
        }
    }

    async fn order_holds(&self, order_id: OrderId) -> Result<Vec<HoldId>, CommandError> {
        let order = self.store.load_one::<Order>(&order_id.to_string()).await?;
        Ok(order.map(|o| o.holds()).unwrap_or_default())
    }

    /// Takes back the bookings of `holds` (their seats go back on sale).
    async fn take_back_all(
        &self,
        holds: &[HoldId],
        customer: &CustomerId,
        ctx: &RequestContext,
    ) -> Result<(), CommandError> {
        let meta = ctx.metadata("SettleOrder", Some(customer));
        for hold_id in holds {
            let located = self.locate(*hold_id).await?;
            let blocks: Vec<u32> = located
                .event
                .by_block(&located.entry.change.seats)
                .into_keys()
                .collect();
            self.take_back_booking(&located.event, &located.entry, &blocks, &meta)
                .await?;
        }
        Ok(())
    }

    /// Releases every hold of an order that is still releasable.
    async fn release_all(
        &self,
        holds: &[HoldId],
        customer: &CustomerId,
        ctx: &RequestContext,
    ) -> Result<(), CommandError> {
        for hold_id in holds {
            match self.run_release_hold(*hold_id, customer.clone(), ctx).await {
                Ok(_) | Err(CommandError::HoldBooked(_)) => {}
                Err(CommandError::Unavailable(e)) => return Err(CommandError::Unavailable(e)),
                Err(CommandError::Contention) => return Err(CommandError::Contention),
                Err(e) => tracing::debug!(%hold_id, error = %e, "nothing to release"),
            }
        }
        Ok(())
    }

    pub(crate) async fn decide_order(
        &self,
        order_id: OrderId,
        ctx: &RequestContext,
        command: OrderCommand,
    ) -> Result<(), CommandError> {
        let meta = ctx.metadata("SettleOrder", None);
        let result = self
            .store
            .execute::<Order>(&order_id.to_string(), &meta, || command.clone())
            .await;
        match result {
            Ok(()) => Ok(()),
            // Someone settled it meanwhile (another run of the process): nothing left to do.
            Err(StoreError::Rejected(e)) => {
                tracing::debug!(%order_id, error = %e, "order already settled");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
