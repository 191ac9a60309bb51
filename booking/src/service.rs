//! The booking command service: the one place where commands are decided, for REST and GraphQL
//! alike (both call [`BookingCommands`]). Its steps live in files named for them:
//! [`crate::place_hold`], [`crate::book_release`], [`crate::reads`], [`crate::expiry`].
//!
//! Policy:
//! - A hold is placed in steps, each an atomic append: reserve the customer's allowance with the
//!   seats of the first block (one transaction: [`crate::linked`]), then hold the seats of the
//!   other blocks block by block (in block order, so concurrent multi-block holds cannot deadlock
//!   each other into endless conflicts). If any block refuses, every block already taken is
//!   released and the allowance returned before answering: from the customer's view a hold is all
//!   or nothing. The common hold (seats of one row) touches one block and is a single append.
//! - A booking commits the allowance first, then books every block, all judged at one decision
//!   instant. A hold that had expired at that instant cannot be booked.
//! - With an idempotency seed, the new event's or hold's id is derived from it, so a request
//!   re-run after a crash lands on the same aggregate and is a no-op there.
//! - Who may do what ([`crate::identity`]) is checked here and nowhere else: the customer of a
//!   command is the caller's token subject; only the hold's customer may release it or buy it
//!   (through an order, [`crate::orders`]); booking a hold without payment is a complimentary
//!   ticket, for its event's organizer (or an admin) only; only organizers create events, which
//!   they then manage.
//! - Every command is counted by outcome (`seatgrid_commands_total{command, outcome}`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use domain::SeatChoice;
use domain::{
    EventCatalog, EventDefinition, EventId, EventPolicy, HoldId, KnownEvent, NewEvent, OrderId,
    TicketedEvent, TicketedEventCommand, TicketedEventError,
};

use crate::admission::Admission;
use crate::cold_reads::ColdReads;
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::identity::{Caller, Role};
use crate::payments::WebhookEvent;
use crate::picker::Picker;
use crate::store::{EventStore, StoreError};
use crate::views::{EventView, HoldView, OrderView, SeatMapView};

/// The commands of the booking path, and the reads that must never be behind. REST handlers and
/// GraphQL resolvers call only this.
#[async_trait]
pub trait BookingCommands: Send + Sync {
    /// A ticketed event as created.
    async fn event(&self, event_id: EventId) -> Result<EventView, CommandError>;
    /// A ticketed event with its layout index (kept in the process's catalog).
    async fn known_event(&self, event_id: EventId) -> Result<Arc<KnownEvent>, CommandError>;
    /// Every seat's status now, from the event store.
    async fn seat_map(&self, event_id: EventId) -> Result<SeatMapView, CommandError>;
    /// A seat map the read side projected (`seats` in the compact encoding), as a view.
    async fn projected_seat_map(
        &self,
        event_id: EventId,
        seats: String,
    ) -> Result<SeatMapView, CommandError>;
    /// A hold's status now, from the event store, for its customer or its event's manager.
    async fn hold(&self, hold_id: HoldId, caller: &Caller) -> Result<HoldView, CommandError>;

    /// A new ticketed event, managed by `caller` (an organizer or admin).
    async fn create_event(
        &self,
        draft: NewEvent,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<EventView, CommandError>;
    /// Holds seats for the caller: the seats named, or the best available
    /// ([`crate::best_seats`]).
    async fn hold_seats(
        &self,
        event_id: EventId,
        caller: &Caller,
        seats: SeatChoice,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError>;
    /// Books a hold without payment (a complimentary ticket): only its event's organizer or an
    /// admin may; buyers pay through an order.
    async fn book_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError>;
    /// Releases the caller's own hold.
    async fn release_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError>;
    /// Places an order for the caller's live holds (see [`crate::orders`]).
    async fn place_order(
        &self,
        hold_ids: Vec<HoldId>,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<OrderView, CommandError>;
    /// An order, for its customer or its event's manager.
    async fn order(&self, order_id: OrderId, caller: &Caller) -> Result<OrderView, CommandError>;
    /// Cancels the caller's order: before payment, or after confirmation (refunded).
    async fn cancel_order(
        &self,
        order_id: OrderId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<OrderView, CommandError>;
    /// Records a payment provider's notification, whose signature the adapter has verified.
    async fn record_payment(
        &self,
        event: WebhookEvent,
        ctx: &RequestContext,
    ) -> Result<(), CommandError>;
}

/// The event-sourced implementation of [`BookingCommands`], plus the reads served straight from
/// the event store.
pub struct BookingService {
    pub(crate) store: EventStore,
    policy: EventPolicy,
    catalog: Arc<EventCatalog>,
    pub(crate) admission: Admission,
    pub(crate) picker: Picker,
    pub(crate) cold_reads: ColdReads,
}

impl BookingService {
    pub fn new(store: EventStore, policy: EventPolicy) -> Self {
        Self::with_catalog(store, policy, Arc::default())
    }

    /// A service that keeps the ticketed events it loads in `catalog` (shared with other readers
    /// of the same process).
    pub fn with_catalog(
        store: EventStore,
        policy: EventPolicy,
        catalog: Arc<EventCatalog>,
    ) -> Self {
        Self {
            store,
            policy,
            catalog,
            admission: Admission::default(),
            picker: Picker::default(),
            cold_reads: ColdReads::default(),
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Seat blocks this process read from the store because no writer held them, for holds of
    /// named seats and best-available picks (`booking::cold_reads`).
    pub fn cold_block_reads(&self) -> u64 {
        self.cold_reads.reads()
    }

    pub(crate) fn policy(&self) -> &EventPolicy {
        &self.policy
    }

    pub fn catalog(&self) -> &Arc<EventCatalog> {
        &self.catalog
    }

    /// A ticketed event with its layout, from the catalog or else from the event store.
    pub(crate) async fn load_known_event(
        &self,
        event_id: EventId,
    ) -> Result<Arc<KnownEvent>, CommandError> {
        if let Some(known) = self.catalog.get(event_id) {
            return Ok(known);
        }
        let definition: EventDefinition = self
            .store
            .load_one::<TicketedEvent>(&event_id.to_string())
            .await?
            .and_then(|e| e.definition)
            .ok_or(CommandError::EventNotFound(event_id))?;
        self.catalog
            .insert(definition)
            .ok_or_else(|| CommandError::Internal(format!("stored layout of {event_id} invalid")))
    }

    #[tracing::instrument(name = "create_event", skip_all, fields(correlation_id = %ctx.correlation_id))]
    async fn run_create_event(
        &self,
        draft: NewEvent,
        ctx: &RequestContext,
    ) -> Result<EventView, CommandError> {
        let event_id = EventId(ctx.new_id("event"));
        let (definition, layout) =
            EventDefinition::validate(event_id, draft, &self.policy, Utc::now())
                .map_err(CommandError::Invalid)?;
        let meta = ctx.metadata("CreateEvent", None);
        let created = self
            .store
            .execute::<TicketedEvent>(&event_id.to_string(), &meta, || {
                TicketedEventCommand::Create(definition.clone())
            })
            .await;
        match created {
            // Kept at once: the caller's next step (reading it back, holding seats) needs it.
            Ok(()) => Ok(EventView::of(
                &self.catalog.keep(KnownEvent { definition, layout }),
            )),
            // Only reachable through an idempotency key re-run: answer with what exists.
            Err(StoreError::Rejected(TicketedEventError::AlreadyCreated(id))) => {
                self.run_event(id).await
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl BookingCommands for BookingService {
    async fn event(&self, event_id: EventId) -> Result<EventView, CommandError> {
        self.run_event(event_id).await
    }

    async fn known_event(&self, event_id: EventId) -> Result<Arc<KnownEvent>, CommandError> {
        self.load_known_event(event_id).await
    }

    async fn seat_map(&self, event_id: EventId) -> Result<SeatMapView, CommandError> {
        self.run_seat_map(event_id).await
    }

    async fn projected_seat_map(
        &self,
        event_id: EventId,
        seats: String,
    ) -> Result<SeatMapView, CommandError> {
        self.run_projected_seat_map(event_id, seats).await
    }

    async fn hold(&self, hold_id: HoldId, caller: &Caller) -> Result<HoldView, CommandError> {
        self.run_hold(hold_id, caller).await
    }

    async fn create_event(
        &self,
        mut draft: NewEvent,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<EventView, CommandError> {
        if let Err(refused) = caller.require(Role::Organizer) {
            return counted("create_event", Err(refused));
        }
        draft.organizer = Some(caller.customer.clone());
        counted("create_event", self.run_create_event(draft, ctx).await)
    }

    async fn hold_seats(
        &self,
        event_id: EventId,
        caller: &Caller,
        seats: SeatChoice,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let customer = caller.customer.clone();
        counted(
            "hold",
            self.run_hold_seats(event_id, customer, seats, ctx).await,
        )
    }

    async fn book_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        counted("book", self.run_book_comp(hold_id, caller, ctx).await)
    }

    async fn release_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let customer = caller.customer.clone();
        counted(
            "release",
            self.run_release_hold(hold_id, customer, ctx).await,
        )
    }

    async fn place_order(
        &self,
        hold_ids: Vec<HoldId>,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<OrderView, CommandError> {
        counted(
            "place_order",
            self.run_place_order(&hold_ids, caller, ctx).await,
        )
    }

    async fn order(&self, order_id: OrderId, caller: &Caller) -> Result<OrderView, CommandError> {
        self.run_order(order_id, caller).await
    }

    async fn cancel_order(
        &self,
        order_id: OrderId,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<OrderView, CommandError> {
        counted(
            "cancel_order",
            self.run_cancel_order(order_id, caller, ctx).await,
        )
    }

    async fn record_payment(
        &self,
        event: WebhookEvent,
        ctx: &RequestContext,
    ) -> Result<(), CommandError> {
        counted(
            "payment_notification",
            self.run_record_payment(&event, ctx).await,
        )
    }
}

fn counted<T>(command: &'static str, result: Result<T, CommandError>) -> Result<T, CommandError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    metrics::counter!("seatgrid_commands_total", "command" => command, "outcome" => outcome)
        .increment(1);
    result
}
