//! The documents Sightline stores: apps and users.

use std::collections::BTreeMap;

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

    /// The user's settings values of `app`: what the user saved, else the
    /// app's settings schema (its defaults).
    pub fn settings_for(&self, app: &AppRecord) -> Vec<Value> {
        match self.app_settings.get(&app.package_name) {
            Some(Value::Array(saved)) => saved.clone(),
            _ => app.settings_schema.clone(),
        }
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
    fn api_keys_hash_and_verify() {
        let h = hash_api_key("secret");
        assert_eq!(h.len(), 64);
        assert!(verify_api_key("secret", &h));
        assert!(!verify_api_key("secreT", &h));
        assert!(!verify_api_key("secret", "short"));
    }
}
