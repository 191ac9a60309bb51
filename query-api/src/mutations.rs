//! Mutations: every one goes through the application core's [`BookingCommands`], as REST does,
//! and answers with the core's own view, so a client sees its write at once.

use std::sync::Arc;

use async_graphql::{Context, Object, Result};
use booking::validation::{self, seat_refs};
use booking::{BookingCommands, RequestContext};
use domain::{EventId, HoldId};
use uuid::Uuid;

use crate::errors::from_command;
use crate::inputs::{CreateEventInput, SeatInput};
use crate::schema::RequestMeta;
use crate::types::{Event, Hold};

fn request_context(ctx: &Context<'_>, mutation: &str, key: Option<&str>) -> RequestContext {
    let meta = ctx.data_opt::<RequestMeta>().cloned().unwrap_or_default();
    RequestContext {
        correlation_id: if meta.correlation_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            meta.correlation_id
        },
        id_seed: key.map(|k| format!("graphql\n{mutation}\n{k}")),
    }
}

/// The customer from the `X-Customer-Id` header and/or the `customerId` argument.
fn caller(ctx: &Context<'_>, given: Option<&str>) -> Result<domain::CustomerId> {
    let header = ctx
        .data_opt::<RequestMeta>()
        .and_then(|m| m.headers.get(validation::CUSTOMER_HEADER))
        .map(|v| v.as_bytes());
    validation::customer_id(header, given).map_err(from_command)
}

pub(crate) fn commands<'a>(ctx: &Context<'a>) -> &'a dyn BookingCommands {
    ctx.data_unchecked::<Arc<dyn BookingCommands>>().as_ref()
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a ticketed event (same rules as `POST /api/events`).
    async fn create_event(
        &self,
        ctx: &Context<'_>,
        input: CreateEventInput,
        idempotency_key: Option<String>,
    ) -> Result<Event> {
        let draft = input
            .into_request()
            .into_new_event()
            .map_err(from_command)?;
        let service = commands(ctx);
        let ctx_ = request_context(ctx, "createEvent", idempotency_key.as_deref());
        let view = service
            .create_event(draft, &ctx_)
            .await
            .map_err(from_command)?;
        let known = service
            .known_event(EventId(view.id))
            .await
            .map_err(from_command)?;
        Ok(Event(known))
    }

    /// Holds seats for a customer (same rules as `POST /api/events/{id}/holds`). The customer is
    /// `customerId` or the `X-Customer-Id` header.
    async fn hold_seats(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
        customer_id: Option<String>,
        seats: Vec<SeatInput>,
        idempotency_key: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx, customer_id.as_deref())?;
        let refs = seat_refs(seats.into_iter().map(SeatInput::into_core).collect())
            .map_err(from_command)?;
        let ctx_ = request_context(ctx, "holdSeats", idempotency_key.as_deref());
        let view = commands(ctx)
            .hold_seats(EventId(event_id), customer, refs, &ctx_)
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Books a held hold; booking twice is idempotent.
    async fn book_hold(
        &self,
        ctx: &Context<'_>,
        hold_id: Uuid,
        customer_id: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx, customer_id.as_deref())?;
        let view = commands(ctx)
            .book_hold(
                HoldId(hold_id),
                customer,
                &request_context(ctx, "bookHold", None),
            )
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Releases a hold early; its seats are available at once.
    async fn release_hold(
        &self,
        ctx: &Context<'_>,
        hold_id: Uuid,
        customer_id: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx, customer_id.as_deref())?;
        let view = commands(ctx)
            .release_hold(
                HoldId(hold_id),
                customer,
                &request_context(ctx, "releaseHold", None),
            )
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }
}
