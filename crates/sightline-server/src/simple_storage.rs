//! Simple storage over REST: the SDK's `session.simpleStorage`, a string
//! key/value map each app keeps for each of its users.
//!
//! - `GET /api/sdk/simple-storage/{userId}`: the whole map, `{success, data}`.
//! - `PUT /api/sdk/simple-storage/{userId}`: `{data: {key: value}}` sets
//!   those keys and keeps the others (the SDK's debounced flush).
//! - `DELETE /api/sdk/simple-storage/{userId}`: clears the map.
//! - `GET`/`PUT`/`DELETE /api/sdk/simple-storage/{userId}/{key}`: one key
//!   (`PUT` takes `{value}`).
//!
//! The bearer is `<packageName>:<apiKey>`. Its package is the only one
//! whose storage a request reaches, and its key must match the app's
//! stored key hash (compared in constant time), else 401. A bearer that
//! cannot be one is refused before anything else; the key is checked
//! before the body is read. The app is then held to its request rate
//! ([`crate::app_rate`], 429), and the user must have it installed or
//! running, else 403. A write that would take the map past
//! [`Limits::storage_bytes`](crate::limits::Limits::storage_bytes) is
//! refused with 413 and changes nothing.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sightline_store::{verify_api_key, StorageEntries, StorageWrite};

use crate::auth::{bearer, MAX_TOKEN_BYTES};
use crate::error::ApiError;
use crate::views::{
    ErrorBody, StorageBatch, StorageData, StorageDeleted, StorageItem, StorageOne, StorageSaved,
    StorageValue,
};
use crate::SharedState;

/// Longest user id (an e-mail address) a path may name.
const MAX_USER_BYTES: usize = 320;

/// The `<packageName>:<apiKey>` bearer of a request, not yet verified. As
/// an extractor it answers 401 at once when there is no such bearer, so a
/// request without one never has its body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub package_name: String,
    pub api_key: String,
}

impl AppKey {
    /// Splits a bearer at its first `:` (package names have none).
    pub fn parse(token: &str) -> Option<AppKey> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let (package, key) = token.split_once(':')?;
        (!package.is_empty() && !key.is_empty()).then(|| AppKey {
            package_name: package.to_string(),
            api_key: key.to_string(),
        })
    }
}

impl FromRequest for AppKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            bearer(req.headers())
                .and_then(AppKey::parse)
                .ok_or(ApiError::Unauthorized),
        )
    }
}

/// Checks the bearer's key, the app's rate and the user's install, in that
/// order; answers the package whose storage the request may use.
async fn authorize(state: &SharedState, key: &AppKey, user: &str) -> Result<String, ApiError> {
    let store = &state.runtime.store;
    let app = store.get_app(&key.package_name).await?;
    // An unknown package and a wrong key answer alike.
    let verified = app
        .as_ref()
        .is_some_and(|a| verify_api_key(&key.api_key, &a.hashed_api_key));
    if !verified {
        return Err(ApiError::Unauthorized);
    }
    if !state.storage_rates.admit(&key.package_name) {
        return Err(ApiError::RateLimited(format!(
            "{} made more than {} simple storage requests a second (burst {}); retry later \
             (SIGHTLINE_STORAGE_RATE_PER_SECOND)",
            key.package_name,
            state.config.limits.storage_rate.per_second,
            state.config.limits.storage_rate.burst
        )));
    }
    if user.is_empty() || user.len() > MAX_USER_BYTES {
        return Err(ApiError::BadRequest(format!(
            "the user id must be 1-{MAX_USER_BYTES} bytes"
        )));
    }
    let allowed = store.get_user(user).await?.is_some_and(|u| {
        u.installed_apps.contains(&key.package_name) || u.running_apps.contains(&key.package_name)
    });
    if !allowed {
        return Err(ApiError::Forbidden(format!(
            "{} is neither installed nor running for this user",
            key.package_name
        )));
    }
    Ok(key.package_name.clone())
}

/// Checks one key against the key bound.
fn check_key(state: &SharedState, key: &str) -> Result<(), ApiError> {
    let max = state.config.limits.storage_key_bytes;
    if key.is_empty() || key.len() > max {
        return Err(ApiError::BadRequest(format!(
            "a simple storage key must be 1-{max} bytes (SIGHTLINE_STORAGE_MAX_KEY_BYTES)"
        )));
    }
    Ok(())
}

/// Reads a JSON body of at most [`Limits::storage_body_bytes`](crate::limits::Limits::storage_body_bytes).
async fn read_json<T: DeserializeOwned>(
    state: &SharedState,
    mut payload: web::Payload,
) -> Result<T, ApiError> {
    let limit = state.config.limits.storage_body_bytes();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "the request body is over {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON for this call: {e}")))
}

/// The entries of a write: string values under bounded keys.
fn entries_of(state: &SharedState, data: Map<String, Value>) -> Result<StorageEntries, ApiError> {
    let mut entries = StorageEntries::new();
    for (key, value) in data {
        check_key(state, &key)?;
        let Value::String(value) = value else {
            return Err(ApiError::BadRequest(format!(
                "the value of {key:?} must be a string"
            )));
        };
        entries.insert(key, value);
    }
    Ok(entries)
}

/// Stores `entries`, answering 413 when the map would be over its bound.
async fn write(
    state: &SharedState,
    user: &str,
    package: &str,
    entries: StorageEntries,
) -> Result<HttpResponse, ApiError> {
    let max = state.config.limits.storage_bytes;
    match state
        .runtime
        .store
        .set_storage(user, package, entries, max)
        .await?
    {
        StorageWrite::Stored { bytes } => Ok(HttpResponse::Ok().json(StorageSaved {
            success: true,
            bytes,
            max_bytes: max,
        })),
        StorageWrite::OverQuota { bytes } => Err(ApiError::TooLarge(format!(
            "simple storage would hold {bytes} bytes of keys and values; at most {max} are \
             stored per user and app (SIGHTLINE_STORAGE_MAX_BYTES)"
        ))),
    }
}

/// Reads the user's whole map.
#[utoipa::path(
    get, path = "/api/sdk/simple-storage/{userId}", tag = "apps",
    params(("userId" = String, Path, description = "The user (e-mail)")),
    responses(
        (status = 200, description = "Every stored key and value", body = StorageData),
        (status = 401, description = "No `<packageName>:<apiKey>` bearer, or a wrong key", body = ErrorBody),
        (status = 403, description = "The app is neither installed nor running for this user", body = ErrorBody),
        (status = 429, description = "The app is over its request rate", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("package_api_key" = []))
)]
pub async fn get_all(
    key: AppKey,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path.into_inner();
    let package = authorize(&state, &key, &user).await?;
    let data = state.runtime.store.get_storage(&user, &package).await?;
    Ok(HttpResponse::Ok().json(StorageData {
        success: true,
        data,
    }))
}

/// Sets several keys, keeping the others.
#[utoipa::path(
    put, path = "/api/sdk/simple-storage/{userId}", tag = "apps",
    params(("userId" = String, Path, description = "The user (e-mail)")),
    request_body(content = StorageBatch, description = "The keys to set"),
    responses(
        (status = 200, description = "Stored", body = StorageSaved),
        (status = 400, description = "Not `{data: {key: string}}`, or a key out of bounds", body = ErrorBody),
        (status = 401, description = "No `<packageName>:<apiKey>` bearer, or a wrong key", body = ErrorBody),
        (status = 403, description = "The app is neither installed nor running for this user", body = ErrorBody),
        (status = 413, description = "The map would exceed its size bound; nothing was written", body = ErrorBody),
        (status = 429, description = "The app is over its request rate", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("package_api_key" = []))
)]
pub async fn put_many(
    key: AppKey,
    state: web::Data<SharedState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let user = path.into_inner();
    let package = authorize(&state, &key, &user).await?;
    let batch: StorageBatch = read_json(&state, payload).await?;
    let entries = entries_of(&state, batch.data)?;
    write(&state, &user, &package, entries).await
}

/// Clears the user's whole map.
#[utoipa::path(
    delete, path = "/api/sdk/simple-storage/{userId}", tag = "apps",
    params(("userId" = String, Path, description = "The user (e-mail)")),
    responses(
        (status = 200, description = "Cleared", body = StorageDeleted),
        (status = 401, description = "No `<packageName>:<apiKey>` bearer, or a wrong key", body = ErrorBody),
        (status = 403, description = "The app is neither installed nor running for this user", body = ErrorBody),
        (status = 429, description = "The app is over its request rate", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("package_api_key" = []))
)]
pub async fn clear(
    key: AppKey,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path.into_inner();
    let package = authorize(&state, &key, &user).await?;
    let deleted = state.runtime.store.clear_storage(&user, &package).await?;
    Ok(HttpResponse::Ok().json(StorageDeleted {
        success: true,
        deleted,
    }))
}

/// Reads one key.
#[utoipa::path(
    get, path = "/api/sdk/simple-storage/{userId}/{key}", tag = "apps",
    params(
        ("userId" = String, Path, description = "The user (e-mail)"),
        ("key" = String, Path, description = "The key"),
    ),
    responses(
        (status = 200, description = "The value", body = StorageValue),
        (status = 400, description = "A key out of bounds", body = ErrorBody),
        (status = 401, description = "No `<packageName>:<apiKey>` bearer, or a wrong key", body = ErrorBody),
        (status = 403, description = "The app is neither installed nor running for this user", body = ErrorBody),
        (status = 404, description = "The key is not stored", body = ErrorBody),
        (status = 429, description = "The app is over its request rate", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("package_api_key" = []))
)]
pub async fn get_one(
    key: AppKey,
    state: web::Data<SharedState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user, name) = path.into_inner();
    let package = authorize(&state, &key, &user).await?;
    check_key(&state, &name)?;
    let mut data = state.runtime.store.get_storage(&user, &package).await?;
    let value = data
        .remove(&name)
        .ok_or_else(|| ApiError::NotFound(format!("key {name:?} is not stored")))?;
    Ok(HttpResponse::Ok().json(StorageValue {
        success: true,
        data: StorageItem { key: name, value },
    }))
}

/// Sets one key.
#[utoipa::path(
    put, path = "/api/sdk/simple-storage/{userId}/{key}", tag = "apps",
    params(
        ("userId" = String, Path, description = "The user (e-mail)"),
        ("key" = String, Path, description = "The key"),
    ),
    request_body(content = StorageOne, description = "`{value: string}`"),
    responses(
        (status = 200, description = "Stored", body = StorageSaved),
        (status = 400, description = "Not `{value: string}`, or a key out of bounds", body = ErrorBody),
        (status = 401, description = "No `<packageName>:<apiKey>` bearer, or a wrong key", body = ErrorBody),
        (status = 403, description = "The app is neither installed nor running for this user", body = ErrorBody),
        (status = 413, description = "The map would exceed its size bound; nothing was written", body = ErrorBody),
        (status = 429, description = "The app is over its request rate", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("package_api_key" = []))
)]
pub async fn put_one(
    key: AppKey,
    state: web::Data<SharedState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (user, name) = path.into_inner();
    let package = authorize(&state, &key, &user).await?;
    check_key(&state, &name)?;
    let one: StorageOne = read_json(&state, payload).await?;
    let mut data = Map::new();
    data.insert(name, one.value);
    let entries = entries_of(&state, data)?;
    write(&state, &user, &package, entries).await
}

/// Deletes one key.
#[utoipa::path(
    delete, path = "/api/sdk/simple-storage/{userId}/{key}", tag = "apps",
    params(
        ("userId" = String, Path, description = "The user (e-mail)"),
        ("key" = String, Path, description = "The key"),
    ),
    responses(
        (status = 200, description = "Deleted (or was not stored)", body = StorageDeleted),
        (status = 400, description = "A key out of bounds", body = ErrorBody),
        (status = 401, description = "No `<packageName>:<apiKey>` bearer, or a wrong key", body = ErrorBody),
        (status = 403, description = "The app is neither installed nor running for this user", body = ErrorBody),
        (status = 429, description = "The app is over its request rate", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("package_api_key" = []))
)]
pub async fn delete_one(
    key: AppKey,
    state: web::Data<SharedState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user, name) = path.into_inner();
    let package = authorize(&state, &key, &user).await?;
    check_key(&state, &name)?;
    let deleted = state
        .runtime
        .store
        .delete_storage_key(&user, &package, &name)
        .await?;
    Ok(HttpResponse::Ok().json(StorageDeleted {
        success: true,
        deleted,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_names_a_package_and_a_key() {
        assert_eq!(
            AppKey::parse("com.a:se:cret"),
            Some(AppKey {
                package_name: "com.a".into(),
                api_key: "se:cret".into()
            })
        );
        for bad in ["com.a", ":key", "com.a:", ""] {
            assert_eq!(AppKey::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            AppKey::parse(&format!("a:{}", "k".repeat(MAX_TOKEN_BYTES))),
            None
        );
    }
}
