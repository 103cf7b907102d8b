//! The developer API: register, read, update and delete apps and rotate
//! their API keys, guarded by the admin bearer token. An API key is shown
//! once, in the answer that created it; Sightline keeps only its sha256.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sightline_store::{hash_api_key, AppRecord, AppType};
use utoipa::ToSchema;

use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::views::{AppUpdate, AppView, CreatedApp, ErrorBody, RotatedKey};
use crate::SharedState;

/// Body of `POST /api/admin/apps`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewApp {
    pub package_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub public_url: String,
    /// The key the app server will present; generated when absent.
    #[serde(default)]
    pub api_key: Option<String>,
    /// `standard` (default) or `background`.
    #[serde(default)]
    pub app_type: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub settings: Vec<serde_json::Value>,
    #[serde(default)]
    pub logo_url: Option<String>,
}

impl NewApp {
    /// Checks the fields and builds the record (hashing the key, which is
    /// generated if none was given). Returns the record and the key.
    pub fn into_record(self) -> Result<(AppRecord, String), String> {
        validate_package(&self.package_name)?;
        validate_url(&self.public_url)?;
        let api_key = self.api_key.unwrap_or_else(generate_api_key);
        if api_key.len() < 8 {
            return Err("apiKey must be at least 8 characters".into());
        }
        let app_type = match self.app_type.as_deref() {
            None => AppType::Standard,
            Some(t) => t.parse()?,
        };
        let record = AppRecord {
            name: self.name.unwrap_or_else(|| self.package_name.clone()),
            package_name: self.package_name,
            description: self.description,
            public_url: self.public_url.trim_end_matches('/').to_string(),
            hashed_api_key: hash_api_key(&api_key),
            app_type,
            permissions: self.permissions,
            settings_schema: self.settings,
            logo_url: self.logo_url,
        };
        Ok((record, api_key))
    }
}

impl AppUpdate {
    /// Checks the fields given and writes them into `app`. On an error
    /// `app` may be half changed and must not be stored.
    pub fn apply_to(self, app: &mut AppRecord) -> Result<(), String> {
        if let Some(url) = self.public_url {
            validate_url(&url)?;
            app.public_url = url.trim_end_matches('/').to_string();
        }
        if let Some(t) = self.app_type {
            app.app_type = t.parse()?;
        }
        if let Some(name) = self.name {
            app.name = name;
        }
        if let Some(d) = self.description {
            app.description = d;
        }
        if let Some(p) = self.permissions {
            app.permissions = p;
        }
        if let Some(s) = self.settings {
            app.settings_schema = s;
        }
        if let Some(l) = self.logo_url {
            app.logo_url = Some(l);
        }
        Ok(())
    }
}

/// A fresh random API key: 64 hex characters (two v4 UUIDs, 244 random
/// bits).
pub fn generate_api_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Package names: reverse-DNS style, letters, digits, `.`, `_`, `-`.
pub fn validate_package(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 128
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "packageName {p:?} must be 1-128 characters of letters, digits, '.', '_' or '-'"
        ))
    }
}

/// App server URLs: `http://` or `https://`, a host, at most 2048
/// characters, no spaces or control characters.
pub fn validate_url(u: &str) -> Result<(), String> {
    let host = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    let clean = !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if !host.is_empty() && clean && u.len() <= 2048 {
        Ok(())
    } else {
        Err(format!(
            "publicUrl {u:?} must be an http:// or https:// URL with a host"
        ))
    }
}

/// Public view of an app as JSON (everything but the key hash).
pub fn app_view(app: &AppRecord) -> serde_json::Value {
    serde_json::to_value(AppView::from(app)).unwrap_or(serde_json::Value::Null)
}

/// Checks the admin token of a request whose handler does not take
/// [`AdminAuth`] as an argument.
pub(crate) fn require_admin(req: &HttpRequest, state: &SharedState) -> Result<(), ApiError> {
    AdminAuth::of(req, state).map(|_| ())
}

/// Registers an app. Without an `apiKey` in the body, Sightline generates
/// one and returns it in this answer only.
#[utoipa::path(
    post, path = "/api/admin/apps", tag = "developers",
    request_body = NewApp,
    responses(
        (status = 201, description = "Registered", body = CreatedApp),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Wrong admin token", body = ErrorBody),
        (status = 409, description = "The package name is taken", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn create_app(
    _admin: AdminAuth,
    state: web::Data<SharedState>,
    body: web::Json<NewApp>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let generated = body.api_key.is_none();
    let (record, api_key) = body.into_record().map_err(ApiError::BadRequest)?;
    state.runtime.store.create_app(record.clone()).await?;
    tracing::info!(package = %record.package_name, "app registered");
    Ok(HttpResponse::Created().json(CreatedApp {
        app: AppView::from(&record),
        api_key: generated.then_some(api_key),
    }))
}

/// Lists every registered app.
#[utoipa::path(
    get, path = "/api/admin/apps", tag = "developers",
    responses(
        (status = 200, description = "All apps", body = Vec<AppView>),
        (status = 401, description = "Wrong admin token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn list_apps(
    _admin: AdminAuth,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    let apps = state.runtime.store.list_apps().await?;
    Ok(HttpResponse::Ok().json(apps.iter().map(AppView::from).collect::<Vec<_>>()))
}

/// The app registered under `package`, or a 404.
pub(crate) async fn existing_app(
    state: &SharedState,
    package: &str,
) -> Result<AppRecord, ApiError> {
    state
        .runtime
        .store
        .get_app(package)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("app {package} not found")))
}

/// Reads one app.
#[utoipa::path(
    get, path = "/api/admin/apps/{packageName}", tag = "developers",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "The app", body = AppView),
        (status = 401, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn get_app(
    _admin: AdminAuth,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let app = existing_app(&state, &path).await?;
    Ok(HttpResponse::Ok().json(AppView::from(&app)))
}

/// Changes an app's details (the fields given; the API key is untouched).
#[utoipa::path(
    put, path = "/api/admin/apps/{packageName}", tag = "developers",
    params(("packageName" = String, Path, description = "The app's package name")),
    request_body = AppUpdate,
    responses(
        (status = 200, description = "The updated app", body = AppView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn update_app(
    _admin: AdminAuth,
    state: web::Data<SharedState>,
    path: web::Path<String>,
    body: web::Json<AppUpdate>,
) -> Result<HttpResponse, ApiError> {
    let mut app = existing_app(&state, &path).await?;
    body.into_inner()
        .apply_to(&mut app)
        .map_err(ApiError::BadRequest)?;
    state.runtime.store.update_app(app.clone()).await?;
    tracing::info!(package = %app.package_name, "app updated");
    crate::cluster::sessions::app_changed(&state, app.clone()).await;
    Ok(HttpResponse::Ok().json(AppView::from(&app)))
}

/// Gives an app a new API key and returns it; the old key stops working.
#[utoipa::path(
    post, path = "/api/admin/apps/{packageName}/api-key", tag = "developers",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "The new key, shown once", body = RotatedKey),
        (status = 401, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn rotate_key(
    _admin: AdminAuth,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let package = path.into_inner();
    let api_key = generate_api_key();
    state
        .runtime
        .store
        .set_app_key_hash(&package, &hash_api_key(&api_key))
        .await?;
    tracing::info!(package = %package, "app API key rotated");
    Ok(HttpResponse::Ok().json(RotatedKey {
        package_name: package,
        api_key,
    }))
}

/// Removes an app.
#[utoipa::path(
    delete, path = "/api/admin/apps/{packageName}", tag = "developers",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn delete_app(
    _admin: AdminAuth,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let package = path.into_inner();
    if state.runtime.store.delete_app(&package).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("app {package} not found")))
    }
}
