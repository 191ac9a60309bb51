//! Reconciling a customer's allowance with the seat blocks: a booking whose server stopped between
//! committing the allowance and booking the blocks left seats counted against the customer that
//! nobody owns.
//!
//! Policy: when a hold is refused for the customer's limit, the core looks at the allowance's
//! committed holds that expired more than [`GRACE`] ago (no booking still running can be that
//! late: every step of a command is bounded by the store's lock wait and statement timeout). One
//! that no seat block shows booked never became a booking: its allowance is returned
//! (`BookingFailed`) and the hold is tried again, once. A booking that reached any block keeps
//! its allowance.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use domain::{CustomerAllowance, HoldProgress, KnownEvent, ReturnReason, SeatBlock};

use crate::error::CommandError;
use crate::service::BookingService;

/// How long after a hold's expiry a committed, unbooked allowance is taken as abandoned.
pub const GRACE: Duration = Duration::minutes(2);

impl BookingService {
    /// Returns the allowance of abandoned bookings; whether anything was returned.
    pub(crate) async fn reconcile_allowance(
        &self,
        event: &KnownEvent,
        allowance_id: &str,
        meta: &HashMap<String, String>,
    ) -> Result<bool, CommandError> {
        let Some(allowance) = self
            .store
            .load::<CustomerAllowance>(&[allowance_id.to_owned()])
            .await?
            .remove(allowance_id)
        else {
            return Ok(false);
        };
        let mut returned = false;
        for entry in allowance.committed_expired_before(Utc::now() - GRACE) {
            let hold_id = entry.change.hold_id;
            let ids: Vec<String> = event
                .by_block(&entry.change.seats)
                .into_keys()
                .map(|b| event.block_id(b))
                .collect();
            let blocks = self.store.load::<SeatBlock>(&ids).await?;
            let booked = blocks.values().any(|b| {
                b.hold(hold_id)
                    .is_some_and(|h| h.progress == HoldProgress::Booked)
            });
            if booked {
                continue;
            }
            tracing::warn!(%hold_id, "allowance of a booking that never finished returned");
            self.return_allowance(allowance_id, hold_id, ReturnReason::BookingFailed, meta)
                .await?;
            returned = true;
        }
        Ok(returned)
    }
}
