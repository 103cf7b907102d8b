//! The admin API: app registration for developers and operators, guarded by
//! the admin bearer token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sightline_store::{hash_api_key, AppRecord, AppType};

use crate::auth::{admin_token_matches, bearer};
use crate::error::ApiError;
use crate::SharedState;

/// Body of `POST /api/admin/apps`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApp {
    pub package_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub public_url: String,
    pub api_key: String,
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
    /// Checks the fields and builds the record (hashing the key).
    pub fn into_record(self) -> Result<AppRecord, String> {
        validate_package(&self.package_name)?;
        validate_url(&self.public_url)?;
        if self.api_key.len() < 8 {
            return Err("apiKey must be at least 8 characters".into());
        }
        let app_type = match self.app_type.as_deref() {
            None => AppType::Standard,
            Some(t) => t.parse()?,
        };
        Ok(AppRecord {
            name: self.name.unwrap_or_else(|| self.package_name.clone()),
            package_name: self.package_name,
            description: self.description,
            public_url: self.public_url.trim_end_matches('/').to_string(),
            hashed_api_key: hash_api_key(&self.api_key),
            app_type,
            permissions: self.permissions,
            settings_schema: self.settings,
            logo_url: self.logo_url,
        })
    }
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

fn validate_url(u: &str) -> Result<(), String> {
    if (u.starts_with("http://") || u.starts_with("https://")) && u.len() <= 2048 {
        Ok(())
    } else {
        Err(format!(
            "publicUrl {u:?} must be an http:// or https:// URL"
        ))
    }
}

/// Public view of an app: everything but the key hash.
pub fn app_view(app: &AppRecord) -> serde_json::Value {
    json!({
        "packageName": app.package_name,
        "name": app.name,
        "description": app.description,
        "publicUrl": app.public_url,
        "appType": app.app_type,
        "permissions": app.permissions,
        "logoUrl": app.logo_url,
    })
}

pub(crate) fn require_admin(req: &HttpRequest, state: &SharedState) -> Result<(), ApiError> {
    let Some(configured) = state.config.admin_token.as_deref() else {
        return Err(ApiError::AdminDisabled);
    };
    if admin_token_matches(bearer(req.headers()), configured) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `POST /api/admin/apps`: registers an app.
pub async fn create_app(
    req: HttpRequest,
    state: web::Data<SharedState>,
    body: web::Json<NewApp>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let record = body
        .into_inner()
        .into_record()
        .map_err(ApiError::BadRequest)?;
    state.runtime.store.create_app(record.clone()).await?;
    tracing::info!(package = %record.package_name, "app registered");
    Ok(HttpResponse::Created().json(app_view(&record)))
}

/// `GET /api/admin/apps`: lists apps.
pub async fn list_apps(
    req: HttpRequest,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let apps = state.runtime.store.list_apps().await?;
    Ok(HttpResponse::Ok().json(apps.iter().map(app_view).collect::<Vec<_>>()))
}

/// `DELETE /api/admin/apps/{packageName}`.
pub async fn delete_app(
    req: HttpRequest,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let package = path.into_inner();
    if state.runtime.store.delete_app(&package).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("app {package} not found")))
    }
}
