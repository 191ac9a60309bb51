//! Linked appends: a hold's allowance reservation commits in the same transaction as its first
//! seat block's events: one commit and one wait per hold, not two.
//!
//! Policy:
//! - Two writers ([`crate::writers`]) each decide on the state they own: the customer's allowance
//!   reserves the seats, the seat block holds them. Their appends are one unit of the group commit
//!   ([`crate::group_commit::GroupCommit::append_unit`]): written together or not at all, so a
//!   crash leaves both or neither and the allowance never counts fewer seats than are held (the
//!   domain's rule; before, the allowance committed first, one commit earlier).
//! - The allowance's writer decides the reservation alone in its batch and, instead of
//!   committing it, hands its append over as a [`Rider`] and waits for the [`RideOutcome`]. It
//!   decides nothing else meanwhile (one group commit at most).
//! - The caller gives the rider to the block's command ([`crate::writers::Writers::execute_carrying`]).
//!   The block's writer adds it to its own append when that command wrote events; otherwise
//!   (refused, nothing to do, queue full) the rider is cancelled and nothing of it is written.
//! - Outcomes: committed; lost (the allowance's version was taken, by another process or because
//!   its writer assumed it new: the allowance's writer reloads, the block's writer decides its
//!   other commands again from the state before the batch, and the caller may try again);
//!   cancelled (nothing written; the allowance's state is as before); unknown (the transaction's
//!   outcome is unknown: the allowance's writer reloads before its next decision).
//! - A rider dropped without an outcome (a panic in the block's writer) counts as unknown, never
//!   as committed.

use tokio::sync::oneshot;

use crate::group_commit::Append;

/// What became of a rider's append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RideOutcome {
    Committed,
    Lost,
    Cancelled,
    Unknown(String),
}

/// One writer's decided append, to be committed with another writer's (see the module policy).
pub struct Rider {
    pub(crate) append: Append,
    outcome: Option<oneshot::Sender<RideOutcome>>,
}

impl Rider {
    pub(crate) fn new(append: Append) -> (Self, oneshot::Receiver<RideOutcome>) {
        let (tx, rx) = oneshot::channel();
        let rider = Self {
            append,
            outcome: Some(tx),
        };
        (rider, rx)
    }

    /// Tells the rider's writer what became of its append.
    pub(crate) fn finish(mut self, outcome: RideOutcome) {
        if let Some(tx) = self.outcome.take() {
            let _ = tx.send(outcome);
        }
    }
}

impl Drop for Rider {
    fn drop(&mut self) {
        if let Some(tx) = self.outcome.take() {
            let _ = tx.send(RideOutcome::Unknown(
                "the linked writer dropped the append".into(),
            ));
        }
    }
}

impl std::fmt::Debug for Rider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rider")
            .field("events", &self.append.events.len())
            .finish()
    }
}

/// How a writer's queued command is linked to another writer's.
#[derive(Default)]
pub(crate) enum Link {
    #[default]
    None,
    /// Its events, if it writes any, are handed over through this channel instead of committed.
    Rides(oneshot::Sender<Rider>),
    /// Another writer's append commits with this command's events, if it writes any.
    Carries(Rider),
}

impl Link {
    pub(crate) fn rides(&self) -> bool {
        matches!(self, Self::Rides(_))
    }

    /// The carried rider, if any, taken out (the link becomes `None`).
    pub(crate) fn take_rider(&mut self) -> Option<Rider> {
        match std::mem::take(self) {
            Self::Carries(rider) => Some(rider),
            other => {
                *self = other;
                None
            }
        }
    }
}
