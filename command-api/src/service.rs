//! The booking command service: the one place where commands are decided, for REST today and
//! GraphQL tomorrow (both call [`BookingCommands`]).
//!
//! Policy:
//! - A hold is placed in steps, each an atomic append: reserve the customer's allowance, then hold
//!   the seats block by block (in block order, so concurrent multi-block holds cannot deadlock each
//!   other into endless conflicts). If any block refuses, every block already taken is released and
//!   the allowance returned before answering: from the customer's view a hold is all or nothing.
//!   The common hold (seats of one row) touches one block and is a single append.
//! - A booking commits the allowance first, then books every block, all judged at one decision
//!   instant. A hold that had expired at that instant cannot be booked.
//! - With an `Idempotency-Key`, the new event's or hold's id is derived from the key, so a request
//!   re-run after a crash lands on the same aggregate and is a no-op there.
//! - Ownership (only the hold's customer may book or release it) is checked here and nowhere else.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use domain::{
    AllowanceEntry, AllowanceError, AllowanceState, CustomerAllowance, CustomerAllowanceCommand,
    CustomerId, EventDefinition, EventId, EventPolicy, HoldId, HoldProgress, LayoutError, NewEvent,
    ReturnReason, SeatBlock, SeatBlockCommand, SeatBlockError, SeatBlockId, SeatId, SeatRef,
    SeatStatus, TicketedEvent, TicketedEventCommand, TicketedEventError, VenueLayout,
};
use uuid::Uuid;

use crate::store::{EventStore, LoadError, StoreError};
use crate::views::{EventView, HoldStatus, HoldView, SeatMapView, SeatView};

/// Who asked, for the event metadata and for deriving ids from an idempotency key.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub correlation_id: String,
    /// Where new ids come from: `Some(seed)` derives the same ids for the same seed (an idempotent
    /// request re-run after a crash), `None` picks random ones.
    pub id_seed: Option<String>,
}

impl RequestContext {
    fn metadata(&self, command: &str, customer: Option<&CustomerId>) -> HashMap<String, String> {
        let mut m = HashMap::from([
            ("command".to_owned(), command.to_owned()),
            ("correlation_id".to_owned(), self.correlation_id.clone()),
        ]);
        if let Some(c) = customer {
            m.insert("customer_id".into(), c.to_string());
        }
        // The W3C trace context, so projections can continue this trace (`traceparent`).
        let context =
            tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
        opentelemetry::propagation::TextMapPropagator::inject_context(
            &opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            &context,
            &mut m,
        );
        m
    }

    /// A new id, or the same id every time for the same idempotency key.
    fn new_id(&self, kind: &str) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x5ea7_9e1d_0000_4000_8000_0000_0000_0001);
        match &self.id_seed {
            Some(key) => Uuid::new_v5(&NAMESPACE, format!("{kind}\n{key}").as_bytes()),
            None => Uuid::new_v4(),
        }
    }
}

/// Why a command or read was refused. Each variant maps to one HTTP status and one stable code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("invalid request: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("no such seats in this event: {}", .0.join(", "))]
    UnknownSeats(Vec<String>),
    #[error("seats listed more than once: {}", .0.iter().map(|s| s.seat_id.to_string()).collect::<Vec<_>>().join(", "))]
    DuplicateSeats(Vec<SeatView>),
    #[error("a hold needs at least one seat")]
    NoSeats,
    #[error("at most {max} seats per customer for this event; {requested} requested")]
    TooManySeats { max: u32, requested: u32 },
    #[error("customer may hold or book at most {limit} seats for this event and already has {in_use}; {requested} more requested")]
    CustomerLimitExceeded {
        limit: u32,
        in_use: u32,
        requested: u32,
    },
    #[error("event {0} does not exist")]
    EventNotFound(EventId),
    #[error("hold {0} does not exist")]
    HoldNotFound(HoldId),
    #[error("seats not available: {}", .0.iter().map(|s| s.seat_id.to_string()).collect::<Vec<_>>().join(", "))]
    SeatsUnavailable(Vec<SeatView>),
    #[error("hold {0} belongs to another customer")]
    NotHoldOwner(HoldId),
    #[error("hold {0} has expired")]
    HoldExpired(HoldId),
    #[error("hold {0} was released")]
    HoldReleased(HoldId),
    #[error("hold {0} is already booked")]
    HoldBooked(HoldId),
    #[error("hold {0} never took effect")]
    HoldFailed(HoldId),
    #[error("too many concurrent changes to the same seats; try again shortly")]
    Contention,
    #[error("the event store is unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl CommandError {
    /// The stable code clients see (REST `code`, GraphQL `extensions.code`) and metrics count.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::UnknownSeats(_) => "unknown_seats",
            Self::DuplicateSeats(_) => "duplicate_seats",
            Self::NoSeats => "no_seats",
            Self::TooManySeats { .. } => "too_many_seats",
            Self::CustomerLimitExceeded { .. } => "customer_limit_exceeded",
            Self::EventNotFound(_) => "event_not_found",
            Self::HoldNotFound(_) => "hold_not_found",
            Self::SeatsUnavailable(_) => "seats_unavailable",
            Self::NotHoldOwner(_) => "not_hold_owner",
            Self::HoldExpired(_) => "hold_expired",
            Self::HoldReleased(_) => "hold_released",
            Self::HoldBooked(_) => "hold_booked",
            Self::HoldFailed(_) => "hold_failed",
            Self::Contention => "contention",
            Self::Unavailable(_) => "store_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl<E: std::error::Error> From<StoreError<E>> for CommandError {
    fn from(e: StoreError<E>) -> Self {
        match e {
            StoreError::Rejected(e) => Self::Internal(format!("unmapped refusal: {e}")),
            StoreError::Contention(_) => Self::Contention,
            StoreError::Unavailable(e) => Self::Unavailable(e),
            StoreError::Corrupt(e) => Self::Internal(e),
        }
    }
}

impl From<LoadError> for CommandError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Unavailable(e) => Self::Unavailable(e.to_string()),
            e @ LoadError::Corrupt(..) => Self::Internal(e.to_string()),
        }
    }
}

/// The commands of the booking path. REST handlers and GraphQL mutations call only this.
#[async_trait]
pub trait BookingCommands: Send + Sync {
    async fn create_event(
        &self,
        draft: NewEvent,
        ctx: &RequestContext,
    ) -> Result<EventView, CommandError>;
    async fn hold_seats(
        &self,
        event_id: EventId,
        customer_id: CustomerId,
        seats: Vec<SeatRef>,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError>;
    async fn book_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError>;
    async fn release_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError>;
}

/// A ticketed event as the service keeps it in memory (definitions never change once created).
pub struct KnownEvent {
    pub definition: EventDefinition,
    pub layout: VenueLayout,
}

impl KnownEvent {
    fn seat_views(&self, seats: &[SeatId]) -> Vec<SeatView> {
        seats
            .iter()
            .filter_map(|s| self.layout.label(*s).map(SeatView::from))
            .collect()
    }

    fn block_id(&self, index: u32) -> String {
        SeatBlockId {
            event_id: self.definition.event_id,
            index,
        }
        .aggregate_id()
    }

    /// Seats grouped by block, blocks in ascending order.
    fn by_block(&self, seats: &[SeatId]) -> BTreeMap<u32, Vec<SeatId>> {
        let mut blocks: BTreeMap<u32, Vec<SeatId>> = BTreeMap::new();
        for seat in seats {
            if let Some(b) = self.layout.block_of(*seat) {
                blocks.entry(b).or_default().push(*seat);
            }
        }
        blocks
    }
}

/// The event-sourced implementation of [`BookingCommands`], plus the reads the REST API serves
/// straight from the event store.
pub struct BookingService {
    store: EventStore,
    policy: EventPolicy,
    known_events: RwLock<HashMap<EventId, Arc<KnownEvent>>>,
}

/// A hold located through its customer's allowance.
struct LocatedHold {
    event: Arc<KnownEvent>,
    allowance_id: String,
    entry: AllowanceEntry,
}

impl BookingService {
    pub fn new(store: EventStore, policy: EventPolicy) -> Self {
        Self {
            store,
            policy,
            known_events: RwLock::default(),
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub async fn known_event(&self, event_id: EventId) -> Result<Arc<KnownEvent>, CommandError> {
        if let Some(known) = self.known_events.read().expect("lock").get(&event_id) {
            return Ok(known.clone());
        }
        let definition = self
            .store
            .load_one::<TicketedEvent>(&event_id.to_string())
            .await?
            .and_then(|e| e.definition)
            .ok_or(CommandError::EventNotFound(event_id))?;
        let layout = VenueLayout::new(definition.layout.clone())
            .map_err(|e| CommandError::Internal(format!("stored layout invalid: {e}")))?;
        let known = Arc::new(KnownEvent { definition, layout });
        self.known_events
            .write()
            .expect("lock")
            .insert(event_id, known.clone());
        Ok(known)
    }

    pub async fn event(&self, event_id: EventId) -> Result<EventView, CommandError> {
        let known = self.known_event(event_id).await?;
        Ok(EventView::new(&known.definition, &known.layout))
    }

    /// A seat map the read side projected, in the same view as [`Self::seat_map`].
    pub async fn projected_seat_map(
        &self,
        event_id: EventId,
        seats: String,
    ) -> Result<SeatMapView, CommandError> {
        self.known_event(event_id).await?;
        Ok(SeatMapView::new(event_id.0, seats, "eventual"))
    }

    /// Every seat's status at this instant, computed from the seat blocks in the event store:
    /// never behind.
    pub async fn seat_map(&self, event_id: EventId) -> Result<SeatMapView, CommandError> {
        let known = self.known_event(event_id).await?;
        let ids: Vec<String> = (0..known.layout.block_count())
            .map(|i| known.block_id(i))
            .collect();
        let blocks = self.store.load::<SeatBlock>(&ids).await?;
        let now = Utc::now();
        let empty = SeatBlock::default();
        let mut seats = String::with_capacity(known.layout.seat_count() as usize);
        for (index, id) in ids.iter().enumerate() {
            let block = blocks.get(id).unwrap_or(&empty);
            for seat in known.layout.block_seats(index as u32) {
                seats.push(match block.seat_status(SeatId(seat), now) {
                    SeatStatus::Available => 'A',
                    SeatStatus::Held => 'H',
                    SeatStatus::Booked => 'B',
                });
            }
        }
        Ok(SeatMapView::new(event_id.0, seats, "strong"))
    }

    pub async fn hold(&self, hold_id: HoldId) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        self.hold_view(&located, Utc::now()).await
    }

    async fn locate(&self, hold_id: HoldId) -> Result<LocatedHold, CommandError> {
        let ids = self
            .store
            .aggregates_of_hold::<CustomerAllowance>(hold_id.0)
            .await?;
        let allowance_id = ids
            .into_iter()
            .next()
            .ok_or(CommandError::HoldNotFound(hold_id))?;
        let allowance = self
            .store
            .load_one::<CustomerAllowance>(&allowance_id)
            .await?
            .ok_or(CommandError::HoldNotFound(hold_id))?;
        let entry = allowance
            .entry(hold_id)
            .cloned()
            .ok_or(CommandError::HoldNotFound(hold_id))?;
        let event = self.known_event(entry.change.event_id).await?;
        Ok(LocatedHold {
            event,
            allowance_id,
            entry,
        })
    }

    async fn hold_view(
        &self,
        located: &LocatedHold,
        now: DateTime<Utc>,
    ) -> Result<HoldView, CommandError> {
        let change = &located.entry.change;
        let block_ids: Vec<String> = located
            .event
            .by_block(&change.seats)
            .keys()
            .map(|b| located.event.block_id(*b))
            .collect();
        let blocks = self.store.load::<SeatBlock>(&block_ids).await?;
        let progress: Option<Vec<HoldProgress>> = block_ids
            .iter()
            .map(|id| {
                blocks
                    .get(id)
                    .and_then(|b| b.hold(change.hold_id))
                    .map(|h| h.progress_at(now))
            })
            .collect();
        let status = match progress {
            Some(p) if p.iter().all(|s| *s == HoldProgress::Booked) => HoldStatus::Booked,
            Some(p) if p.contains(&HoldProgress::Released) => HoldStatus::Released,
            Some(p) if p.contains(&HoldProgress::Expired) => HoldStatus::Expired,
            Some(_) => HoldStatus::Held,
            None if matches!(located.entry.state, AllowanceState::Returned(_)) => {
                HoldStatus::Failed
            }
            None if now < change.expires_at => HoldStatus::Pending,
            None => HoldStatus::Failed,
        };
        Ok(self.view(
            &located.event,
            change.hold_id,
            &change.customer_id,
            &change.seats,
            change.expires_at,
            status,
        ))
    }

    fn view(
        &self,
        event: &KnownEvent,
        hold_id: HoldId,
        customer_id: &CustomerId,
        seats: &[SeatId],
        expires_at: DateTime<Utc>,
        status: HoldStatus,
    ) -> HoldView {
        let seats = event.seat_views(seats);
        HoldView {
            hold_id: hold_id.0,
            event_id: event.definition.event_id.0,
            customer_id: customer_id.to_string(),
            status,
            expires_at,
            total_cents: seats.iter().map(|s| s.price_cents).sum(),
            seats,
            currency: event.definition.currency.clone(),
        }
    }

    /// Checks and resolves a hold request's seats.
    fn resolve_seats(
        &self,
        event: &KnownEvent,
        refs: &[SeatRef],
    ) -> Result<Vec<SeatId>, CommandError> {
        if refs.is_empty() {
            return Err(CommandError::NoSeats);
        }
        let max = event.definition.max_seats_per_customer;
        if refs.len() > max as usize {
            return Err(CommandError::TooManySeats {
                max,
                requested: refs.len() as u32,
            });
        }
        let seats = event.layout.resolve(refs).map_err(|e| match e {
            LayoutError::UnknownSeats(bad) => CommandError::UnknownSeats(bad),
            LayoutError::Invalid(msg) => CommandError::Invalid(vec![msg]),
        })?;
        let mut seen = HashSet::new();
        let duplicates: Vec<SeatId> = seats.iter().copied().filter(|s| !seen.insert(*s)).collect();
        if !duplicates.is_empty() {
            return Err(CommandError::DuplicateSeats(event.seat_views(&duplicates)));
        }
        Ok(seats)
    }

    fn owned_by(
        &self,
        located: &LocatedHold,
        customer_id: &CustomerId,
    ) -> Result<(), CommandError> {
        if &located.entry.change.customer_id != customer_id {
            return Err(CommandError::NotHoldOwner(located.entry.change.hold_id));
        }
        Ok(())
    }

    /// Gives back the blocks already taken for a hold that failed, then its allowance.
    /// Gives a hold's seats back to the customer's allowance.
    async fn return_allowance(
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

    /// `SeatsUnavailable` if any of `seats` is held or booked at `now` by another hold (read only,
    /// no lock). A re-run of the same hold (same idempotency key) is left to the appends.
    async fn refuse_taken_seats(
        &self,
        event: &KnownEvent,
        hold_id: HoldId,
        seats: &[SeatId],
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let by_block = event.by_block(seats);
        let ids: Vec<String> = by_block.keys().map(|b| event.block_id(*b)).collect();
        let blocks = self.store.load::<SeatBlock>(&ids).await?;
        let taken: Vec<SeatId> = by_block
            .iter()
            .flat_map(|(b, block_seats)| {
                let block = blocks
                    .get(&event.block_id(*b))
                    .filter(|blk| blk.hold(hold_id).is_none());
                block_seats.iter().filter(move |s| {
                    block.is_some_and(|blk| blk.seat_status(**s, now) != SeatStatus::Available)
                })
            })
            .copied()
            .collect();
        if taken.is_empty() {
            Ok(())
        } else {
            Err(self.unavailable(event, &taken))
        }
    }

    async fn undo_hold(
        &self,
        event: &KnownEvent,
        hold_id: HoldId,
        customer_id: &CustomerId,
        taken: &[u32],
        allowance_id: &str,
        ctx: &RequestContext,
    ) {
        let meta = ctx.metadata("UndoHold", Some(customer_id));
        for block in taken {
            let result = self
                .store
                .execute::<SeatBlock>(&event.block_id(*block), &meta, || {
                    SeatBlockCommand::ReleaseHold {
                        hold_id,
                        customer_id: customer_id.clone(),
                        now: Utc::now(),
                    }
                })
                .await;
            if let Err(e) = result {
                tracing::error!(%hold_id, block, error = %e, "could not release part of a failed hold; it frees itself at expiry");
            }
        }
        let result = self
            .return_allowance(allowance_id, hold_id, ReturnReason::HoldFailed, &meta)
            .await;
        if let Err(e) = result {
            tracing::error!(%hold_id, error = %e, "could not return the allowance of a failed hold; it frees itself at expiry");
        }
    }

    /// Records `HoldExpired` for every hold whose time is up in the given blocks (the sweeper).
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

    fn unavailable(&self, event: &KnownEvent, seats: &[SeatId]) -> CommandError {
        CommandError::SeatsUnavailable(event.seat_views(seats))
    }
}

/// The commands, each counted by outcome (`seatgrid_commands_total{command, outcome}`).
#[async_trait]
impl BookingCommands for BookingService {
    async fn create_event(
        &self,
        draft: NewEvent,
        ctx: &RequestContext,
    ) -> Result<EventView, CommandError> {
        counted("create_event", self.run_create_event(draft, ctx).await)
    }

    async fn hold_seats(
        &self,
        event_id: EventId,
        customer_id: CustomerId,
        seats: Vec<SeatRef>,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        counted(
            "hold",
            self.run_hold_seats(event_id, customer_id, seats, ctx).await,
        )
    }

    async fn book_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        counted("book", self.run_book_hold(hold_id, customer_id, ctx).await)
    }

    async fn release_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        counted(
            "release",
            self.run_release_hold(hold_id, customer_id, ctx).await,
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

impl BookingService {
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
            Ok(()) => Ok(EventView::new(&definition, &layout)),
            // Only reachable through an idempotency key re-run: answer with what exists.
            Err(StoreError::Rejected(TicketedEventError::AlreadyCreated(id))) => {
                self.event(id).await
            }
            Err(e) => Err(e.into()),
        }
    }

    #[tracing::instrument(name = "hold_seats", skip_all, fields(%event_id, %customer_id, correlation_id = %ctx.correlation_id))]
    async fn run_hold_seats(
        &self,
        event_id: EventId,
        customer_id: CustomerId,
        seats: Vec<SeatRef>,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let event = self.known_event(event_id).await?;
        let seats = self.resolve_seats(&event, &seats)?;
        let hold_id = HoldId(ctx.new_id(&format!("hold\n{customer_id}")));
        let now = Utc::now();
        let expires_at = now + Duration::seconds(i64::from(event.definition.hold_seconds));
        let allowance_id = CustomerAllowance::aggregate_id(event_id, &customer_id);
        let meta = ctx.metadata("HoldSeats", Some(&customer_id));

        // Cheap early answer for the common loser of a flash sale: seats already taken are refused
        // after one read, before anything is written. The appends below still decide.
        self.refuse_taken_seats(&event, hold_id, &seats, now)
            .await?;
        self.store
            .execute::<CustomerAllowance>(&allowance_id, &meta, || {
                CustomerAllowanceCommand::Reserve {
                    event_id,
                    customer_id: customer_id.clone(),
                    hold_id,
                    seats: seats.clone(),
                    expires_at,
                    limit: event.definition.max_seats_per_customer,
                    now: Utc::now(),
                }
            })
            .await
            .map_err(|e| match e {
                StoreError::Rejected(AllowanceError::LimitExceeded {
                    limit,
                    in_use,
                    requested,
                }) => CommandError::CustomerLimitExceeded {
                    limit,
                    in_use,
                    requested,
                },
                other => other.into(),
            })?;

        let mut taken = Vec::new();
        for (block, block_seats) in event.by_block(&seats) {
            let result = self
                .store
                .execute::<SeatBlock>(&event.block_id(block), &meta, || {
                    SeatBlockCommand::HoldSeats {
                        event_id,
                        hold_id,
                        customer_id: customer_id.clone(),
                        seats: block_seats.clone(),
                        expires_at,
                        now: Utc::now(),
                    }
                })
                .await;
            let error = match result {
                Ok(()) => {
                    taken.push(block);
                    continue;
                }
                Err(StoreError::Rejected(SeatBlockError::SeatsUnavailable(unavailable))) => {
                    self.unavailable(&event, &unavailable)
                }
                Err(StoreError::Rejected(e)) => CommandError::Invalid(vec![e.to_string()]),
                Err(e) => e.into(),
            };
            self.undo_hold(&event, hold_id, &customer_id, &taken, &allowance_id, ctx)
                .await;
            return Err(error);
        }
        Ok(self.view(
            &event,
            hold_id,
            &customer_id,
            &seats,
            expires_at,
            HoldStatus::Held,
        ))
    }

    #[tracing::instrument(name = "book_hold", skip_all, fields(%hold_id, %customer_id, correlation_id = %ctx.correlation_id))]
    async fn run_book_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        let decided_at = Utc::now();
        if let Err(not_owner) = self.owned_by(&located, &customer_id) {
            let current = self.hold_view(&located, decided_at).await?;
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
            .map_err(|e| match e {
                StoreError::Rejected(AllowanceError::HoldExpired(_)) => {
                    CommandError::HoldExpired(hold_id)
                }
                StoreError::Rejected(AllowanceError::HoldNotFound(_)) => {
                    CommandError::HoldNotFound(hold_id)
                }
                StoreError::Rejected(AllowanceError::HoldClosed(_)) => match located.entry.state {
                    AllowanceState::Returned(ReturnReason::Released) => {
                        CommandError::HoldReleased(hold_id)
                    }
                    AllowanceState::Returned(ReturnReason::HoldFailed) => {
                        CommandError::HoldFailed(hold_id)
                    }
                    _ => CommandError::HoldExpired(hold_id),
                },
                other => other.into(),
            })?;

        let mut booked_any = false;
        for block in event.by_block(&located.entry.change.seats).into_keys() {
            let result = self
                .store
                .execute::<SeatBlock>(&event.block_id(block), &meta, || {
                    SeatBlockCommand::BookHold {
                        hold_id,
                        customer_id: customer_id.clone(),
                        decided_at,
                    }
                })
                .await;
            let error = match result {
                Ok(()) => {
                    booked_any = true;
                    continue;
                }
                Err(StoreError::Rejected(SeatBlockError::HoldReleased(_))) => {
                    CommandError::HoldReleased(hold_id)
                }
                Err(StoreError::Rejected(SeatBlockError::HoldExpired(_))) => {
                    CommandError::HoldExpired(hold_id)
                }
                Err(StoreError::Rejected(SeatBlockError::HoldNotFound(_))) => {
                    CommandError::HoldFailed(hold_id)
                }
                Err(StoreError::Rejected(SeatBlockError::NotHoldOwner(_))) => {
                    CommandError::NotHoldOwner(hold_id)
                }
                Err(StoreError::Rejected(e)) => CommandError::Internal(e.to_string()),
                Err(e) => return Err(e.into()),
            };
            if booked_any {
                // Blocks judge the one decision instant, so this needs a hold whose parts disagree.
                tracing::error!(%hold_id, error = %error, "booking stopped part way");
            } else {
                let result = self
                    .return_allowance(
                        &located.allowance_id,
                        hold_id,
                        ReturnReason::BookingFailed,
                        &meta,
                    )
                    .await;
                if let Err(e) = result {
                    tracing::warn!(%hold_id, error = %e, "allowance of a failed booking stays counted");
                }
            }
            return Err(error);
        }
        let change = &located.entry.change;
        Ok(self.view(
            event,
            hold_id,
            &customer_id,
            &change.seats,
            change.expires_at,
            HoldStatus::Booked,
        ))
    }

    #[tracing::instrument(name = "release_hold", skip_all, fields(%hold_id, %customer_id, correlation_id = %ctx.correlation_id))]
    async fn run_release_hold(
        &self,
        hold_id: HoldId,
        customer_id: CustomerId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        self.owned_by(&located, &customer_id)?;
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
        self.hold_view(&located, Utc::now()).await
    }
}
