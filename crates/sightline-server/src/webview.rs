//! Webview sign-in: how an app's web page, opened by the phone inside the
//! MentraOS app, learns which Sightline user is looking at it.
//!
//! 1. The phone (glasses core token) asks `POST /api/auth/generate-webview-token`
//!    for a temporary token for the app ([`crate::temp_tokens`]), and
//!    `POST /api/auth/generate-webview-signed-user-token` for a signed user
//!    token (an RS256 JWT signed with [`crate::user_token_key`]).
//! 2. It opens the app's webview URL with `aos_temp_token`,
//!    `aos_signed_user_token`, `cloudApiUrl` (Sightline's public API URL)
//!    and `cloudApiUrlChecksum`, which proves to the app that Sightline
//!    chose that URL: `sha256hex(cloudApiUrl + sha256hex(apiKey))`, where
//!    `sha256hex(apiKey)` is the hash Sightline stores. The answer of
//!    generate-webview-token carries both, and `POST /api/auth/hash-with-api-key`
//!    computes the checksum for a phone that builds the URL itself.
//! 3. The SDK's auth middleware in the app's server either verifies the
//!    signed user token offline (with `MENTRAOS_CLOUD_USER_TOKEN_PUBLIC_KEY`
//!    set to Sightline's public key, `GET /.well-known/sightline-user-token-key.pem`)
//!    or trades the temporary token at `POST /api/auth/exchange-user-token`,
//!    presenting its API key.
//!
//! These routes answer the MentraOS shapes the SDK and the phone read:
//! `{"success": true, ...}`, and on failure `{"success": false, "error": "..."}`
//! (the SDK shows `error`).
//!
//! `hash-with-api-key` hashes only Sightline's own public API URL: a
//! checksum for any other URL would let a user send an app's server (and
//! its API key) to a host of their choosing, and a hash of a user id is a
//! frontend token for that user.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sightline_store::{verify_api_key, AppRecord};
use utoipa::ToSchema;

use crate::auth::{bearer, AdminAuth, CoreUser};
use crate::error::ApiError;
use crate::temp_tokens::TempTokenError;
use crate::user_token_key::KeyError;
use crate::views::ErrorBody;
use crate::SharedState;

/// The issuer every signed user token names: the SDK accepts no other.
pub const SIGNED_USER_TOKEN_ISSUER: &str = "https://prod.augmentos.cloud";
/// Lifetime of a signed user token, in seconds (the SDK allows two more
/// minutes of clock skew).
pub const SIGNED_USER_TOKEN_TTL_SECS: u64 = 600;
/// Longest string `hash-with-api-key` reads, and longest package name.
const MAX_FIELD_BYTES: usize = 2048;

/// A failure of a webview route, answered `{"success": false, "error"}`.
#[derive(Debug, thiserror::Error)]
pub enum WebviewError {
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Busy(String),
    #[error("storage unavailable: {0}")]
    Store(String),
    #[error("{0}")]
    Key(String),
}

impl From<sightline_store::StoreError> for WebviewError {
    fn from(e: sightline_store::StoreError) -> Self {
        WebviewError::Store(e.to_string())
    }
}

impl From<KeyError> for WebviewError {
    fn from(e: KeyError) -> Self {
        tracing::error!(error = %e, "the user token key is not usable");
        WebviewError::Key("Failed to generate token".into())
    }
}

impl From<TempTokenError> for WebviewError {
    fn from(e: TempTokenError) -> Self {
        WebviewError::Busy(e.to_string())
    }
}

impl ResponseError for WebviewError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebviewError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebviewError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebviewError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebviewError::NotFound(_) => StatusCode::NOT_FOUND,
            WebviewError::Busy(_) | WebviewError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebviewError::Key(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(json!({"success": false, "error": self.to_string()}))
    }
}

/// A failure answer of a webview route.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebviewFailure {
    /// Always `false`.
    pub success: bool,
    pub error: String,
}

/// Body of the phone's token requests.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebviewTokenRequest {
    pub package_name: Option<String>,
}

/// Answer of `generate-webview-token`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebviewToken {
    pub success: bool,
    /// The temporary token, for the webview URL's `aos_temp_token`; good
    /// once, for [`crate::temp_tokens::TempTokenLimits::ttl`].
    pub token: String,
    /// Sightline's public API URL, for the webview URL's `cloudApiUrl`.
    pub cloud_api_url: String,
    /// For the webview URL's `cloudApiUrlChecksum`.
    pub cloud_api_url_checksum: String,
}

/// Answer of `generate-webview-signed-user-token`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedUserToken {
    pub success: bool,
    /// An RS256 JWT: `sub` is the user, `frontendToken` is
    /// `<user>:sha256hex(user + sha256hex(apiKey))`.
    pub token: String,
    /// Always `10m`.
    pub expires_in: String,
}

/// Body of `exchange-user-token`, as the SDK sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeRequest {
    #[serde(rename = "aos_temp_token")]
    pub aos_temp_token: Option<String>,
    pub package_name: Option<String>,
}

/// Answer of `exchange-user-token`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangedUser {
    pub success: bool,
    pub user_id: String,
}

/// Body of `hash-with-api-key`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashRequest {
    pub string_to_hash: Option<String>,
    pub package_name: Option<String>,
}

/// Answer of `hash-with-api-key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HashAnswer {
    pub success: bool,
    pub hash: String,
}

/// Answer of the key rotation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedUserTokenKey {
    /// The new key's id, in the header of every token signed with it.
    pub kid: String,
    /// The new public key (SPKI PEM) to give apps.
    pub public_key: String,
}

/// `sha256hex(text + hashed_api_key)`: the cloud URL checksum and the
/// frontend token hash of the MentraOS SDK.
pub fn hash_with_hashed_key(text: &str, hashed_api_key: &str) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(text.as_bytes())
            .chain_update(hashed_api_key.as_bytes())
            .finalize(),
    )
}

fn package_of(package: Option<String>) -> Result<String, WebviewError> {
    match package.map(|p| p.trim().to_string()) {
        Some(p) if !p.is_empty() && p.len() <= MAX_FIELD_BYTES => Ok(p),
        Some(p) if !p.is_empty() => Err(WebviewError::BadRequest("packageName is too long")),
        _ => Err(WebviewError::BadRequest("packageName is required")),
    }
}

async fn app_of(state: &SharedState, package: &str) -> Result<AppRecord, WebviewError> {
    state
        .runtime
        .store
        .get_app(package)
        .await?
        .ok_or_else(|| WebviewError::NotFound(format!("app {package} not found")))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Issues a temporary webview token for the calling user and an app.
#[utoipa::path(
    post, path = "/api/auth/generate-webview-token", tag = "webview",
    request_body = WebviewTokenRequest,
    responses(
        (status = 200, description = "A temporary token and the webview URL's cloud parameters", body = WebviewToken),
        (status = 400, description = "No packageName", body = WebviewFailure),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 404, description = "No such app", body = WebviewFailure),
        (status = 503, description = "Too many tokens pending, or store unavailable", body = WebviewFailure),
    ),
    security(("core_token" = []))
)]
pub async fn generate_webview_token(
    CoreUser(user): CoreUser,
    state: web::Data<SharedState>,
    body: web::Json<WebviewTokenRequest>,
) -> Result<HttpResponse, WebviewError> {
    let package = package_of(body.into_inner().package_name)?;
    let app = app_of(&state, &package).await?;
    let token = state.temp_tokens.issue(&user, &package)?;
    let cloud_api_url = state.config.public_api_url();
    let cloud_api_url_checksum = hash_with_hashed_key(&cloud_api_url, &app.hashed_api_key);
    tracing::info!(user = %user, package = %package, "webview token issued");
    Ok(HttpResponse::Ok().json(WebviewToken {
        success: true,
        token,
        cloud_api_url,
        cloud_api_url_checksum,
    }))
}

/// Issues a signed user token for the calling user and an app, which the
/// app verifies offline with Sightline's public key.
#[utoipa::path(
    post, path = "/api/auth/generate-webview-signed-user-token", tag = "webview",
    request_body = WebviewTokenRequest,
    responses(
        (status = 200, description = "A signed user token", body = SignedUserToken),
        (status = 400, description = "No packageName", body = WebviewFailure),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 404, description = "No such app", body = WebviewFailure),
        (status = 500, description = "The signing key is not usable", body = WebviewFailure),
    ),
    security(("core_token" = []))
)]
pub async fn generate_signed_user_token(
    CoreUser(user): CoreUser,
    state: web::Data<SharedState>,
    body: web::Json<WebviewTokenRequest>,
) -> Result<HttpResponse, WebviewError> {
    let package = package_of(body.into_inner().package_name)?;
    let app = app_of(&state, &package).await?;
    let key = state.user_token_keys.get().await?;
    let now = unix_now();
    let claims = json!({
        "sub": user,
        "frontendToken": format!("{user}:{}", hash_with_hashed_key(&user, &app.hashed_api_key)),
        "iss": SIGNED_USER_TOKEN_ISSUER,
        "iat": now,
        "exp": now + SIGNED_USER_TOKEN_TTL_SECS,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a user token");
        WebviewError::Key("Failed to generate token".into())
    })?;
    Ok(HttpResponse::Ok().json(SignedUserToken {
        success: true,
        token,
        expires_in: "10m".into(),
    }))
}

/// Trades a temporary token for its user id; called by the app's server
/// with its API key as the bearer token.
#[utoipa::path(
    post, path = "/api/auth/exchange-user-token", tag = "webview",
    request_body = ExchangeRequest,
    responses(
        (status = 200, description = "The user who opened the webview", body = ExchangedUser),
        (status = 400, description = "No packageName or no aos_temp_token", body = WebviewFailure),
        (status = 401, description = "Missing or wrong API key, or a token unknown, used, expired or for another app", body = WebviewFailure),
        (status = 503, description = "Store unavailable", body = WebviewFailure),
    ),
    security(("app_api_key" = []))
)]
pub async fn exchange_user_token(
    req: HttpRequest,
    state: web::Data<SharedState>,
    body: web::Json<ExchangeRequest>,
) -> Result<HttpResponse, WebviewError> {
    let api_key = bearer(req.headers()).ok_or(WebviewError::Unauthorized(
        "Missing or invalid Authorization header",
    ))?;
    let body = body.into_inner();
    let package = package_of(body.package_name)
        .map_err(|_| WebviewError::BadRequest("Package name required for API key validation"))?;
    let app = match state.runtime.store.get_app(&package).await? {
        Some(app) => app,
        None => {
            return Err(WebviewError::Unauthorized(
                "Invalid API Key or Package Name",
            ))
        }
    };
    if !verify_api_key(api_key, &app.hashed_api_key) {
        tracing::warn!(package = %package, "token exchange with a wrong API key");
        return Err(WebviewError::Unauthorized("Invalid API Key"));
    }
    let token = body
        .aos_temp_token
        .filter(|t| !t.is_empty())
        .ok_or(WebviewError::BadRequest("Missing aos_temp_token"))?;
    match state.temp_tokens.exchange(&token, &package) {
        Some(user_id) => {
            tracing::info!(user = %user_id, package = %package, "webview token exchanged");
            Ok(HttpResponse::Ok().json(ExchangedUser {
                success: true,
                user_id,
            }))
        }
        None => Err(WebviewError::Unauthorized("Invalid or expired token")),
    }
}

/// Hashes Sightline's public API URL with an app's hashed API key: the
/// webview URL's `cloudApiUrlChecksum`. Any other string is refused.
#[utoipa::path(
    post, path = "/api/auth/hash-with-api-key", tag = "webview",
    request_body = HashRequest,
    responses(
        (status = 200, description = "sha256hex(stringToHash + sha256hex(apiKey))", body = HashAnswer),
        (status = 400, description = "No stringToHash or packageName", body = WebviewFailure),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 403, description = "stringToHash is not Sightline's public API URL", body = WebviewFailure),
        (status = 404, description = "No such app", body = WebviewFailure),
    ),
    security(("core_token" = []))
)]
pub async fn hash_with_api_key(
    CoreUser(_user): CoreUser,
    state: web::Data<SharedState>,
    body: web::Json<HashRequest>,
) -> Result<HttpResponse, WebviewError> {
    let body = body.into_inner();
    let (Some(text), Some(package)) = (body.string_to_hash, body.package_name) else {
        return Err(WebviewError::BadRequest(
            "stringToHash and packageName are required",
        ));
    };
    let package = package_of(Some(package))?;
    let own = &state.config.public_api_url();
    if text != *own {
        return Err(WebviewError::Forbidden(format!(
            "Sightline hashes only its own API URL ({own})"
        )));
    }
    let app = app_of(&state, &package).await?;
    Ok(HttpResponse::Ok().json(HashAnswer {
        success: true,
        hash: hash_with_hashed_key(&text, &app.hashed_api_key),
    }))
}

/// Sightline's public key for signed user tokens, as SPKI PEM: the value
/// to give apps in `MENTRAOS_CLOUD_USER_TOKEN_PUBLIC_KEY`.
#[utoipa::path(
    get, path = "/.well-known/sightline-user-token-key.pem", tag = "webview",
    responses(
        (status = 200, description = "The public key (PEM)", content_type = "application/x-pem-file", body = String),
        (status = 500, description = "The signing key is not usable", body = WebviewFailure),
    )
)]
pub async fn public_key(state: web::Data<SharedState>) -> Result<HttpResponse, WebviewError> {
    let key = state.user_token_keys.get().await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header(("Cache-Control", "no-cache"))
        .body(key.public_pem.clone()))
}

/// Replaces the signing key with a new one (kept in the data directory).
/// Apps must be given the new public key.
#[utoipa::path(
    post, path = "/api/admin/user-token-key", tag = "developers",
    responses(
        (status = 200, description = "The new key", body = RotatedUserTokenKey),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 409, description = "The key is given by SIGHTLINE_USER_TOKEN_PRIVATE_KEY", body = ErrorBody),
        (status = 500, description = "The key could not be generated or written", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn rotate_key(
    _: AdminAuth,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    match state.user_token_keys.rotate().await {
        Ok(key) => Ok(HttpResponse::Ok().json(RotatedUserTokenKey {
            kid: key.kid.clone(),
            public_key: key.public_pem.clone(),
        })),
        Err(e @ KeyError::Pinned) => Err(ApiError::Conflict(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "cannot rotate the user token key");
            Err(ApiError::Internal(
                "the user token key could not be rotated",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_the_sdks() {
        // sha256("https://a.example" + sha256hex("key")), as the SDK's
        // validateCloudApiUrlChecksum computes it.
        let hashed = sightline_store::hash_api_key("key");
        let expected = hex::encode(Sha256::digest(
            format!("https://a.example{hashed}").as_bytes(),
        ));
        assert_eq!(hash_with_hashed_key("https://a.example", &hashed), expected);
    }
}
