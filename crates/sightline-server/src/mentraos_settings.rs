//! `GET`/`POST /augmentos-settings` (also under `/api`): the phone reads
//! and changes the user's MentraOS settings with its core token. A change
//! keeps only known settings with a value of the right type, is stored,
//! and reaches the running session, which sends every running app the
//! whole set (`augmentos_settings_update`).

use crate::cluster::sessions;
use crate::cluster::wire::SessionCommand;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use sightline_protocol::settings::{mentraos_changes, mentraos_settings};

use crate::auth::CoreUser;
use crate::error::ApiError;
use crate::SharedState;

/// The user's MentraOS settings, every one with a value.
#[utoipa::path(
    get, path = "/augmentos-settings", tag = "users",
    responses(
        (status = 200, description = "`{success, userId, settings}`"),
        (status = 401, description = "Missing or invalid core token", body = crate::views::ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn get_settings(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    let user = state.runtime.store.ensure_user(&email).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "userId": email,
        "settings": mentraos_settings(&user.mentraos_settings),
    })))
}

/// Changes some of the user's MentraOS settings.
#[utoipa::path(
    post, path = "/augmentos-settings", tag = "users",
    request_body(content = Object, description = "The settings to change, by name"),
    responses(
        (status = 200, description = "`{success, message, settings}`: what was changed"),
        (status = 400, description = "Not an object, or no known setting in it", body = crate::views::ErrorBody),
        (status = 401, description = "Missing or invalid core token", body = crate::views::ErrorBody),
    ),
    security(("core_token" = []))
)]
pub async fn post_settings(
    CoreUser(email): CoreUser,
    state: web::Data<SharedState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let Value::Object(body) = body.into_inner() else {
        return Err(ApiError::BadRequest("Invalid settings payload".into()));
    };
    let changes: Map<String, Value> =
        mentraos_changes("augmentos_settings_update", &json!({ "settings": body }));
    if changes.is_empty() {
        return Err(ApiError::BadRequest(
            "no known MentraOS setting with a value of its type".into(),
        ));
    }
    state.runtime.store.ensure_user(&email).await?;
    state
        .runtime
        .store
        .set_mentraos_settings(&email, changes.clone())
        .await?;
    // Stored: the user's session (on whichever instance) hears it now.
    let told = SessionCommand::MentraosSettingsChanged {
        changes: changes.clone(),
    };
    if let Err(e) = sessions::ask(&state, &email, told).await {
        tracing::warn!(user = %email, error = %e, "settings stored; the session's instance was not told");
    }
    tracing::info!(user = %email, settings = ?changes.keys().collect::<Vec<_>>(), "MentraOS settings changed through the API");
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": "Settings updated successfully",
        "settings": changes,
    })))
}
