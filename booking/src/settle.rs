//! Settling an order after its payment's outcome: the order process's steps, in the core.
//!
//! Policy:
//! - Every step is idempotent and decided from the order's recorded status, so the process that
//!   calls [`BookingService::settle_order`] may do so any number of times, after any crash.
//! - `paid`: every hold of the order is booked for its customer (the booking path: allowance
//!   committed, then every block, all or nothing), then the order is confirmed. An order is booked
//!   whole or not at all: if a hold can no longer be booked (it expired before the money arrived),
//!   the holds already booked for it are taken back, its holds released, and the order asks for a
//!   refund (`seats_lost`). Rebooking seats that are still free is not done yet: such an order is
//!   refunded too.
//! - `payment_failed`, `expired` or `cancelled`: the order's holds are released, so the seats go
//!   back on sale at once instead of at the holds' expiry.

use chrono::Utc;
use domain::{HoldId, Order, OrderCommand, OrderId, OrderStatus};

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::service::BookingService;
use crate::store::StoreError;

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
        match status {
            OrderStatus::Paid => {
                let mut lost = None;
                let mut booked = Vec::new();
                for hold_id in &placed.holds {
                    match self.run_book_hold(*hold_id, customer.clone(), &ctx).await {
                        Ok(_) | Err(CommandError::HoldBooked(_)) => booked.push(*hold_id),
                        Err(
                            e @ (CommandError::HoldExpired(_)
                            | CommandError::HoldReleased(_)
                            | CommandError::HoldFailed(_)),
                        ) => {
                            lost = Some((*hold_id, e));
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                let command = match lost {
                    None => OrderCommand::Confirm { now: Utc::now() },
                    Some((hold_id, why)) => {
                        tracing::warn!(%order_id, %hold_id, reason = %why, "paid too late for its seats; refunding");
                        let meta = ctx.metadata("SettleOrder", Some(&customer));
                        for booked_hold in booked {
                            let located = self.locate(booked_hold).await?;
                            let blocks: Vec<u32> = located
                                .event
                                .by_block(&located.entry.change.seats)
                                .into_keys()
                                .collect();
                            self.take_back_booking(&located.event, &located.entry, &blocks, &meta)
                                .await?;
                        }
                        self.release_all(&placed.holds, &customer, &ctx).await?;
                        OrderCommand::RefundSeatsLost { now: Utc::now() }
                    }
                };
                self.decide_order(order_id, &ctx, command).await
            }
            OrderStatus::PaymentFailed | OrderStatus::Expired | OrderStatus::Cancelled => {
                self.release_all(&placed.holds, &customer, &ctx).await
            }
            OrderStatus::PendingPayment
            | OrderStatus::Confirmed
            | OrderStatus::RefundPending
            | OrderStatus::Refunded => Ok(()),
        }
    }

    /// Releases every hold of an order that is still releasable.
    async fn release_all(
        &self,
        holds: &[HoldId],
        customer: &domain::CustomerId,
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

    async fn decide_order(
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
