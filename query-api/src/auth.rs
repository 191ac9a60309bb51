//! Who is asking a GraphQL operation: the same bearer token as REST, from the `Authorization`
//! header of `POST /graphql`, or from the `connection_init` payload of a WebSocket
//! (`{"Authorization": "Bearer <token>"}`, or `{"token": "<token>"}`).
//!
//! Policy: the token is verified once per request (by the server in front, which leaves the
//! core's [`Identity`] in the request) or per connection, and kept in the request data; resolvers that act for someone call [`caller`] (an `unauthenticated` error,
//! status 401, without a valid token), and the core's rules ([`booking::identity`]) decide the
//! rest, with the same codes as REST. Public fields (events, seat maps, seat updates) ignore it.

use async_graphql::{Context, Result};
use booking::{Authenticator, Caller, Identity};
use domain::EventDefinition;
use serde_json::Value;

use crate::errors::from_command;

/// Who a WebSocket's `connection_init` payload names (`Authorization` or `token`).
pub fn identify_init_payload(auth: &Authenticator, payload: &Value) -> Identity {
    let header = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| {
            payload
                .get("token")
                .and_then(Value::as_str)
                .map(|t| format!("Bearer {t}"))
        });
    auth.identify(header.as_deref().map(str::as_bytes))
}

/// The caller, or an `unauthenticated` error.
pub fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    ctx.data_opt::<Identity>()
        .unwrap_or(&Identity::Anonymous)
        .caller()
        .map_err(from_command)
}

/// The caller, if they manage `event`; `forbidden` otherwise.
pub fn manager<'a>(ctx: &Context<'a>, event: &EventDefinition) -> Result<&'a Caller> {
    let caller = caller(ctx)?;
    caller.require_manager(event).map_err(from_command)?;
    Ok(caller)
}
