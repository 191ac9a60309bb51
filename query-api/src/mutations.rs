//! Mutations: every one goes through the application core's [`BookingCommands`], as REST does,
//! and answers with the core's own view, so a client sees its write at once.

use std::sync::Arc;

use async_graphql::{Context, Object, Result};
use booking::validation::seat_refs;
use booking::{BookingCommands, RequestContext};
use domain::{EventId, HoldId};
use uuid::Uuid;

use crate::auth::caller;
use crate::errors::from_command;
use crate::inputs::{CreateEventInput, SeatInput};
use crate::schema::RequestMeta;
use crate::types::{Event, Hold};

/// The request context of a mutation. An `idempotencyKey` seeds new ids within the caller's and
/// the target's scope, so one key used by two callers, or on two events, names different things.
fn request_context(
    ctx: &Context<'_>,
    mutation: &str,
    scope: &str,
    key: Option<&str>,
) -> RequestContext {
    let meta = ctx.data_opt::<RequestMeta>().cloned().unwrap_or_default();
    RequestContext {
        correlation_id: if meta.correlation_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            meta.correlation_id
        },
        id_seed: key.map(|k| format!("graphql\n{mutation}\n{scope}\n{k}")),
    }
}

pub(crate) fn commands<'a>(ctx: &Context<'a>) -> &'a dyn BookingCommands {
    ctx.data_unchecked::<Arc<dyn BookingCommands>>().as_ref()
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a ticketed event managed by the caller, an organizer (same rules as
    /// `POST /api/events`).
    async fn create_event(
        &self,
        ctx: &Context<'_>,
        input: CreateEventInput,
        idempotency_key: Option<String>,
    ) -> Result<Event> {
        let caller = caller(ctx)?;
        let draft = input
            .into_request()
            .into_new_event()
            .map_err(from_command)?;
        let service = commands(ctx);
        let ctx_ = request_context(
            ctx,
            "createEvent",
            caller.customer.as_str(),
            idempotency_key.as_deref(),
        );
        let view = service
            .create_event(draft, caller, &ctx_)
            .await
            .map_err(from_command)?;
        let known = service
            .known_event(EventId(view.id))
            .await
            .map_err(from_command)?;
        Ok(Event(known))
    }

    /// Holds seats for the caller (same rules as `POST /api/events/{id}/holds`).
    async fn hold_seats(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
        seats: Vec<SeatInput>,
        idempotency_key: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx)?;
        let refs = seat_refs(seats.into_iter().map(SeatInput::into_core).collect())
            .map_err(from_command)?;
        let ctx_ = request_context(
            ctx,
            "holdSeats",
            &format!("{}\n{event_id}", customer.customer),
            idempotency_key.as_deref(),
        );
        let view = commands(ctx)
            .hold_seats(EventId(event_id), customer, refs, &ctx_)
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Books the caller's held hold; booking twice is idempotent.
    async fn book_hold(&self, ctx: &Context<'_>, hold_id: Uuid) -> Result<Hold> {
        let customer = caller(ctx)?;
        let view = commands(ctx)
            .book_hold(
                HoldId(hold_id),
                customer,
                &request_context(ctx, "bookHold", "", None),
            )
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Releases the caller's hold early; its seats are available at once.
    async fn release_hold(&self, ctx: &Context<'_>, hold_id: Uuid) -> Result<Hold> {
        let customer = caller(ctx)?;
        let view = commands(ctx)
            .release_hold(
                HoldId(hold_id),
                customer,
                &request_context(ctx, "releaseHold", "", None),
            )
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }
}
