//! Bearer tokens (JWT): verifying the ones callers send, and minting development ones.
//!
//! Policy:
//! - One [`Authenticator`] per process, built from configuration: an HS256 secret (development),
//!   a public key file (RS256 or ES256), or a JWKS document an identity provider publishes
//!   (Keycloak, Auth0, Cognito; refreshed by the binary). Only the configured algorithms verify.
//! - `exp` and `sub` are required; `iss` and `aud` are checked when configured; 30 s of clock skew.
//! - The role comes from a configurable claim (`role` by default; a dotted path such as
//!   `realm_access.roles` reaches into objects; a list gives its highest known role). No or an
//!   unknown role is `buyer`. An organizer's `events: "all"` claim manages every event.
//! - Tokens are minted only with the HS256 secret (`seatgrid token`, tests, benchmarks).

use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

use crate::error::CommandError;
use crate::identity::{parse_subject, Caller, Identity, Role};

/// The scheme of the `Authorization` header.
pub const BEARER: &str = "Bearer ";
/// Tokens longer than this are refused before they are parsed.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The authenticator could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum TokenSetupError {
    #[error("the token key is unusable: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
    #[error("the JWKS has no usable RS256/ES256 key")]
    NoUsableKey,
    #[error("tokens can only be minted with the HS256 development secret")]
    CannotMint,
}

struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
    /// What a token signed with this key must also satisfy (built with the key, not per token).
    validation: Validation,
}

/// Verifies bearer tokens, and mints them when it holds the development secret.
pub struct Authenticator {
    keys: RwLock<Vec<VerifyingKey>>,
    issuer: Option<String>,
    audience: Option<String>,
    role_claim: Vec<String>,
    signer: Option<EncodingKey>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("role_claim", &self.role_claim.join("."))
            .field("can_mint", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    fn with_keys(keys: Vec<VerifyingKey>, signer: Option<EncodingKey>) -> Self {
        let this = Self {
            keys: RwLock::new(keys),
            issuer: None,
            audience: None,
            role_claim: vec!["role".into()],
            signer,
        };
        this.revalidate()
    }

    /// What a token signed with `algorithm` must satisfy besides its signature: not expired
    /// (30 s of leeway), a subject, and the issuer and audience when configured.
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Rebuilds every key's validation (after the issuer or audience changed).
    fn revalidate(self) -> Self {
        {
            let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
            for key in keys.iter_mut() {
                key.validation = self.validation(key.algorithm);
            }
        }
        self
    }

    /// HS256 with a shared secret: verifies and mints (development, tests).
    pub fn hs256(secret: &[u8]) -> Result<Self, TokenSetupError> {
        let key = VerifyingKey {
            kid: None,
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret)?,
            validation: Validation::new(Algorithm::HS256),
        };
        Ok(Self::with_keys(
            vec![key],
            Some(EncodingKey::from_secret(secret)?),
        ))
    }

    /// RS256 or ES256 with a PEM public key (an identity provider's signing key).
    pub fn public_key(algorithm: Algorithm, pem: &[u8]) -> Result<Self, TokenSetupError> {
        let key = match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem)?,
            _ => DecodingKey::from_rsa_pem(pem)?,
        };
        let key = VerifyingKey {
            kid: None,
            algorithm,
            key,
            validation: Validation::new(algorithm),
        };
        Ok(Self::with_keys(vec![key], None))
    }

    /// The RS256/ES256 keys of a JWKS document.
    pub fn jwks(set: &JwkSet) -> Result<Self, TokenSetupError> {
        let this = Self::with_keys(Vec::new(), None);
        this.replace_jwks(set)?;
        Ok(this)
    }

    /// Swaps in a newer JWKS (keys rotate at the identity provider).
    pub fn replace_jwks(&self, set: &JwkSet) -> Result<(), TokenSetupError> {
        let keys: Vec<VerifyingKey> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let algorithm = match jwk.common.key_algorithm.map(Algorithm::try_from) {
                    Some(Ok(a @ (Algorithm::RS256 | Algorithm::ES256))) => a,
                    None => match &jwk.algorithm {
                        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                            Algorithm::ES256
                        }
                        _ => return None,
                    },
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(VerifyingKey {
                    kid: jwk.common.key_id.clone(),
                    algorithm,
                    key,
                    validation: self.validation(algorithm),
                })
            })
            .collect();
        if keys.is_empty() {
            return Err(TokenSetupError::NoUsableKey);
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    pub fn with_issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self.revalidate()
    }

    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self.revalidate()
    }

    /// The claim that carries the role: a name, or a dotted path into objects.
    pub fn with_role_claim(mut self, claim: &str) -> Self {
        self.role_claim = claim.split('.').map(str::to_owned).collect();
        self
    }

    /// The caller named by an `Authorization` header's raw value, or `None` without one.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Option<Caller>, CommandError> {
        let Some(raw) = header else {
            return Ok(None);
        };
        let text = std::str::from_utf8(raw).map_err(|_| {
            CommandError::Unauthenticated("the Authorization header is not text".into())
        })?;
        let token = text
            .strip_prefix(BEARER)
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| {
                CommandError::Unauthenticated(
                    "send the token as `Authorization: Bearer <token>`".into(),
                )
            })?;
        self.verify(token.trim()).map(Some)
    }

    /// Who an `Authorization` header's raw value names: no one, a caller, or an invalid token.
    pub fn identify(&self, header: Option<&[u8]>) -> Identity {
        match self.authenticate(header) {
            Ok(Some(caller)) => Identity::Caller(caller),
            Ok(None) => Identity::Anonymous,
            Err(e) => Identity::Invalid(e.to_string()),
        }
    }

    /// The caller a token names, if its signature, expiry, issuer and audience hold.
    pub fn verify(&self, token: &str) -> Result<Caller, CommandError> {
        let refuse = |why: String| CommandError::Unauthenticated(format!("invalid token: {why}"));
        if token.len() > MAX_TOKEN_LEN {
            return Err(refuse(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(e.to_string()))?;
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys
            .iter()
            .find(|k| {
                k.algorithm == header.alg
                    && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            })
            .ok_or_else(|| refuse(format!("no key for algorithm {:?}", header.alg)))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation)
            .map_err(|e| refuse(e.to_string()))?;
        drop(keys);
        self.caller(&data.claims)
    }

    fn caller(&self, claims: &Map<String, Value>) -> Result<Caller, CommandError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let customer = parse_subject(sub)?;
        let mut at = claims.get(&self.role_claim[0]);
        for part in &self.role_claim[1..] {
            at = at.and_then(|v| v.get(part));
        }
        let role = match at {
            Some(Value::String(s)) => Role::parse(s),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Role::parse)
                .max(),
            _ => None,
        }
        .unwrap_or(Role::Buyer);
        let all_events = claims.get("events").and_then(Value::as_str) == Some("all");
        Ok(Caller {
            customer,
            role,
            all_events,
        })
    }

    /// A token for `sub` with `role`, valid for `ttl` (HS256 development secret only).
    /// Whether this authenticator holds the development secret that [`Self::mint`] needs.
    pub fn can_mint(&self) -> bool {
        self.signer.is_some()
    }

    pub fn mint(&self, sub: &str, role: Role, ttl: Duration) -> Result<String, TokenSetupError> {
        let signer = self.signer.as_ref().ok_or(TokenSetupError::CannotMint)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut claims = json!({
            "sub": sub,
            "role": role.as_str(),
            "iat": now,
            "exp": now.saturating_add(ttl.as_secs()),
        });
        if let Some(iss) = &self.issuer {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = &self.audience {
            claims["aud"] = json!(aud);
        }
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            signer,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn given_a_minted_token_then_it_names_its_subject_and_role() {
        let auth = Authenticator::hs256(b"secret").unwrap();
        let token = auth.mint("alice", Role::Organizer, HOUR).unwrap();
        let identity = auth.identify(Some(&bearer(&token)));
        let caller = identity.caller().unwrap();
        assert_eq!(caller.customer.as_str(), "alice");
        assert_eq!(caller.role, Role::Organizer);
        assert!(!caller.all_events);
    }

    #[test]
    fn given_no_bad_or_foreign_tokens_then_each_is_unauthenticated() {
        let auth = Authenticator::hs256(b"secret").unwrap();
        assert!(auth.authenticate(None).unwrap().is_none());
        assert_eq!(
            auth.identify(None).caller().unwrap_err().code(),
            "unauthenticated"
        );
        let foreign = Authenticator::hs256(b"other")
            .unwrap()
            .mint("a", Role::Admin, HOUR)
            .unwrap();
        let expired = auth.mint("a", Role::Buyer, Duration::ZERO).unwrap();
        for header in [
            bearer(&foreign),
            bearer("not.a.token"),
            b"Basic YTpi".to_vec(),
            vec![0xff, 0xfe],
            bearer(&"x".repeat(MAX_TOKEN_LEN + 1)),
        ] {
            let e = auth.authenticate(Some(&header)).unwrap_err();
            assert_eq!(e.code(), "unauthenticated", "{header:?}");
        }
        // Expired beyond the 30 s leeway.
        let old = {
            let mut claims = json!({"sub": "a", "exp": 1_000});
            claims["role"] = json!("buyer");
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(b"secret").unwrap(),
            )
            .unwrap()
        };
        assert!(auth.verify(&old).is_err());
        assert!(auth.verify(&expired).is_ok(), "within the leeway");
    }

    #[test]
    fn given_a_provider_role_claim_then_the_highest_known_role_counts() {
        let auth = Authenticator::hs256(b"s")
            .unwrap()
            .with_role_claim("realm_access.roles");
        let claims = json!({
            "sub": "kc-user",
            "exp": 4_000_000_000u64,
            "realm_access": {"roles": ["offline_access", "organizer", "buyer"]},
            "events": "all",
        });
        let token = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"s").unwrap(),
        )
        .unwrap();
        let caller = auth.verify(&token).unwrap();
        assert_eq!(caller.role, Role::Organizer);
        assert!(caller.all_events);
        let plain = Authenticator::hs256(b"s").unwrap();
        assert_eq!(plain.verify(&token).unwrap().role, Role::Buyer);
    }

    #[test]
    fn given_an_issuer_and_audience_then_tokens_must_carry_them() {
        let auth = Authenticator::hs256(b"s")
            .unwrap()
            .with_issuer(Some("https://id.example".into()))
            .with_audience(Some("seatgrid".into()));
        let good = auth.mint("a", Role::Buyer, HOUR).unwrap();
        assert!(auth.verify(&good).is_ok());
        let bare = Authenticator::hs256(b"s")
            .unwrap()
            .mint("a", Role::Buyer, HOUR)
            .unwrap();
        assert!(auth.verify(&bare).is_err());
    }

    #[test]
    fn given_a_public_key_then_only_its_algorithm_verifies_and_nothing_mints() {
        // An HS256 token must not pass as RS256 with the public key as the HMAC secret.
        let pem = include_bytes!("../tests/keys/rs256.pub.pem");
        let auth = Authenticator::public_key(Algorithm::RS256, pem).unwrap();
        let forged = Authenticator::hs256(pem)
            .unwrap()
            .mint("a", Role::Admin, HOUR)
            .unwrap();
        assert!(auth.verify(&forged).is_err());
        assert!(matches!(
            auth.mint("a", Role::Buyer, HOUR),
            Err(TokenSetupError::CannotMint)
        ));
        let key = EncodingKey::from_rsa_pem(include_bytes!("../tests/keys/rs256.pem")).unwrap();
        let claims = json!({"sub": "idp-user", "exp": 4_000_000_000u64, "role": "admin"});
        let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap();
        assert_eq!(auth.verify(&token).unwrap().role, Role::Admin);
    }
}
