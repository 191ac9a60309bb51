//! Subscriptions: live seat changes, a hold's status and an order's (see [`crate::orders`]), fed
//! by Redis pub/sub.
//!
//! Policy: a hold's first answer comes from the core (never behind); projected changes follow,
//! and a change of lower rank than one already pushed is a late copy and skipped. At the hold's
//! `expiresAt`, and whenever the subscriber fell behind the live updates, the core is asked again:
//! a hold booked at the last moment is pushed as booked even if its projected change is late or
//! lost, never as expired.
//!
//! Seat updates follow the seat map's versions: each batch says the version it starts from, so a
//! subscriber that missed one (it fell behind, Redis dropped the message, or the pub/sub
//! connection was re-established) sees the gap and resynchronises from the read model: every
//! seat's current status is pushed at the map's version, then live updates continue after it.
//! Updates at or below the version already pushed are skipped, so a subscriber never goes back.

use std::sync::Arc;

use async_graphql::{Context, Result, Subscription};
use chrono::Utc;
use domain::HoldId;
use futures::{Stream, StreamExt};
use projections::{HoldRecord, SeatUpdate};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::data::{load_event, reads};
use crate::errors::{coded, from_command, not_found};
use crate::live::LiveUpdates;
use booking::BookingCommands;

use crate::data::commands;
use crate::orders::{order_stream, Order};
use crate::types::{Hold, SeatChange};

fn live<'a>(ctx: &Context<'a>) -> Result<(&'a LiveUpdates, &'a projections::Cache)> {
    match (
        ctx.data_unchecked::<Option<LiveUpdates>>(),
        reads(ctx).cache(),
    ) {
        (Some(live), Some(cache)) => Ok((live, cache)),
        _ => Err(coded(
            "live_updates_unavailable",
            "live updates need Redis, which this server runs without",
        )),
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// An order now and at every status change, until it is confirmed or refunded. For its
    /// customer and its event's organizer (token in the `connection_init` payload).
    async fn order(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<impl Stream<Item = Result<Order>>> {
        let (live, cache) = live(ctx)?;
        let rx = live.subscribe();
        let caller = crate::auth::caller(ctx)?.clone();
        let core = ctx.data_unchecked::<Arc<dyn BookingCommands>>().clone();
        let first = match core.order(domain::OrderId(id), &caller).await {
            Ok(view) => Order::from_view(&view),
            Err(e) => return Err(from_command(e)),
        };
        Ok(order_stream(
            core,
            caller,
            rx,
            cache.order_channel(id),
            first,
        ))
    }

    /// Every seat status change of an event, as it is projected.
    async fn seat_updates(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
    ) -> Result<impl Stream<Item = SeatChange>> {
        let (live, cache) = live(ctx)?;
        let rx = live.subscribe();
        if load_event(ctx, event_id).await?.is_none() {
            return Err(not_found(
                "event_not_found",
                format!("event {event_id} does not exist"),
            ));
        }
        let feed = SeatFeed {
            rx,
            channel: cache.seat_channel(event_id),
            reads: reads(ctx).clone(),
            event_id,
            version: None,
        };
        let start = feed
            .reads
            .seat_map(event_id)
            .await
            .map_err(|e| crate::errors::read_failed(Arc::new(e)))?;
        let feed = SeatFeed {
            version: start.map(|m| m.version),
            ..feed
        };
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            let changes = feed.next_changes().await?;
            Some((futures::stream::iter(changes), feed))
        })
        .flatten())
    }

    /// A hold's status now and at every change, until it is booked, released, expired or failed.
    /// For the hold's customer and its event's organizer (token in the `connection_init` payload).
    /// An expiry is pushed at the hold's `expiresAt`, without waiting for anything to be written.
    async fn hold(&self, ctx: &Context<'_>, id: Uuid) -> Result<impl Stream<Item = Hold>> {
        let (live, cache) = live(ctx)?;
        let rx = live.subscribe();
        // The command side is authoritative and never behind, so the first answer comes from it;
        // projected changes follow (older ones are ignored, see `HoldStatus::rank`).
        let caller = crate::auth::caller(ctx)?.clone();
        let core = ctx.data_unchecked::<Arc<dyn BookingCommands>>().clone();
        let first = Hold::from_view(
            &commands(ctx)
                .hold(HoldId(id), &caller)
                .await
                .map_err(from_command)?,
        );
        let channel = cache.hold_channel(id);
        struct State {
            rx: tokio::sync::broadcast::Receiver<Arc<crate::live::LiveMessage>>,
            next: Option<Hold>,
            last: Option<Hold>,
        }
        let state = State {
            rx,
            next: Some(first),
            last: None,
        };
        Ok(futures::stream::unfold(state, move |mut s| {
            let channel = channel.clone();
            let (core, caller) = (core.clone(), caller.clone());
            // The hold as the core has it now, if it can tell.
            let authoritative = move || {
                let (core, caller) = (core.clone(), caller.clone());
                async move {
                    core.hold(HoldId(id), &caller)
                        .await
                        .ok()
                        .map(|v| Hold::from_view(&v))
                }
            };
            async move {
                loop {
                    if let Some(hold) = s.next.take() {
                        let changed = s.last.as_ref().is_none_or(|l| {
                            let (was, now) = (
                                domain::HoldStatus::from(l.status),
                                domain::HoldStatus::from(hold.status),
                            );
                            was != now && now.rank() >= was.rank()
                        });
                        if changed {
                            s.last = Some(hold.clone());
                            return Some((hold, s));
                        }
                    }
                    let last = s.last.clone()?;
                    if domain::HoldStatus::from(last.status).is_final() {
                        return None;
                    }
                    let until_expiry = (last.expires_at - Utc::now()).to_std().unwrap_or_default();
                    tokio::select! {
                        got = s.rx.recv() => match got {
                            Ok(msg) if msg.channel == channel => {
                                if let Ok(r) = serde_json::from_str::<HoldRecord>(&msg.payload) {
                                    s.next = Some(Hold::from_record(&r, Utc::now()));
                                }
                            }
                            // Updates were missed: resynchronise from the core.
                            Ok(msg) if msg.is_resync() => s.next = authoritative().await,
                            Ok(_) => {}
                            Err(RecvError::Lagged(_)) => s.next = authoritative().await,
                            Err(RecvError::Closed) => return None,
                        },
                        _ = tokio::time::sleep(until_expiry + std::time::Duration::from_millis(20)) => {
                            // Expired, or booked or released at the last moment: the core knows.
                            s.next = match authoritative().await {
                                Some(now) => Some(now),
                                None => {
                                    let mut expired = last.clone();
                                    let at = Utc::now().max(last.expires_at);
                                    expired.status = domain::HoldStatus::from(last.status)
                                        .at(last.expires_at, at)
                                        .into();
                                    Some(expired)
                                }
                            };
                        }
                    }
                }
            }
        }))
    }
}

/// One `seatUpdates` subscriber's place in its event's seat map versions (see the module policy).
struct SeatFeed {
    rx: tokio::sync::broadcast::Receiver<Arc<crate::live::LiveMessage>>,
    channel: String,
    reads: projections::ReadModels,
    event_id: Uuid,
    /// The newest seat map version pushed (or read at the start).
    version: Option<i64>,
}

impl SeatFeed {
    /// The next changes to push; `None` when the live updates end.
    async fn next_changes(&mut self) -> Option<Vec<SeatChange>> {
        loop {
            let update = match self.rx.recv().await {
                Ok(msg) if msg.is_resync() => return Some(self.resync().await),
                Ok(msg) if msg.channel == self.channel => {
                    match serde_json::from_str::<SeatUpdate>(&msg.payload) {
                        Ok(update) => update,
                        Err(_) => continue,
                    }
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => return Some(self.resync().await),
                Err(RecvError::Closed) => return None,
            };
            // A newer batch that does not start where the last one ended: some were missed.
            let gap = self
                .version
                .is_some_and(|v| update.version > v && update.from_version > v);
            let mut changes = if gap { self.resync().await } else { Vec::new() };
            changes.extend(self.follow(&update));
            if !changes.is_empty() {
                return Some(changes);
            }
        }
    }

    /// The update's changes if they continue from the version pushed so far.
    fn follow(&mut self, update: &SeatUpdate) -> Vec<SeatChange> {
        if let Some(v) = self.version {
            if update.version <= v || update.from_version > v {
                return Vec::new();
            }
        }
        self.version = Some(update.version);
        update
            .changes
            .iter()
            .map(|(seat, status)| SeatChange {
                event_id: update.event_id,
                seat_id: *seat,
                status: domain::SeatStatus::from_code(*status as u8).into(),
                version: update.version,
            })
            .collect()
    }

    /// Every seat as the read model has it now, if that is newer than what was pushed.
    async fn resync(&mut self) -> Vec<SeatChange> {
        tracing::debug!(event_id = %self.event_id, "seat subscription resynchronises");
        let map = match self.reads.seat_map(self.event_id).await {
            Ok(Some(map)) => map,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot resynchronise a seat subscription now");
                return Vec::new();
            }
        };
        if self.version.is_some_and(|v| map.version <= v) {
            return Vec::new();
        }
        self.version = Some(map.version);
        map.seats
            .iter()
            .enumerate()
            .map(|(seat, code)| SeatChange {
                event_id: self.event_id,
                seat_id: seat as u32,
                status: domain::SeatStatus::from_code(*code).into(),
                version: map.version,
            })
            .collect()
    }
}
