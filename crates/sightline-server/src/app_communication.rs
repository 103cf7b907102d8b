//! `POST /api/app-communication/discover-users`: the SDK's
//! `discoverAppUsers()` — which other users run this app right now. The
//! bearer is the app's API key (as the SDK sends it), checked against the
//! stored hash of the package named in the body; the asking user must run
//! the app. The answer is `{users: [{userId, sessionId, joinedAt,
//! userProfile?}], totalUsers, timestamp}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sightline_runtime::messaging::DiscoverAppUsers;
use sightline_store::verify_api_key;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::SharedState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverUsers {
    package_name: String,
    user_id: String,
    #[serde(default)]
    include_user_profiles: bool,
}

#[utoipa::path(
    post, path = "/api/app-communication/discover-users", tag = "apps",
    request_body = DiscoverUsers,
    responses(
        (status = 200, description = "`{users: [{userId, sessionId, joinedAt, userProfile?}], totalUsers, timestamp}`: the other users running the app"),
        (status = 401, description = "Missing or wrong API key for the package", body = crate::views::ErrorBody),
        (status = 404, description = "The asking user is not running the app", body = crate::views::ErrorBody),
    ),
    security(("app_api_key" = []))
)]
pub async fn discover_users(
    req: HttpRequest,
    state: web::Data<SharedState>,
    body: web::Json<DiscoverUsers>,
) -> Result<HttpResponse, ApiError> {
    let key = bearer(req.headers()).ok_or(ApiError::Unauthorized)?;
    let body = body.into_inner();
    let app = state
        .runtime
        .store
        .get_app(&body.package_name)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !verify_api_key(key, &app.hashed_api_key) {
        return Err(ApiError::Unauthorized);
    }
    let found = state
        .runtime
        .messaging
        .send(DiscoverAppUsers {
            package: body.package_name,
            user: body.user_id,
            include_profiles: body.include_user_profiles,
        })
        .await
        .map_err(|_| ApiError::Internal("app messaging is not running"))?
        .map_err(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(found))
}
