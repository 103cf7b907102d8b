//! App settings over REST (protocol §1.1, §3.3, §10).
//!
//! - `GET/POST /appsettings/{packageName}` (core token): the user reads and
//!   writes one app's settings. A write is stored, pushed to the running
//!   app as `settings_update` through the user's session, and POSTed to the
//!   app server's `/settings` endpoint.
//! - `GET /appsettings/user/{packageName}` (alias `/tpasettings/...`): the
//!   SDK's `settings.fetch()`. Its bearer is the app session id
//!   (`<userId>-<packageName>`), from which the user id is taken, as the
//!   original cloud does.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use sightline_runtime::session::AppIsConnected;
use sightline_runtime::session::AppSettingsChanged;
use sightline_runtime::supervisor::FindSession;
use sightline_runtime::webhook::{endpoint, post_guarded};
use sightline_store::{AppRecord, UserRecord};

use crate::admin::existing_app;
use crate::auth::bearer;
use crate::error::ApiError;
use crate::user_apps::require_user;
use crate::views::{AppSettingsView, ErrorBody, SdkSettings, SettingsSaved};
use crate::SharedState;

/// The user's saved settings of `app`, else the app's schema (defaults).
fn current_settings(user: Option<&UserRecord>, app: &AppRecord) -> Vec<Value> {
    match user {
        Some(u) => u.settings_for(app),
        None => app.settings_schema.clone(),
    }
}

/// Reads the user's settings of one app.
#[utoipa::path(
    get, path = "/appsettings/{packageName}", tag = "users",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "The settings", body = AppSettingsView),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn get_settings(
    req: HttpRequest,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let email = require_user(&req, &state)?;
    let app = existing_app(&state, &path).await?;
    let user = state.runtime.store.get_user(&email).await?;
    Ok(HttpResponse::Ok().json(AppSettingsView {
        success: true,
        settings: current_settings(user.as_ref(), &app),
        package_name: app.package_name,
    }))
}

/// Applies a change to the current settings: an array replaces them all
/// (the phone sends the full list); a single `{key, value}` changes that
/// key's value.
pub(crate) fn apply_change(current: Vec<Value>, change: Value) -> Result<Vec<Value>, String> {
    match change {
        Value::Array(all) => {
            if all
                .iter()
                .all(|s| s.get("key").is_some_and(Value::is_string))
            {
                Ok(all)
            } else {
                Err("every setting must be an object with a string \"key\"".into())
            }
        }
        Value::Object(one) => {
            let key = one
                .get("key")
                .and_then(Value::as_str)
                .ok_or("a setting must have a string \"key\"")?
                .to_string();
            let value = one.get("value").cloned().unwrap_or(Value::Null);
            let mut settings = current;
            match settings
                .iter_mut()
                .find(|s| s.get("key").and_then(Value::as_str) == Some(key.as_str()))
            {
                Some(Value::Object(existing)) => {
                    existing.insert("value".into(), value);
                }
                _ => settings.push(json!({"key": key, "value": value})),
            }
            Ok(settings)
        }
        _ => Err("send an array of settings or one {\"key\", \"value\"} object".into()),
    }
}

/// Changes the user's settings of one app and tells the app.
#[utoipa::path(
    post, path = "/appsettings/{packageName}", tag = "users",
    params(("packageName" = String, Path, description = "The app's package name")),
    request_body(
        content = Value,
        description = "The full array of `{key, value, ...}` settings, or one `{key, value}`"
    ),
    responses(
        (status = 200, description = "Stored and sent to the app", body = SettingsSaved),
        (status = 400, description = "Not a settings array or object", body = ErrorBody),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn post_settings(
    req: HttpRequest,
    state: web::Data<SharedState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let email = require_user(&req, &state)?;
    let app = existing_app(&state, &path).await?;
    let store = &state.runtime.store;
    let user = store.get_user(&email).await?;
    let settings = apply_change(current_settings(user.as_ref(), &app), body.into_inner())
        .map_err(ApiError::BadRequest)?;
    store
        .set_app_settings(&email, &app.package_name, Value::Array(settings.clone()))
        .await?;
    let pushed_to_app = push_to_session(&state, &email, &app, &settings).await;
    notify_app_server(&state, &email, &app, &settings);
    tracing::info!(user = %email, package = %app.package_name, pushed_to_app, "app settings changed");
    Ok(HttpResponse::Ok().json(SettingsSaved {
        success: true,
        package_name: app.package_name,
        settings,
        pushed_to_app,
    }))
}

/// Hands the new settings to the user's session, which pushes them to the
/// app if it is connected.
async fn push_to_session(
    state: &SharedState,
    email: &str,
    app: &AppRecord,
    settings: &[Value],
) -> bool {
    let find = FindSession {
        user_id: email.to_string(),
    };
    let Ok(Some(session)) = state.runtime.supervisor.send(find).await else {
        return false;
    };
    let changed = AppSettingsChanged {
        package_name: app.package_name.clone(),
        settings: Value::Array(settings.to_vec()),
    };
    session.addr().send(changed).await.unwrap_or(false)
}

/// POSTs `{userIdForSettings, settings}` to the app server's `/settings`,
/// in the background; a failure is logged.
fn notify_app_server(state: &SharedState, email: &str, app: &AppRecord, settings: &[Value]) {
    let url = endpoint(&app.public_url, "/settings");
    let body = json!({"userIdForSettings": email, "settings": settings});
    let timeout = state.runtime.config.webhook_timeout;
    let health = state.runtime.shared.clone();
    let (user, package) = (email.to_string(), app.package_name.clone());
    actix_rt::spawn(async move {
        let correlation = uuid::Uuid::new_v4().to_string();
        if let Err(e) = post_guarded(&health, &url, &body, timeout, &correlation).await {
            tracing::warn!(user = %user, package = %package, error = %e, "app server's /settings call failed");
        }
    });
}

/// The SDK's `settings.fetch()`: the bearer is the app session id.
#[utoipa::path(
    get, path = "/appsettings/user/{packageName}", tag = "apps",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "The user's settings of the app", body = SdkSettings),
        (status = 401, description = "No bearer, or the app is not running for that user with an accepted connection", body = ErrorBody),
        (status = 404, description = "No such app or user", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("app_session_id" = []))
)]
pub async fn sdk_settings(
    req: HttpRequest,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let package = path.into_inner();
    let token = bearer(req.headers()).ok_or(ApiError::Unauthorized)?;
    let suffix = format!("-{package}");
    let email = token.strip_suffix(suffix.as_str()).unwrap_or(token);
    // The SDK sends no secret here, only the user id: answer only while
    // the app runs for that user with a connection its API key opened, so
    // knowing an email is not enough to read (or create) their settings.
    let session = state
        .runtime
        .supervisor
        .send(FindSession {
            user_id: email.to_string(),
        })
        .await
        .ok()
        .flatten()
        .ok_or(ApiError::Unauthorized)?;
    let connected = session
        .send(AppIsConnected {
            package_name: package.clone(),
        })
        .await
        .unwrap_or(false);
    if !connected {
        return Err(ApiError::Unauthorized);
    }
    let app = existing_app(&state, &package).await?;
    let store = &state.runtime.store;
    let user = store
        .get_user(email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {email} not found")))?;
    if !user.app_settings.contains_key(&package) {
        // Nothing saved yet: the app's defaults become the user's settings.
        let defaults = Value::Array(app.settings_schema.clone());
        store.set_app_settings(email, &package, defaults).await?;
    }
    Ok(HttpResponse::Ok().json(SdkSettings {
        success: true,
        settings: current_settings(Some(&user), &app),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_change_updates_one_key() {
        let current = vec![
            json!({"key": "color", "type": "text", "value": "green"}),
            json!({"key": "size", "value": 2}),
        ];
        let out = apply_change(current.clone(), json!({"key": "color", "value": "red"})).unwrap();
        assert_eq!(out[0]["value"], "red");
        assert_eq!(out[0]["type"], "text");
        assert_eq!(out[1], current[1]);
        let out = apply_change(current, json!({"key": "new", "value": true})).unwrap();
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn arrays_replace_and_garbage_is_refused() {
        let all = json!([{"key": "a", "value": 1}]);
        assert_eq!(
            apply_change(vec![], all.clone()).unwrap(),
            vec![all[0].clone()]
        );
        assert!(apply_change(vec![], json!([{"value": 1}])).is_err());
        assert!(apply_change(vec![], json!("x")).is_err());
        assert!(apply_change(vec![], json!({"value": 1})).is_err());
    }
}
