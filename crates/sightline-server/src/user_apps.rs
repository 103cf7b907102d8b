//! The user API for apps: list them with the user's install and run state,
//! install and uninstall. Authenticated with the glasses core token (the
//! same JWT as `/glasses-ws`); the user is its `email` claim.
//!
//! `GET /api/apps` and `GET /api/apps/installed` answer in the envelope the
//! MentraOS phone app reads, `{success: true, data: [...]}`; the bare list
//! Sightline answered before is kept at `GET /api/v1/apps`.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::CoreUser;
use crate::error::ApiError;
use crate::views::{AppView, ErrorBody, UserAppView, UserAppsEnvelope};
use crate::SharedState;

/// Lists every app with whether this user installed it and whether it was
/// running at the user's last session.
#[utoipa::path(
    get, path = "/api/v1/apps", tag = "users", operation_id = "list_user_apps",
    responses(
        (status = 200, description = "All apps, as this user sees them", body = Vec<UserAppView>),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn list_apps_v1(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(user_apps(&email, &state, false).await?))
}

/// Every app as this user sees it, in the phone's envelope.
#[utoipa::path(
    get, path = "/api/apps", tag = "users", operation_id = "list_user_apps_enveloped",
    responses(
        (status = 200, description = "`{success: true, data: [apps as this user sees them]}`", body = UserAppsEnvelope),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn list_apps(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    let data = user_apps(&email, &state, false).await?;
    Ok(HttpResponse::Ok().json(UserAppsEnvelope {
        success: true,
        data,
    }))
}

/// The apps this user installed, in the phone's envelope.
#[utoipa::path(
    get, path = "/api/apps/installed", tag = "users", operation_id = "list_installed_apps",
    responses(
        (status = 200, description = "`{success: true, data: [installed apps]}`", body = UserAppsEnvelope),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn list_installed(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    let data = user_apps(&email, &state, true).await?;
    Ok(HttpResponse::Ok().json(UserAppsEnvelope {
        success: true,
        data,
    }))
}

async fn user_apps(
    email: &str,
    state: &SharedState,
    installed_only: bool,
) -> Result<Vec<UserAppView>, ApiError> {
    let store = &state.runtime.store;
    let user = store.get_user(email).await?;
    let apps = store.list_apps().await?;
    let has = |list: Option<&Vec<String>>, p: &str| list.is_some_and(|l| l.iter().any(|x| x == p));
    let views: Vec<UserAppView> = apps
        .iter()
        .map(|a| UserAppView {
            app: AppView::from(a),
            is_installed: has(user.as_ref().map(|u| &u.installed_apps), &a.package_name),
            is_running: has(user.as_ref().map(|u| &u.running_apps), &a.package_name),
        })
        .filter(|v| !installed_only || v.is_installed)
        .collect();
    Ok(views)
}

/// Installs an app for this user.
#[utoipa::path(
    post, path = "/api/apps/install/{packageName}", tag = "users",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "Installed"),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn install(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let package = path.into_inner();
    let store = &state.runtime.store;
    if store.get_app(&package).await?.is_none() {
        return Err(ApiError::NotFound(format!("app {package} not found")));
    }
    store.install_app(&email, &package).await?;
    tracing::info!(user = %email, package = %package, "app installed");
    Ok(HttpResponse::Ok().json(json!({"success": true, "packageName": package})))
}

/// Uninstalls an app for this user: if it runs, it stops now; it is no
/// longer restarted when the user's glasses connect.
#[utoipa::path(
    post, path = "/api/apps/uninstall/{packageName}", tag = "users",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "Uninstalled"),
        (status = 401, description = "Missing or invalid core token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn uninstall(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let package = path.into_inner();
    let store = &state.runtime.store;
    store.uninstall_app(&email, &package).await?;
    store.remove_running_app(&email, &package).await?;
    // A running app stops now, not at the user's next session.
    let told = crate::cluster::wire::SessionCommand::AppUninstalled {
        package: package.clone(),
    };
    if let Err(e) = crate::cluster::sessions::ask(&state, &email, told).await {
        tracing::warn!(user = %email, package = %package, error = %e, "app uninstalled; the session's instance was not told");
    }
    tracing::info!(user = %email, package = %package, "app uninstalled");
    Ok(HttpResponse::Ok().json(json!({"success": true, "packageName": package})))
}
