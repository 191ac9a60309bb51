//! Expiring holds and orders: the commands the sweeper runs for seat blocks with lapsed holds and
//! for orders whose payment is overdue.
//!
//! Policy: an unpaid order reads `expired` from its `payment_due` whatever is recorded; recording
//! `OrderExpired` tells its subscribers and lets the order process release its holds at once (a
//! payment arriving later is still taken, see `domain::order`). A lapsed hold already frees its
//! seats by the seat block's own rule; this records `HoldExpired`, for readers and so that the
//! block refuses any late booking of it. Recording it twice is a no-op. A booking of an expired hold that committed the allowance but not every block
//! is then taken back ([`crate::reconcile`]).

use chrono::Utc;
use domain::{OrderCommand, OrderId, SeatBlock, SeatBlockCommand};
use uuid::Uuid;

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::service::BookingService;
use crate::store::StoreError;

impl BookingService {
    /// Records `HoldExpired` for every hold whose time is up in the given blocks.
    pub async fn expire_holds(&self, block_ids: &[String]) -> Result<(), CommandError> {
        let ctx = RequestContext {
            correlation_id: format!("sweeper-{}", Uuid::new_v4()),
            id_seed: None,
        };
        let meta = ctx.metadata("ExpireHolds", None);
        let now = Utc::now();
        let due: Vec<domain::HoldId> = self
            .store
            .load::<SeatBlock>(block_ids)
            .await?
            .values()
            .flat_map(|block| block.lapsed_holds(now))
            .collect();
        for id in block_ids {
            self.store
                .execute::<SeatBlock>(id, &meta, || SeatBlockCommand::ExpireHolds {
                    now: Utc::now().max(now),
                })
                .await
                .map_err(|e| match e {
                    StoreError::Rejected(e) => CommandError::Internal(e.to_string()),
                    other => other.into(),
                })?;
        }
        for hold_id in due {
            self.settle_lapsed_booking(hold_id, &meta).await?;
        }
        Ok(())
    }

    /// Records `OrderExpired` for each order (a no-op for one paid meanwhile or not yet due).
    pub async fn expire_orders(&self, order_ids: &[OrderId]) -> Result<(), CommandError> {
        let ctx = RequestContext {
            correlation_id: format!("sweeper-{}", Uuid::new_v4()),
            id_seed: None,
        };
        for order_id in order_ids {
            let expire = OrderCommand::Expire { now: Utc::now() };
            self.decide_order(*order_id, &ctx, expire).await?;
        }
        Ok(())
    }
}
