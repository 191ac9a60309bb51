//! Where resolvers find what the schema was built with: the read models and the event loader.

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
