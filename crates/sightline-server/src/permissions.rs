//! `GET /api/public/permissions/{packageName}`: the permissions an app
//! declares, for the SDK's warnings when an app uses a feature it did not
//! declare (it reads `permissions[].type`). Public: the SDK calls it
//! without credentials, and the answer holds nothing but the declared
//! permission types.

use actix_web::{web, HttpResponse};

use crate::admin::existing_app;
use crate::error::ApiError;
use crate::views::{ErrorBody, PermissionView, PermissionsView};
use crate::SharedState;

/// The app's declared permissions.
#[utoipa::path(
    get, path = "/api/public/permissions/{packageName}", tag = "apps",
    params(("packageName" = String, Path, description = "The app's package name")),
    responses(
        (status = 200, description = "The declared permissions", body = PermissionsView),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub async fn permissions(
    state: web::Data<SharedState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let app = existing_app(&state, &path).await?;
    Ok(HttpResponse::Ok().json(PermissionsView {
        success: true,
        permissions: app
            .permissions
            .iter()
            .map(|p| PermissionView { kind: p.clone() })
            .collect(),
        package_name: app.package_name,
    }))
}
