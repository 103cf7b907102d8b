//! App settings over REST (protocol §1.1, §3.3, §10).
//!
//! - `GET/POST /appsettings/{packageName}` (core token): the user reads and
//!   writes one app's settings. Every declared setting is answered with a
//!   `value` (the user's, else the default). A write is merged key by key
//!   into the stored values within [`crate::settings_change`]'s bounds,
//!   pushed to the running app as `settings_update` through the user's
//!   session, and POSTed to the app server's `/settings` endpoint.
//! - `GET /appsettings/user/{packageName}` (alias `/tpasettings/...`): the
//!   SDK's `settings.fetch()`. Its bearer is the app session id
//!   (`<userId>-<packageName>`), from which the user id is taken, as the
//!   original cloud does.

use crate::cluster::sessions;
use crate::cluster::wire::SessionCommand;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use sightline_runtime::webhook::{endpoint, post_guarded};
use sightline_store::{effective_settings, AppRecord, UserRecord};

use crate::admin::existing_app;
use crate::auth::{bearer, CoreUser};
use crate::error::ApiError;
use crate::settings_change::{apply_change, stored_bytes, value_bytes, SettingsChangeError};
use crate::views::{AppSettingsView, ErrorBody, SdkSettings, SettingsSaved};
use crate::SharedState;

/// The user's settings of `app`: every declared setting with the user's
/// value, else its default.
fn current_settings(user: Option<&UserRecord>, app: &AppRecord) -> Vec<Value> {
    match user {
        Some(u) => u.settings_for(app),
        None => effective_settings(&app.settings_schema, &[]),
    }
}

/// What the store holds for the user's settings of `package`.
fn stored_settings<'a>(user: Option<&'a UserRecord>, package: &str) -> &'a [Value] {
    match user.and_then(|u| u.app_settings.get(package)) {
        Some(Value::Array(saved)) => saved,
        _ => &[],
    }
}

impl From<SettingsChangeError> for ApiError {
    fn from(e: SettingsChangeError) -> Self {
        match e {
            SettingsChangeError::Invalid(m) => ApiError::BadRequest(m),
            SettingsChangeError::TooLarge(m) => ApiError::TooLarge(m),
        }
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
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let app = existing_app(&state, &path).await?;
    let user = state.runtime.store.get_user(&email).await?;
    Ok(HttpResponse::Ok().json(AppSettingsView {
        success: true,
        settings: current_settings(user.as_ref(), &app),
        package_name: app.package_name,
    }))
}

/// Changes the user's settings of one app and tells the app.
#[utoipa::path(
    post, path = "/appsettings/{packageName}", tag = "users",
    params(("packageName" = String, Path, description = "The app's package name")),
    request_body(
        content = Value,
        description = "An array of `{key, value, ...}` settings or one `{key, value}`, merged key by key into the stored values"
    ),
    responses(
        (status = 200, description = "Stored and sent to the app", body = SettingsSaved),
        (status = 400, description = "Not a settings array or object, or a key the app does not declare", body = ErrorBody),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 413, description = "A value, the app's settings or the user's settings would exceed their size limit", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn post_settings(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let app = existing_app(&state, &path).await?;
    let store = &state.runtime.store;
    let limits = &state.config.settings_limits;
    let user = store.get_user(&email).await?;
    let stored = apply_change(
        &app.settings_schema,
        stored_settings(user.as_ref(), &app.package_name),
        body.into_inner(),
        limits,
    )?;
    let others: usize = user
        .iter()
        .flat_map(|u| u.app_settings.iter())
        .filter(|(package, _)| **package != app.package_name)
        .map(|(_, v)| value_bytes(v))
        .sum();
    let total = others + stored_bytes(&stored);
    if total > limits.user_bytes {
        return Err(ApiError::TooLarge(format!(
            "the user's app settings would be {total} bytes; at most {} are stored per user \
             (SIGHTLINE_SETTINGS_MAX_USER_BYTES)",
            limits.user_bytes
        )));
    }
    let stored = Value::Array(stored);
    store
        .set_app_settings(&email, &app.package_name, stored.clone())
        .await?;
    let settings = effective_settings(&app.settings_schema, stored.as_array().map_or(&[], |v| v));
    let pushed_to_app = push_to_session(&state, &email, &app, stored, &settings).await;
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
    stored: Value,
    settings: &[Value],
) -> bool {
    let changed = SessionCommand::AppSettingsChanged {
        package: app.package_name.clone(),
        stored,
        settings: Value::Array(settings.to_vec()),
    };
    match sessions::ask(state, email, changed).await {
        Ok(told) => told.and_then(|v| v.as_bool()).unwrap_or(false),
        Err(e) => {
            tracing::warn!(user = %email, package = %app.package_name, error = %e, "settings stored; the session's instance was not told");
            false
        }
    }
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
    let asked = SessionCommand::AppIsConnected {
        package: package.clone(),
    };
    let connected = sessions::ask(&state, email, asked)
        .await?
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if !connected {
        return Err(ApiError::Unauthorized);
    }
    let app = existing_app(&state, &package).await?;
    let user = state
        .runtime
        .store
        .get_user(email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {email} not found")))?;
    // Untouched settings answer their defaults; nothing needs storing.
    Ok(HttpResponse::Ok().json(SdkSettings {
        success: true,
        settings: current_settings(Some(&user), &app),
    }))
}
