//! Where callers' tokens are verified from: `AUTH_*` settings, read with the rest of the
//! configuration.
//!
//! Policy: exactly one key source. `AUTH_HS256_SECRET` (at least 32 bytes) is for development
//! and tests, and is the only one `seatgrid token` can mint with; production points at the
//! identity provider's key: `AUTH_PUBLIC_KEY_FILE` (PEM, with `AUTH_ALGORITHM` RS256 or ES256) or
//! `AUTH_JWKS_URL` (fetched at start, refreshed every 10 minutes). `AUTH_ISSUER` and
//! `AUTH_AUDIENCE` are checked when set; `AUTH_ROLE_CLAIM` names the role claim (`role`; a dotted
//! path such as `realm_access.roles` for Keycloak). The server does not start without a key.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use booking::Authenticator;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::Algorithm;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The shortest development secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// `AUTH_*` variables, named here without the prefix.
#[derive(Debug, Default, Deserialize)]
pub struct AuthSettings {
    pub hs256_secret: Option<SecretString>,
    pub public_key_file: Option<PathBuf>,
    /// RS256 (default) or ES256, for `public_key_file`.
    pub algorithm: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub role_claim: Option<String>,
}

impl AuthSettings {
    /// What is wrong with the settings, if anything (checked with the rest of the configuration).
    pub fn problems(&self) -> Vec<String> {
        let sources = [
            self.hs256_secret.is_some(),
            self.public_key_file.is_some(),
            self.jwks_url.is_some(),
        ];
        let mut problems = Vec::new();
        if sources.iter().filter(|s| **s).count() > 1 {
            problems.push(
                "set only one of AUTH_HS256_SECRET, AUTH_PUBLIC_KEY_FILE and AUTH_JWKS_URL".into(),
            );
        }
        if self
            .hs256_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < MIN_SECRET_LEN)
        {
            problems.push(format!(
                "AUTH_HS256_SECRET must be at least {MIN_SECRET_LEN} bytes"
            ));
        }
        if let Some(alg) = &self.algorithm {
            if !matches!(alg.as_str(), "RS256" | "ES256") {
                problems.push(format!(
                    "AUTH_ALGORITHM must be RS256 or ES256, not {alg:?}"
                ));
            }
        }
        problems
    }

    fn finish(&self, auth: Authenticator) -> Authenticator {
        auth.with_issuer(self.issuer.clone())
            .with_audience(self.audience.clone())
            .with_role_claim(self.role_claim.as_deref().unwrap_or("role"))
    }

    /// The authenticator these settings describe; JWKS are fetched now and refreshed in the
    /// background.
    pub async fn authenticator(&self) -> anyhow::Result<Arc<Authenticator>> {
        if let Some(secret) = &self.hs256_secret {
            let auth = Authenticator::hs256(secret.expose_secret().as_bytes())?;
            return Ok(Arc::new(self.finish(auth)));
        }
        if let Some(path) = &self.public_key_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read AUTH_PUBLIC_KEY_FILE {}", path.display()))?;
            let algorithm = match self.algorithm.as_deref() {
                Some("ES256") => Algorithm::ES256,
                _ => Algorithm::RS256,
            };
            let auth = Authenticator::public_key(algorithm, &pem)
                .context("AUTH_PUBLIC_KEY_FILE is not a usable public key")?;
            return Ok(Arc::new(self.finish(auth)));
        }
        if let Some(url) = &self.jwks_url {
            let set = fetch_jwks(url).await?;
            let auth = Arc::new(self.finish(Authenticator::jwks(&set)?));
            spawn_jwks_refresh(Arc::downgrade(&auth), url.clone());
            return Ok(auth);
        }
        anyhow::bail!(
            "no token key configured: set AUTH_HS256_SECRET (development; scripts/up sets one), \
             AUTH_PUBLIC_KEY_FILE or AUTH_JWKS_URL (your identity provider's keys)"
        )
    }

    /// An authenticator that can mint tokens (the HS256 secret), for `seatgrid token`.
    pub fn minter(&self) -> anyhow::Result<Authenticator> {
        let secret = self.hs256_secret.as_ref().context(
            "minting tokens needs the server's AUTH_HS256_SECRET (scripts/token uses the one scripts/up \
             made, .local/dev-secret; tokens of an identity provider come from the provider)",
        )?;
        Ok(self.finish(Authenticator::hs256(secret.expose_secret().as_bytes())?))
    }
}

async fn fetch_jwks(url: &str) -> anyhow::Result<JwkSet> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("cannot fetch AUTH_JWKS_URL {url}"))?
        .json()
        .await
        .with_context(|| format!("AUTH_JWKS_URL {url} is not a JWKS document"))
}

/// Keys rotate at the provider: fetch them again every 10 minutes (failures keep the old keys).
fn spawn_jwks_refresh(auth: std::sync::Weak<Authenticator>, url: String) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(600)).await;
            let Some(auth) = auth.upgrade() else { return };
            match fetch_jwks(&url).await.map(|set| auth.replace_jwks(&set)) {
                Ok(Ok(())) => tracing::debug!("JWKS refreshed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "JWKS refresh had no usable key"),
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the old keys"),
            }
        }
    });
}
