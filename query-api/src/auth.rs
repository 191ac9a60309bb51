//! Who is asking a GraphQL operation: the same bearer token as REST, from the `Authorization`
//! header of `POST /graphql`, or from the `connection_init` payload of a WebSocket
//! (`{"Authorization": "Bearer <token>"}`, or `{"token": "<token>"}`).
//!
//! Policy: the token is verified once per request (or connection) and kept in the request data as
//! an [`Identity`]; resolvers that act for someone call [`caller`] (an `unauthenticated` error,
//! status 401, without a valid token), and the core's rules ([`booking::identity`]) decide the
//! rest, with the same codes as REST. Public fields (events, seat maps, seat updates) ignore it.

use async_graphql::{Context, Result};
use booking::{Authenticator, Caller, CommandError};
use domain::EventDefinition;
use serde_json::Value;

use crate::errors::from_command;

/// The verified caller of a request or connection, if any.
#[derive(Debug, Clone, Default)]
pub enum Identity {
    #[default]
    Anonymous,
    Caller(Caller),
    /// A token was sent but does not verify (the reason is given when it is needed).
    Invalid(String),
}

impl Identity {
    /// From the raw `Authorization` header value, if any.
    pub fn from_header(auth: &Authenticator, header: Option<&[u8]>) -> Self {
        match auth.authenticate(header) {
            Ok(Some(caller)) => Self::Caller(caller),
            Ok(None) => Self::Anonymous,
            Err(e) => Self::Invalid(e.to_string()),
        }
    }

    /// From a WebSocket's `connection_init` payload.
    pub fn from_init_payload(auth: &Authenticator, payload: &Value) -> Self {
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
        Self::from_header(auth, header.as_deref().map(str::as_bytes))
    }
}

/// The caller, or an `unauthenticated` error.
pub fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    match ctx.data_opt::<Identity>() {
        Some(Identity::Caller(caller)) => Ok(caller),
        Some(Identity::Invalid(why)) => {
            Err(from_command(CommandError::Unauthenticated(why.clone())))
        }
        _ => Err(from_command(CommandError::Unauthenticated(
            "this needs a bearer token: send `Authorization: Bearer <token>` (WebSockets: in the \
             connection_init payload)"
                .into(),
        ))),
    }
}

/// The caller, if they manage `event`; `forbidden` otherwise.
pub fn manager<'a>(ctx: &Context<'a>, event: &EventDefinition) -> Result<&'a Caller> {
    let caller = caller(ctx)?;
    caller.require_manager(event).map_err(from_command)?;
    Ok(caller)
}
