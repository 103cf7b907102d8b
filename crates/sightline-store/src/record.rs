//! The documents Sightline stores: apps and users.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Standard apps own the screen (one at a time); background apps share it
/// under a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppType {
    #[default]
    Standard,
    Background,
}

impl std::str::FromStr for AppType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(AppType::Standard),
            "background" => Ok(AppType::Background),
            other => Err(format!(
                "app type must be \"standard\" or \"background\", not \"{other}\""
            )),
        }
    }
}

/// A registered app (TPA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    pub package_name: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Base URL of the app server; webhooks go to `<publicUrl>/webhook`.
    pub public_url: String,
    /// sha256 of the API key, lowercase hex. The key itself is never stored.
    pub hashed_api_key: String,
    #[serde(default)]
    pub app_type: AppType,
    /// Permission types (`MICROPHONE`, `LOCATION`, `ALL`, ...).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The app's settings schema (array of setting objects).
    #[serde(default)]
    pub settings_schema: Vec<Value>,
    #[serde(default)]
    pub logo_url: Option<String>,
}

/// A user, keyed by e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub email: String,
    pub created_at: String,
    #[serde(default)]
    pub installed_apps: Vec<String>,
    /// Apps running when the user was last seen; restarted on connect.
    #[serde(default)]
    pub running_apps: Vec<String>,
    /// Per-app settings values, by package name.
    #[serde(default)]
    pub app_settings: BTreeMap<String, Value>,
    /// MentraOS system settings the user changed.
    #[serde(default)]
    pub mentraos_settings: Map<String, Value>,
    #[serde(default)]
    pub location: Option<Value>,
    #[serde(default)]
    pub timezone: Option<String>,
}

impl UserRecord {
    pub fn new(email: &str, created_at: String) -> Self {
        UserRecord {
            email: email.to_string(),
            created_at,
            installed_apps: Vec::new(),
            running_apps: Vec::new(),
            app_settings: BTreeMap::new(),
            mentraos_settings: Map::new(),
            location: None,
            timezone: None,
        }
    }

    /// The user's settings of `app` as the phone and the app see them:
    /// every declared setting with its `value` (see [`effective_settings`]).
    pub fn settings_for(&self, app: &AppRecord) -> Vec<Value> {
        let saved = match self.app_settings.get(&app.package_name) {
            Some(Value::Array(saved)) => saved.as_slice(),
            _ => &[],
        };
        effective_settings(&app.settings_schema, saved)
    }

    pub(crate) fn add_running(&mut self, package: &str) {
        if !self.running_apps.iter().any(|p| p == package) {
            self.running_apps.push(package.to_string());
        }
    }

    pub(crate) fn remove_running(&mut self, package: &str) {
        self.running_apps.retain(|p| p != package);
    }

    pub(crate) fn add_installed(&mut self, package: &str) {
        if !self.installed_apps.iter().any(|p| p == package) {
            self.installed_apps.push(package.to_string());
        }
    }

    pub(crate) fn remove_installed(&mut self, package: &str) {
        self.installed_apps.retain(|p| p != package);
    }

    pub(crate) fn merge_mentraos_settings(&mut self, changes: Map<String, Value>) {
        self.mentraos_settings.extend(changes);
    }
}

impl AppRecord {
    /// `self` with `other`'s details but its own key hash.
    pub(crate) fn updated_from(&self, other: AppRecord) -> AppRecord {
        AppRecord {
            hashed_api_key: self.hashed_api_key.clone(),
            ..other
        }
    }
}

/// An app's settings with a user's values: each setting the schema
/// declares, with `value` set to the user's stored value, else the schema's
/// own `value`, else its `defaultValue` (as the original cloud fills
/// them). Groups are kept as they are; stored keys the schema does not
/// declare are left out. An app without a schema gets the stored entries
/// as they are.
pub fn effective_settings(schema: &[Value], saved: &[Value]) -> Vec<Value> {
    if schema.is_empty() {
        return saved.to_vec();
    }
    let values: HashMap<&str, &Value> = saved
        .iter()
        .filter_map(|s| Some((s.get("key")?.as_str()?, s.get("value")?)))
        .collect();
    schema
        .iter()
        .map(|setting| {
            let mut setting = setting.clone();
            let Value::Object(fields) = &mut setting else {
                return setting;
            };
            if fields.get("type").and_then(Value::as_str) == Some("group") {
                return setting;
            }
            let Some(key) = fields.get("key").and_then(Value::as_str) else {
                return setting;
            };
            let value = match values.get(key) {
                Some(v) => Some((*v).clone()),
                None if fields.contains_key("value") => None,
                None => fields.get("defaultValue").cloned(),
            };
            if let Some(v) = value {
                fields.insert("value".into(), v);
            }
            setting
        })
        .collect()
}

/// sha256 of an API key as lowercase hex, the only form in which keys are kept.
pub fn hash_api_key(api_key: &str) -> String {
    hex::encode(Sha256::digest(api_key.as_bytes()))
}

/// Checks a presented API key against a stored hash in constant time.
pub fn verify_api_key(api_key: &str, hashed: &str) -> bool {
    let presented = hash_api_key(api_key);
    presented.as_bytes().ct_eq(hashed.as_bytes()).into()
}

pub(crate) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_get_their_defaults_and_the_users_values() {
        let schema = vec![
            serde_json::json!({"key": "g", "type": "group", "title": "G"}),
            serde_json::json!({"key": "speed", "type": "slider", "defaultValue": 5}),
            serde_json::json!({"key": "mode", "type": "select", "defaultValue": "a"}),
            serde_json::json!({"key": "color", "type": "text", "value": "green"}),
            serde_json::json!({"key": "bare", "type": "text"}),
        ];
        let saved = vec![
            serde_json::json!({"key": "mode", "value": "b"}),
            serde_json::json!({"key": "undeclared", "value": 1}),
        ];
        let out = effective_settings(&schema, &saved);
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], schema[0], "groups are kept as they are");
        assert_eq!(out[1]["value"], 5, "an untouched key has its default");
        assert_eq!(out[1]["type"], "slider");
        assert_eq!(out[2]["value"], "b", "the user's value wins");
        assert_eq!(out[3]["value"], "green");
        assert!(out[4].get("value").is_none());
        assert!(!out.iter().any(|s| s["key"] == "undeclared"));
        // No schema: the stored entries as they are.
        assert_eq!(effective_settings(&[], &saved), saved);
    }

    #[test]
    fn api_keys_hash_and_verify() {
        let h = hash_api_key("secret");
        assert_eq!(h.len(), 64);
        assert!(verify_api_key("secret", &h));
        assert!(!verify_api_key("secreT", &h));
        assert!(!verify_api_key("secret", "short"));
    }
}
