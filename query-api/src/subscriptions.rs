//! Subscriptions: live seat changes and a hold's status, fed by Redis pub/sub.
//!
//! Policy: a hold's first answer comes from the core (never behind); projected changes follow,
//! and a change of lower rank than one already pushed is a late copy and skipped. At the hold's
//! `expiresAt`, and whenever the subscriber fell behind the live updates, the core is asked again:
//! a hold booked at the last moment is pushed as booked even if its projected change is late or
//! lost, never as expired.

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

use crate::mutations::commands;
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
        let channel = cache.seat_channel(event_id);
        Ok(futures::stream::unfold(rx, move |mut rx| {
            let channel = channel.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(msg) if msg.channel == channel => {
                            let Ok(update) = serde_json::from_str::<SeatUpdate>(&msg.payload)
                            else {
                                continue;
                            };
                            let changes: Vec<SeatChange> = update
                                .changes
                                .iter()
                                .map(|(seat, status)| SeatChange {
                                    event_id: update.event_id,
                                    seat_id: *seat,
                                    status: domain::SeatStatus::from_code(*status as u8).into(),
                                    version: update.version,
                                })
                                .collect();
                            return Some((futures::stream::iter(changes), rx));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
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
                            Ok(_) => {}
                            // Updates were missed: resynchronise from the core.
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
