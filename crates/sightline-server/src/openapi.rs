//! The OpenAPI description of Sightline's REST API, generated from the
//! handlers' annotations and the body types in `views.rs`.
//!
//! `docs/openapi.json` is this document, written by `sightline openapi`;
//! a test fails when the file and the code disagree, so the published
//! description cannot drift. The running server also serves it at
//! `GET /openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::views::{
    AppSettingsView, AppUpdate, AppView, CreatedApp, ErrorBody, ErrorDetail, PermissionView,
    PermissionsView, RotatedKey, SdkSettings, SettingsSaved, StorageBatch, StorageData,
    StorageDeleted, StorageItem, StorageOne, StorageSaved, StorageValue, UserAppView,
};
use crate::webview::{
    ExchangeRequest, ExchangedUser, HashAnswer, HashRequest, RotatedUserTokenKey, SignedUserToken,
    WebviewFailure, WebviewToken, WebviewTokenRequest,
};
use crate::{
    admin, app_communication, app_settings, mentraos_settings, permissions, photo_upload,
    simple_storage, token_exchange, tts, user_apps, webview,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sightline REST API",
        description = "Developers register and manage apps (admin token); users list, install \
            and configure apps (glasses core token); SDK apps read their user's settings and keep per-user simple storage (API key); anyone may read an app's declared permissions. \
            Errors are always `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        admin::create_app,
        admin::list_apps,
        admin::get_app,
        admin::update_app,
        admin::rotate_key,
        admin::delete_app,
        user_apps::list_apps,
        user_apps::list_installed,
        user_apps::list_apps_v1,
        user_apps::install,
        user_apps::uninstall,
        app_settings::get_settings,
        app_settings::post_settings,
        app_settings::sdk_settings,
        token_exchange::exchange,
        tts::speak,
        mentraos_settings::get_settings,
        mentraos_settings::post_settings,
        app_communication::discover_users,
        photo_upload::upload,
        webview::generate_webview_token,
        webview::generate_signed_user_token,
        webview::exchange_user_token,
        webview::hash_with_api_key,
        webview::public_key,
        webview::rotate_key,
        simple_storage::get_all,
        simple_storage::put_many,
        simple_storage::clear,
        simple_storage::get_one,
        simple_storage::put_one,
        simple_storage::delete_one,
        permissions::permissions,
    ),
    components(schemas(
        admin::NewApp,
        AppView,
        CreatedApp,
        RotatedKey,
        AppUpdate,
        UserAppView,
        crate::views::UserAppsEnvelope,
        token_exchange::PhoneSignIn,
        app_communication::DiscoverUsers,
        AppSettingsView,
        SettingsSaved,
        SdkSettings,
        StorageData,
        StorageItem,
        StorageValue,
        StorageSaved,
        StorageDeleted,
        StorageBatch,
        StorageOne,
        PermissionView,
        PermissionsView,
        ErrorBody,
        ErrorDetail,
        WebviewTokenRequest,
        WebviewToken,
        SignedUserToken,
        ExchangeRequest,
        ExchangedUser,
        HashRequest,
        HashAnswer,
        WebviewFailure,
        RotatedUserTokenKey,
    )),
    modifiers(&BearerSchemes),
    tags(
        (name = "developers", description = "App registration, guarded by SIGHTLINE_ADMIN_TOKEN"),
        (name = "users", description = "A user's apps and settings, with the glasses core token"),
        (name = "apps", description = "Calls the MentraOS SDK makes"),
        (name = "webview", description = "Signing users in to an app's webview: the phone's token requests and the app server's exchange"),
    )
)]
pub struct ApiDoc;

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme("admin_token", bearer("The value of SIGHTLINE_ADMIN_TOKEN"));
        components.add_security_scheme(
            "core_token",
            bearer("The glasses core token: an HS256 JWT whose `email` claim is the user"),
        );
        components.add_security_scheme(
            "app_api_key",
            bearer("The app's API key, as the SDK's webview middleware sends it"),
        );
        components.add_security_scheme(
            "app_session_id",
            bearer("The app session id `<userId>-<packageName>`, as the SDK sends it"),
        );
        components.add_security_scheme(
            "upload_token",
            bearer("The one-request upload token of the glasses' photo_request"),
        );
        components.add_security_scheme(
            "package_api_key",
            bearer("`<packageName>:<apiKey>`: the app's package and its API key"),
        );
    }
}

/// The description as pretty-printed JSON with a final newline.
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

/// `GET /openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_openapi_json_matches_the_code() {
        let manifest = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let path = format!("{manifest}/../../docs/openapi.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == openapi_json(),
            "docs/openapi.json is not the API the code serves; regenerate it with \
             `cargo run -q -- openapi > docs/openapi.json`"
        );
    }

    #[test]
    fn every_route_is_described() {
        let doc = ApiDoc::openapi();
        for path in [
            "/api/admin/apps",
            "/api/admin/apps/{packageName}",
            "/api/admin/apps/{packageName}/api-key",
            "/api/apps",
            "/api/apps/install/{packageName}",
            "/api/apps/uninstall/{packageName}",
            "/appsettings/{packageName}",
            "/appsettings/user/{packageName}",
            "/api/auth/generate-webview-token",
            "/api/auth/generate-webview-signed-user-token",
            "/api/auth/exchange-user-token",
            "/api/auth/hash-with-api-key",
            "/.well-known/sightline-user-token-key.pem",
            "/api/admin/user-token-key",
            "/api/sdk/simple-storage/{userId}",
            "/api/sdk/simple-storage/{userId}/{key}",
            "/api/public/permissions/{packageName}",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} missing");
        }
    }
}
