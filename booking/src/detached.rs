//! Commands that run to completion whether or not their caller is still there.
//!
//! Policy: a web server drops a request's future when its client goes away (a disconnect, a
//! timeout), and a command dropped between two appends would leave its work half done: a hold
//! placed in one seat block of two, an allowance reserved for no hold. So every command of
//! [`RunToCompletion`] runs on a task of its own: the caller awaits it, but leaving stops only the
//! waiting, never the command, which finishes (or undoes its own partial work) as if the caller were
//! still there. Reads are not detached; dropping one changes nothing. The task keeps the request's
//! tracing span, so the command's trace stays whole.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use domain::SeatChoice;
use domain::{EventId, HoldId, KnownEvent, NewEvent};
use tracing::Instrument;

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::identity::Caller;
use crate::service::BookingCommands;
use crate::views::{EventView, HoldView, SeatMapView};

/// [`BookingCommands`] whose commands cannot be cancelled by their caller.
pub struct RunToCompletion(Arc<dyn BookingCommands>);

impl RunToCompletion {
    pub fn new(inner: Arc<dyn BookingCommands>) -> Self {
        Self(inner)
    }
}

/// Runs `command` on its own task and waits for it.
async fn detach<T: Send + 'static>(
    command: impl Future<Output = Result<T, CommandError>> + Send + 'static,
) -> Result<T, CommandError> {
    tokio::spawn(command.in_current_span())
        .await
        .unwrap_or_else(|e| Err(CommandError::Internal(format!("command task failed: {e}"))))
}

#[async_trait]
impl BookingCommands for RunToCompletion {
    async fn event(&self, event_id: EventId) -> Result<EventView, CommandError> {
        self.0.event(event_id).await
    }

    async fn known_event(&self, event_id: EventId) -> Result<Arc<KnownEvent>, CommandError> {
        self.0.known_event(event_id).await
    }

    async fn seat_map(&self, event_id: EventId) -> Result<SeatMapView, CommandError> {
        self.0.seat_map(event_id).await
    }

    async fn projected_seat_map(
        &self,
        event_id: EventId,
        seats: String,
    ) -> Result<SeatMapView, CommandError> {
        self.0.projected_seat_map(event_id, seats).await
    }

    async fn hold(&self, hold_id: HoldId, caller: &Caller) -> Result<HoldView, CommandError> {
        self.0.hold(hold_id, caller).await
    }

    async fn create_event(
        &self,
        draft: NewEvent,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<EventView, CommandError> {
        let (inner, caller, ctx) = (self.0.clone(), caller.clone(), ctx.clone());
        detach(async move { inner.create_event(draft, &caller, &ctx).await }).await
    }

    async fn hold_seats(
        &self,
        event_id: EventId,
        caller: &Caller,
        seats: SeatChoice,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let (inner, caller, ctx) = (self.0.clone(), caller.clone(), ctx.clone());
        detach(async move { inner.hold_seats(event_id, &caller, seats, &ctx).await }).await
    }

    async fn book_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let (inner, caller, ctx) = (self.0.clone(), caller.clone(), ctx.clone());
        detach(async move { inner.book_hold(hold_id, &caller, &ctx).await }).await
    }

    async fn release_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let (inner, caller, ctx) = (self.0.clone(), caller.clone(), ctx.clone());
        detach(async move { inner.release_hold(hold_id, &caller, &ctx).await }).await
    }

    async fn place_order(
        &self,
        hold_ids: Vec<HoldId>,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<crate::orders::OrderView, CommandError> {
        let (inner, caller, ctx) = (self.0.clone(), caller.clone(), ctx.clone());
        detach(async move { inner.place_order(hold_ids, &caller, &ctx).await }).await
    }

    async fn order(
        &self,
        order_id: domain::OrderId,
        caller: &Caller,
    ) -> Result<crate::orders::OrderView, CommandError> {
        self.0.order(order_id, caller).await
    }

    async fn cancel_order(
        &self,
        order_id: domain::OrderId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<crate::orders::OrderView, CommandError> {
        let (inner, caller, ctx) = (self.0.clone(), caller.clone(), ctx.clone());
        detach(async move { inner.cancel_order(order_id, &caller, &ctx).await }).await
    }

    async fn record_payment(
        &self,
        event: crate::payments::WebhookEvent,
        ctx: &RequestContext,
    ) -> Result<(), CommandError> {
        let (inner, ctx) = (self.0.clone(), ctx.clone());
        detach(async move { inner.record_payment(event, &ctx).await }).await
    }
}
