//! Development sign-in: `POST /api/dev/token` mints a bearer token for any name, as a buyer or an
//! organizer, so the pages can be used on a developer machine without an identity provider.
//!
//! Policy: off unless the server was started with `SEATGRID_DEV_LOGIN=on` (which `scripts/up`
//! sets), and then only with the HS256 development secret (the one key tokens can be minted
//! with); otherwise the route answers 404 `dev_login_off`, whatever is asked. It never mints an
//! admin token. Tokens last [`DEV_TOKEN_TTL`]. Production signs in at its identity provider
//! (`AUTH_JWKS_URL`, README), whose tokens the pages take as they are.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use booking::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::ApiJson;
use super::AppState;

/// How long a development token is valid.
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dev_token))
}

/// The role a development token carries.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DevRole {
    Buyer,
    Organizer,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    /// The customer id the token names (1-64 characters: letters, digits, `.`, `_`, `-`, `@`).
    pub name: String,
    /// `buyer` (default) or `organizer`.
    #[serde(default)]
    pub role: Option<DevRole>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DevToken {
    /// A bearer token for `Authorization: Bearer ...` and the GraphQL `connection_init` payload.
    pub token: String,
    pub customer_id: String,
    pub role: DevRole,
    pub expires_in_seconds: u64,
}

#[utoipa::path(post, path = "/dev/token", tag = "development",
    request_body = DevTokenRequest,
    responses(
        (status = 200, description = "A token for the name and role", body = DevToken),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Development sign-in is off on this server", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unusable name or role", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn dev_token(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DevTokenRequest>,
) -> Result<Json<DevToken>, ApiError> {
    if !state.dev_login || !state.auth.can_mint() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "dev_login_off",
            "development sign-in is off on this server; sign in with its identity provider",
        ));
    }
    let customer = domain::CustomerId::parse(request.name.trim()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_customer_id",
            format!("name: {e}"),
        )
    })?;
    let role = request.role.unwrap_or(DevRole::Buyer);
    let token = state
        .auth
        .mint(
            customer.as_str(),
            match role {
                DevRole::Buyer => Role::Buyer,
                DevRole::Organizer => Role::Organizer,
            },
            DEV_TOKEN_TTL,
        )
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "dev_login_off", e.to_string()))?;
    Ok(Json(DevToken {
        token,
        customer_id: customer.as_str().to_owned(),
        role,
        expires_in_seconds: DEV_TOKEN_TTL.as_secs(),
    }))
}
