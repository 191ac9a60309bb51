//! Expiring holds: the command the sweeper runs for seat blocks with lapsed holds.
//!
//! Policy: a lapsed hold already frees its seats by the seat block's own rule; this only records
//! `HoldExpired`, for readers. Recording it twice is a no-op.

use chrono::Utc;
use domain::{SeatBlock, SeatBlockCommand};
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
        for id in block_ids {
            self.store
                .execute::<SeatBlock>(id, &meta, || SeatBlockCommand::ExpireHolds {
                    now: Utc::now(),
                })
                .await
                .map_err(|e| match e {
                    StoreError::Rejected(e) => CommandError::Internal(e.to_string()),
                    other => other.into(),
                })?;
        }
        Ok(())
    }
}
