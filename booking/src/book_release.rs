//! Booking a hold (the allowance is committed first, then every block books at one decision
//! instant) and releasing one (every block frees its seats, then the allowance is given back).
//! Only the hold's own customer may release it. A booking is for the hold's customer, made by the
//! order process once they paid, or directly by the event's organizer as a complimentary ticket.
//!
//! Policy: a booking is all or nothing, like a hold. Blocks are booked in order at the decision
//! instant; a block may still refuse (the hold's expiry was recorded there first, or its seats went
//! to the next buyer). Then the blocks that booked are undone (`BookingUndone`), the allowance is
//! returned (`BookingFailed`) and the caller hears why; the hold ends expired with every seat
//! free. A booking whose server stopped part way is finished the same way by the allowance
//! reconciliation ([`crate::reconcile`]), from the decision instant the allowance recorded.

use std::collections::HashMap;

use chrono::Utc;
use domain::{
    AllowanceError, AllowanceState, CustomerAllowance, CustomerAllowanceCommand, CustomerId,
    HoldId, HoldStatus, KnownEvent, ReturnReason, SeatBlock, SeatBlockCommand, SeatBlockError,
};

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::reads::LocatedHold;
use crate::service::BookingService;
use crate::store::StoreError;
use crate::views::{hold_view, HoldView};

/// `NotHoldOwner` unless `customer_id` placed the hold.
pub(crate) fn owned_by(
    located: &LocatedHold,
    customer_id: &CustomerId,
) -> Result<(), CommandError> {
    if &located.entry.change.customer_id != customer_id {
        return Err(CommandError::NotHoldOwner(located.entry.change.hold_id));
    }
    Ok(())
}

/// Why the allowance refused to commit, as the caller should hear it.
fn commit_refused(
    e: StoreError<AllowanceError>,
    located: &LocatedHold,
    hold_id: HoldId,
) -> CommandError {
    match e {
        StoreError::Rejected(AllowanceError::HoldExpired(_)) => CommandError::HoldExpired(hold_id),
        StoreError::Rejected(AllowanceError::HoldNotFound(_)) => {
            CommandError::HoldNotFound(hold_id)
        }
        StoreError::Rejected(AllowanceError::HoldClosed(_)) => match located.entry.state {
            AllowanceState::Returned(ReturnReason::Released) => CommandError::HoldReleased(hold_id),
            AllowanceState::Returned(ReturnReason::HoldFailed) => CommandError::HoldFailed(hold_id),
            _ => CommandError::HoldExpired(hold_id),
        },
        other => other.into(),
    }
}

/// Why a seat block refused to book, as the caller should hear it.
fn booking_refused(e: SeatBlockError, hold_id: HoldId) -> CommandError {
    match e {
        SeatBlockError::HoldReleased(_) => CommandError::HoldReleased(hold_id),
        SeatBlockError::HoldExpired(_) => CommandError::HoldExpired(hold_id),
        SeatBlockError::HoldNotFound(_) => CommandError::HoldFailed(hold_id),
        SeatBlockError::NotHoldOwner(_) => CommandError::NotHoldOwner(hold_id),
        e => CommandError::Internal(e.to_string()),
    }
}

impl BookingService {
    /// Books a hold as a complimentary ticket, for the hold's customer: only a manager of the
    /// hold's event may (buyers pay through an order, `crate::orders`).
    pub(crate) async fn run_book_comp(
        &self,
        hold_id: HoldId,
        caller: &crate::Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        if !caller.manages(&located.event.definition) {
            let own = located.entry.change.customer_id == caller.customer;
            return Err(CommandError::Forbidden(if own {
                "a hold is bought through an order (POST /api/orders); booking one directly is for its event's organizer (complimentary tickets)".into()
            } else {
                "only the event's organizer books holds without payment".into()
            }));
        }
        let customer = located.entry.change.customer_id.clone();
        self.run_book_hold(hold_id, customer, ctx).await
    }

    #[tracing::instrument(name = "book_hold", skip_all, fields(%hold_id, %customer_id, correlation_id = %ctx.correlation_id))]
    pub(crate) async fn run_book_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        let decided_at = Utc::now();
        if let Err(not_owner) = owned_by(&located, &customer_id) {
            let current = self.located_hold_view(&located, decided_at).await?;
            return Err(match current.status {
                HoldStatus::Booked => CommandError::HoldBooked(hold_id),
                _ => not_owner,
            });
        }
        let event = &located.event;
        let meta = ctx.metadata("BookHold", Some(&customer_id));
        self.store
            .execute::<CustomerAllowance>(&located.allowance_id, &meta, || {
                CustomerAllowanceCommand::Commit {
                    hold_id,
                    decided_at,
                }
            })
            .await
            .map_err(|e| commit_refused(e, &located, hold_id))?;

        self.book_blocks(event, &located.entry, decided_at, &meta)
            .await?;
        let change = &located.entry.change;
        Ok(hold_view(
            event,
            hold_id,
            &customer_id,
            &change.seats,
            change.expires_at,
            HoldStatus::Booked,
        ))
    }

    /// Books every block of a committed hold at `decided_at`, or none of them (see the policy).
    pub(crate) async fn book_blocks(
        &self,
        event: &KnownEvent,
        entry: &domain::AllowanceEntry,
        decided_at: chrono::DateTime<Utc>,
        meta: &HashMap<String, String>,
    ) -> Result<(), CommandError> {
        let (hold_id, customer_id) = (entry.change.hold_id, &entry.change.customer_id);
        let mut booked = Vec::new();
        for block in event.by_block(&entry.change.seats).into_keys() {
            let result = self
                .store
                .execute::<SeatBlock>(&event.block_id(block), meta, || {
                    SeatBlockCommand::BookHold {
                        hold_id,
                        customer_id: customer_id.clone(),
                        decided_at,
                    }
                })
                .await;
            let error = match result {
                Ok(()) => {
                    booked.push(block);
                    continue;
                }
                Err(StoreError::Rejected(e)) => booking_refused(e, hold_id),
                // Unknown outcome: leave it to the reconciliation, which finishes or undoes it.
                Err(e) => return Err(e.into()),
            };
            if !booked.is_empty() {
                tracing::warn!(%hold_id, error = %error, blocks = booked.len(), "booking refused part way; undoing it");
            }
            self.take_back_booking(event, entry, &booked, meta).await?;
            return Err(error);
        }
        Ok(())
    }

    /// Undoes a booking in the given blocks and returns its allowance (`BookingFailed`).
    pub(crate) async fn take_back_booking(
        &self,
        event: &KnownEvent,
        entry: &domain::AllowanceEntry,
        blocks: &[u32],
        meta: &HashMap<String, String>,
    ) -> Result<(), CommandError> {
        let hold_id = entry.change.hold_id;
        let internal = |e: String| CommandError::Internal(e);
        for block in blocks {
            self.store
                .execute::<SeatBlock>(&event.block_id(*block), meta, || {
                    SeatBlockCommand::UndoBooking {
                        hold_id,
                        now: Utc::now(),
                    }
                })
                .await
                .map_err(|e| match e {
                    StoreError::Rejected(e) => internal(e.to_string()),
                    other => other.into(),
                })?;
        }
        let allowance_id =
            CustomerAllowance::aggregate_id(entry.change.event_id, &entry.change.customer_id);
        self.return_allowance(&allowance_id, hold_id, ReturnReason::BookingFailed, meta)
            .await
            .map_err(|e| match e {
                StoreError::Rejected(e) => internal(e.to_string()),
                other => other.into(),
            })
    }

    #[tracing::instrument(name = "release_hold", skip_all, fields(%hold_id, %customer_id, correlation_id = %ctx.correlation_id))]
    pub(crate) async fn run_release_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        owned_by(&located, &customer_id)?;
        let event = &located.event;
        let meta = ctx.metadata("ReleaseHold", Some(&customer_id));
        for block in event.by_block(&located.entry.change.seats).into_keys() {
            let result = self
                .store
                .execute::<SeatBlock>(&event.block_id(block), &meta, || {
                    SeatBlockCommand::ReleaseHold {
                        hold_id,
                        customer_id: customer_id.clone(),
                        now: Utc::now(),
                    }
                })
                .await;
            match result {
                // A block that never got the hold (failed or interrupted hold) has nothing to free.
                Ok(()) | Err(StoreError::Rejected(SeatBlockError::HoldNotFound(_))) => {}
                Err(StoreError::Rejected(SeatBlockError::AlreadyBooked(_))) => {
                    return Err(CommandError::HoldBooked(hold_id))
                }
                Err(StoreError::Rejected(e)) => return Err(CommandError::Internal(e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        self.return_allowance(
            &located.allowance_id,
            hold_id,
            ReturnReason::Released,
            &meta,
        )
        .await
        .map_err(|e| match e {
            StoreError::Rejected(e) => CommandError::Internal(e.to_string()),
            other => other.into(),
        })?;
        self.located_hold_view(&located, Utc::now()).await
    }

    /// Gives a hold's seats back to the customer's allowance.
    pub(crate) async fn return_allowance(
        &self,
        allowance_id: &str,
        hold_id: HoldId,
        reason: ReturnReason,
        meta: &HashMap<String, String>,
    ) -> Result<(), StoreError<AllowanceError>> {
        self.store
            .execute::<CustomerAllowance>(allowance_id, meta, || CustomerAllowanceCommand::Return {
                hold_id,
                reason,
                now: Utc::now(),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn each_block_refusal_is_told_as_the_holds_own_state() {
        let hold = HoldId(Uuid::from_u128(1));
        let cases = [
            (SeatBlockError::HoldReleased(hold), "hold_released"),
            (SeatBlockError::HoldExpired(hold), "hold_expired"),
            (SeatBlockError::HoldNotFound(hold), "hold_failed"),
            (SeatBlockError::NotHoldOwner(hold), "not_hold_owner"),
            (SeatBlockError::NoSeats, "internal_error"),
        ];
        for (refusal, code) in cases {
            assert_eq!(booking_refused(refusal, hold).code(), code);
        }
    }
}
