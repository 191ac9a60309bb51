//! Mutations: every one goes through the application core's [`BookingCommands`], as REST does,
//! and answers with the core's own view, so a client sees its write at once.
//!
//! Policy for `idempotencyKey` (the core's one design, [`IdempotencyStore::once`], as REST's):
//! a key belongs to its caller, its mutation and its target (the event held in), so one key used by
//! two callers or on two events names two things; the first run's answer is stored and replayed
//! for 24 hours; the same key with other arguments is `idempotency_key_reused`.

use std::future::Future;

use async_graphql::{Context, Object, Result};
use booking::idempotency::{self, IdempotencyStore};
use booking::validation::{seat_choice, BestSeatsInput};
use booking::{Caller, CommandError, RequestContext, SeatChoice};
use domain::{EventId, HoldId, OrderId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::caller;
use crate::data::commands;
use crate::data::reads;
use crate::errors::from_command;
use crate::inputs::{CreateEventInput, SeatInput};
use crate::orders::Order;
use crate::schema::RequestMeta;
use crate::types::{Event, Hold};

/// The request context of a mutation: its correlation id (new ids are random).
fn request_context(ctx: &Context<'_>) -> RequestContext {
    let meta = ctx.data_opt::<RequestMeta>().cloned().unwrap_or_default();
    RequestContext {
        correlation_id: if meta.correlation_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            meta.correlation_id
        },
        id_seed: None,
    }
}

/// Runs a mutation, at most once per `key` when there is one (see the module's policy).
/// `arguments` describes the request, so a reused key with other arguments is told apart.
async fn idempotent<T, F, Fut>(
    ctx: &Context<'_>,
    caller: &Caller,
    mutation: &str,
    target: &str,
    key: Option<&str>,
    arguments: &str,
    run: F,
) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(RequestContext) -> Fut,
    Fut: Future<Output = Result<T, CommandError>>,
{
    let mut request = request_context(ctx);
    let Some(key) = key else {
        return run(request).await.map_err(from_command);
    };
    idempotency::check_key(key).map_err(from_command)?;
    let scoped = format!("{}\ngraphql\n{mutation}\n{target}\n{key}", caller.customer);
    let fingerprint = idempotency::fingerprint(&[mutation.as_bytes(), arguments.as_bytes()]);
    IdempotencyStore::new(reads(ctx).pool().clone())
        .once(&scoped, &fingerprint, move |seed| {
            request.id_seed = Some(seed);
            run(request)
        })
        .await
        .map_err(from_command)
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
        let arguments = format!("{draft:?}");
        let key = idempotency_key.as_deref();
        let view = idempotent(
            ctx,
            caller,
            "createEvent",
            "",
            key,
            &arguments,
            |request| async move { service.create_event(draft, caller, &request).await },
        )
        .await?;
        let known = service
            .known_event(EventId(view.id))
            .await
            .map_err(from_command)?;
        Ok(Event(known))
    }

    /// Holds seats for the caller (same rules as `POST /api/events/{id}/holds`): the `seats`
    /// named, or a `quantity` (1-10) of the best available seats, optionally `together` in one
    /// row and only in one `section` or `priceTier`.
    #[allow(clippy::too_many_arguments)]
    async fn hold_seats(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
        seats: Option<Vec<SeatInput>>,
        quantity: Option<u32>,
        together: Option<bool>,
        section: Option<String>,
        price_tier: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx)?;
        let best = BestSeatsInput {
            quantity,
            together,
            section,
            price_tier,
        };
        let refs = seat_choice(
            seats.map(|seats| seats.into_iter().map(SeatInput::into_core).collect()),
            best,
        )
        .map_err(from_command)?;
        let service = commands(ctx);
        // Named seats keep the fingerprint they had before best-available existed.
        let arguments = match &refs {
            SeatChoice::Named(seats) => format!("{seats:?}"),
            SeatChoice::Best(ask) => format!("{ask:?}"),
        };
        let target = event_id.to_string();
        let key = idempotency_key.as_deref();
        let view = idempotent(
            ctx,
            customer,
            "holdSeats",
            &target,
            key,
            &arguments,
            |request| async move {
                service
                    .hold_seats(EventId(event_id), customer, refs, &request)
                    .await
            },
        )
        .await?;
        Ok(Hold::from_view(&view))
    }

    /// Books a hold without payment (a complimentary ticket, for the hold's customer): for its
    /// event's organizer or an admin only; buyers use `placeOrder`. Booking twice is idempotent.
    async fn book_hold(&self, ctx: &Context<'_>, hold_id: Uuid) -> Result<Hold> {
        let customer = caller(ctx)?;
        let view = commands(ctx)
            .book_hold(HoldId(hold_id), customer, &request_context(ctx))
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Releases the caller's hold early; its seats are available at once.
    async fn release_hold(&self, ctx: &Context<'_>, hold_id: Uuid) -> Result<Hold> {
        let customer = caller(ctx)?;
        let view = commands(ctx)
            .release_hold(HoldId(hold_id), customer, &request_context(ctx))
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Places an order for the caller's live holds (1 to 10, of one event; same rules as
    /// `POST /api/orders`): the holds are kept until `paymentDue` while the payment is taken.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        hold_ids: Vec<Uuid>,
        idempotency_key: Option<String>,
    ) -> Result<Order> {
        let customer = caller(ctx)?;
        let service = commands(ctx);
        let arguments = format!("{hold_ids:?}");
        let key = idempotency_key.as_deref();
        let holds: Vec<HoldId> = hold_ids.into_iter().map(HoldId).collect();
        let view = idempotent(
            ctx,
            customer,
            "placeOrder",
            "",
            key,
            &arguments,
            |request| async move { service.place_order(holds, customer, &request).await },
        )
        .await?;
        Ok(Order::from_view(&view))
    }

    /// Cancels the caller's order: before payment its holds are released; once confirmed the
    /// payment is refunded, then its seats go back on sale. Cancelling again changes nothing.
    async fn cancel_order(&self, ctx: &Context<'_>, order_id: Uuid) -> Result<Order> {
        let customer = caller(ctx)?;
        let view = commands(ctx)
            .cancel_order(OrderId(order_id), customer, &request_context(ctx))
            .await
            .map_err(from_command)?;
        Ok(Order::from_view(&view))
    }
}
