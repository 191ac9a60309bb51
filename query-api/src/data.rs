//! Where resolvers find what the schema was built with: the read models, the event loader and
//! the application core.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Result};
use projections::ReadModels;
use uuid::Uuid;

use crate::errors::read_failed;
use crate::loaders::EventLoader;
use crate::types::Event;

pub(crate) fn reads<'a>(ctx: &Context<'a>) -> &'a ReadModels {
    ctx.data_unchecked::<ReadModels>()
}

/// The application core, for mutations and for answers the read models cannot give yet.
pub(crate) fn commands<'a>(ctx: &Context<'a>) -> &'a dyn booking::BookingCommands {
    ctx.data_unchecked::<std::sync::Arc<dyn booking::BookingCommands>>()
        .as_ref()
}

pub(crate) fn events<'a>(ctx: &Context<'a>) -> &'a DataLoader<EventLoader> {
    ctx.data_unchecked::<DataLoader<EventLoader>>()
}

/// An event by id through the batching loader, or `None` if there is none.
pub(crate) async fn load_event(ctx: &Context<'_>, id: Uuid) -> Result<Option<Event>> {
    Ok(events(ctx)
        .load_one(id)
        .await
        .map_err(read_failed)?
        .map(Event))
}
