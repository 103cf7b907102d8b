//! The JSON bodies of the REST API, shared by the handlers and the
//! OpenAPI description (`openapi.rs`), so the published schema is the one
//! the code serialises.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sightline_store::AppRecord;
use utoipa::ToSchema;

/// Public view of an app: everything but the key hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    #[schema(example = "com.example.notes")]
    pub package_name: String,
    pub name: String,
    pub description: String,
    /// Base URL of the app server; webhooks go to `<publicUrl>/webhook`.
    pub public_url: String,
    /// `standard` or `background`.
    #[schema(example = "standard")]
    pub app_type: String,
    /// Permission types (`MICROPHONE`, `LOCATION`, `ALL`, ...).
    pub permissions: Vec<String>,
    /// The app's settings schema (array of setting objects).
    pub settings: Vec<Value>,
    pub logo_url: Option<String>,
}

impl From<&AppRecord> for AppView {
    fn from(app: &AppRecord) -> Self {
        AppView {
            package_name: app.package_name.clone(),
            name: app.name.clone(),
            description: app.description.clone(),
            public_url: app.public_url.clone(),
            app_type: match app.app_type {
                sightline_store::AppType::Standard => "standard".into(),
                sightline_store::AppType::Background => "background".into(),
            },
            permissions: app.permissions.clone(),
            settings: app.settings_schema.clone(),
            logo_url: app.logo_url.clone(),
        }
    }
}

/// A newly registered app. When Sightline generated its API key, the key
/// is shown here and never again (only its sha256 is kept); a key the
/// developer supplied is not echoed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApp {
    #[serde(flatten)]
    pub app: AppView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// A new API key after rotation; the old key stops working at once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedKey {
    pub package_name: String,
    pub api_key: String,
}

/// Body of `PUT /api/admin/apps/{packageName}`: the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub public_url: Option<String>,
    /// `standard` or `background`.
    pub app_type: Option<String>,
    pub permissions: Option<Vec<String>>,
    /// Replaces the settings schema.
    pub settings: Option<Vec<Value>>,
    pub logo_url: Option<String>,
}

/// An app as one user sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAppView {
    #[serde(flatten)]
    pub app: AppView,
    pub is_installed: bool,
    /// Whether the app was running at the user's last session.
    pub is_running: bool,
}

/// Apps in the envelope the MentraOS phone app reads.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAppsEnvelope {
    pub success: bool,
    pub data: Vec<UserAppView>,
}

/// A user's settings of one app: the saved values, else the app's defaults.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSettingsView {
    pub success: bool,
    pub package_name: String,
    /// Array of `{key, value, type, ...}` setting objects.
    pub settings: Vec<Value>,
}

/// Answer to a settings change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsSaved {
    pub success: bool,
    pub package_name: String,
    pub settings: Vec<Value>,
    /// Whether a connected app was sent `settings_update` (the app server's
    /// `/settings` endpoint is called in any case).
    pub pushed_to_app: bool,
}

/// What the SDK's `settings.fetch()` reads.
#[derive(Debug, Serialize, ToSchema)]
pub struct SdkSettings {
    pub success: bool,
    pub settings: Vec<Value>,
}

/// A (user, app)'s whole simple storage, as the SDK's
/// `simpleStorage` reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageData {
    pub success: bool,
    /// Every stored key with its value.
    #[schema(value_type = Object)]
    pub data: sightline_store::StorageEntries,
}

/// One stored key and its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageItem {
    pub key: String,
    pub value: String,
}

/// Answer to reading one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageValue {
    pub success: bool,
    pub data: StorageItem,
}

/// Answer to a write: the map's size afterwards and its bound.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSaved {
    pub success: bool,
    /// Bytes of keys and values now stored for this user and app.
    pub bytes: usize,
    pub max_bytes: usize,
}

/// Answer to deleting one key or the whole map.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageDeleted {
    pub success: bool,
    /// Whether anything was stored there (deleting nothing succeeds too).
    pub deleted: bool,
}

/// Body of `PUT /api/sdk/simple-storage/{userId}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StorageBatch {
    /// Keys to set, with their string values; other keys are kept.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, Value>,
}

/// Body of `PUT /api/sdk/simple-storage/{userId}/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StorageOne {
    pub value: Value,
}

/// One permission an app declares.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    /// `MICROPHONE`, `LOCATION`, `CAMERA`, `CALENDAR`, `READ_NOTIFICATIONS`, `ALL`, ...
    #[serde(rename = "type")]
    #[schema(example = "MICROPHONE")]
    pub kind: String,
}

/// An app's declared permissions, as the SDK's permission checks read
/// them (`permissions[].type`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsView {
    pub success: bool,
    pub package_name: String,
    pub permissions: Vec<PermissionView>,
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `BAD_REQUEST`, `UNAUTHORIZED`, `ADMIN_DISABLED`, `FORBIDDEN`,
    /// `NOT_FOUND`, `CONFLICT`, `PAYLOAD_TOO_LARGE`, `RATE_LIMITED` or
    /// `STORE_UNAVAILABLE`, among others.
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    pub message: String,
}
