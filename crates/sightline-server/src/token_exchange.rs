//! Phone sign-in: `POST /auth/exchange-token` (also under `/api`). The
//! MentraOS phone app signs the user in with its identity provider and
//! exchanges that provider's token (`{"supabaseToken": …}`) for a Sightline
//! core token (`{"coreToken": …}`), which it then uses on `/glasses-ws` and
//! the REST routes.
//!
//! The provider's tokens are verified with the configured
//! [`IdentityProvider`]: an HS256 secret (`SIGHTLINE_IDP_JWT_SECRET`) or a
//! JWKS URL (`SIGHTLINE_IDP_JWKS_URL`, RS256/ES256 keys fetched and cached,
//! refetched at most once a minute for an unknown key id), with the issuer
//! and audience checked when configured. The user is the token's `email`
//! claim. The core token is HS256 with Sightline's JWT secret, carrying
//! `email`, `sub`, `iat` and `exp`.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

use crate::auth::MAX_TOKEN_BYTES;
use crate::SharedState;

/// How a provider's tokens are checked.
#[derive(Debug, Clone)]
pub enum IdpKeys {
    /// A shared HS256 secret.
    Secret(String),
    /// Keys published at a JWKS URL.
    Jwks(String),
}

/// The identity provider whose tokens the phone exchanges.
#[derive(Debug, Clone)]
pub struct IdentityProvider {
    pub keys: IdpKeys,
    /// Required `iss`, when set (`SIGHTLINE_IDP_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud`, when set (`SIGHTLINE_IDP_AUDIENCE`).
    pub audience: Option<String>,
}

/// How long a core token issued here is valid.
pub const CORE_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The least time between two fetches of the provider's keys.
const JWKS_REFETCH: Duration = Duration::from_secs(60);
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum ExchangeError {
    #[error("no identity provider is configured: set SIGHTLINE_IDP_JWT_SECRET or SIGHTLINE_IDP_JWKS_URL")]
    NotConfigured,
    #[error("the identity provider's token is not valid: {0}")]
    Invalid(String),
    #[error("the identity provider's keys could not be fetched: {0}")]
    Keys(String),
}

/// The provider's keys as last fetched.
#[derive(Default)]
pub struct JwksCache {
    keys: Mutex<Option<(JwkSet, Instant)>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneSignIn {
    /// The identity provider's access token for the user.
    #[serde(default)]
    supabase_token: Option<String>,
}

#[derive(Deserialize)]
struct ProviderClaims {
    email: Option<String>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn fetch_jwks(url: &str) -> Result<JwkSet, ExchangeError> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    let mut res = client
        .get(url)
        .send()
        .await
        .map_err(|e| ExchangeError::Keys(e.to_string()))?;
    if !res.status().is_success() {
        return Err(ExchangeError::Keys(format!(
            "{url} answered HTTP {}",
            res.status().as_u16()
        )));
    }
    let body = res
        .body()
        .limit(MAX_JWKS_BYTES)
        .await
        .map_err(|e| ExchangeError::Keys(e.to_string()))?;
    serde_json::from_slice(&body)
        .map_err(|e| ExchangeError::Keys(format!("not a JWKS document: {e}")))
}

impl IdentityProvider {
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 60;
        v.required_spec_claims.clear();
        v.required_spec_claims.insert("exp".into());
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        v
    }

    /// The user a provider token names, if it is valid.
    pub async fn verify(&self, token: &str, cache: &JwksCache) -> Result<String, ExchangeError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ExchangeError::Invalid("too long".into()));
        }
        let header = decode_header(token).map_err(|e| ExchangeError::Invalid(e.to_string()))?;
        let claims = match &self.keys {
            IdpKeys::Secret(secret) => {
                if header.alg != Algorithm::HS256 {
                    return Err(ExchangeError::Invalid(format!(
                        "{:?} is not HS256",
                        header.alg
                    )));
                }
                decode::<ProviderClaims>(
                    token,
                    &DecodingKey::from_secret(secret.as_bytes()),
                    &self.validation(Algorithm::HS256),
                )
            }
            IdpKeys::Jwks(url) => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(ExchangeError::Invalid(format!(
                        "{:?} is not RS256 or ES256",
                        header.alg
                    )));
                }
                let kid = header.kid.clone().unwrap_or_default();
                let key = self.key_for(url, &kid, cache).await?;
                decode::<ProviderClaims>(token, &key, &self.validation(header.alg))
            }
        }
        .map_err(|e| ExchangeError::Invalid(e.to_string()))?;
        claims
            .claims
            .email
            .filter(|e| !e.is_empty() && e.len() <= 320)
            .map(|e| e.to_lowercase())
            .ok_or_else(|| ExchangeError::Invalid("the token names no email".into()))
    }

    async fn key_for(
        &self,
        url: &str,
        kid: &str,
        cache: &JwksCache,
    ) -> Result<DecodingKey, ExchangeError> {
        let lookup = |set: &JwkSet| {
            set.keys
                .iter()
                .find(|k| kid.is_empty() || k.common.key_id.as_deref() == Some(kid))
                .and_then(|k| DecodingKey::from_jwk(k).ok())
        };
        let fresh_enough = {
            let guard = cache
                .keys
                .lock()
                .map_err(|_| ExchangeError::Keys("cache poisoned".into()))?;
            match guard.as_ref() {
                Some((set, at)) => match lookup(set) {
                    Some(key) => return Ok(key),
                    None => at.elapsed() < JWKS_REFETCH,
                },
                None => false,
            }
        };
        if fresh_enough {
            return Err(ExchangeError::Invalid(format!(
                "no key {kid:?} at the identity provider"
            )));
        }
        let set = fetch_jwks(url).await?;
        let key = lookup(&set);
        if let Ok(mut guard) = cache.keys.lock() {
            *guard = Some((set, Instant::now()));
        }
        key.ok_or_else(|| {
            ExchangeError::Invalid(format!("no key {kid:?} at the identity provider"))
        })
    }
}

/// A Sightline core token for `email`.
pub fn core_token(email: &str, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    let now = now_secs();
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": email, "email": email, "iat": now, "exp": now + CORE_TOKEN_LIFETIME.as_secs()}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

fn error(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message}))
}

/// `POST /auth/exchange-token`.
#[utoipa::path(
    post, path = "/auth/exchange-token", tag = "users",
    request_body = PhoneSignIn,
    responses(
        (status = 200, description = "`{coreToken}`: a Sightline core token for the user the provider's token names"),
        (status = 400, description = "`{error}`: no token given"),
        (status = 401, description = "`{error}`: the token is not valid for the configured provider"),
        (status = 503, description = "`{error}`: no provider configured, its keys unavailable, or the store down"),
    )
)]
pub async fn exchange(state: web::Data<SharedState>, body: web::Json<PhoneSignIn>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(token) = body.into_inner().supabase_token.filter(|t| !t.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "No token provided");
    };
    let Some(idp) = &state.config.identity_provider else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &ExchangeError::NotConfigured.to_string(),
        );
    };
    let email = match idp.verify(&token, &state.jwks).await {
        Ok(email) => email,
        Err(ExchangeError::Keys(why)) => {
            tracing::warn!(error = %why, "identity provider keys unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the identity provider's keys are unavailable",
            );
        }
        Err(e) => {
            tracing::info!(error = %e, "phone sign-in refused");
            return error(StatusCode::UNAUTHORIZED, "Invalid token");
        }
    };
    if let Err(e) = state.runtime.store.ensure_user(&email).await {
        tracing::warn!(error = %e, "could not create the user at sign-in");
        return error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    }
    match core_token(&email, &state.config.jwt_secret) {
        Ok(t) => {
            tracing::info!(user = %email, "phone signed in");
            HttpResponse::Ok().json(json!({"coreToken": t}))
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not issue a core token",
        ),
    }
}
