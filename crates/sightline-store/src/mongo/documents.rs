//! How Sightline's records look as MongoDB documents, and back.
//!
//! Apps live in the `apps` collection and users in `users`, with the same
//! camelCase field names as the records (and as the original MentraOS
//! cloud). Two maps are keyed by names that may contain dots — per-app
//! settings by package name (`com.example.notes`) and MentraOS settings by
//! key — and MongoDB reads a dot in a field name as a path. Their keys are
//! therefore stored escaped (`%` → `%25`, `.` → `%2E`, a leading `$` →
//! `%24`), which also lets one `$set` on `appSettings.<escaped package>`
//! replace a single app's settings atomically.
//!
//! Each MentraOS setting is stored wrapped as `{value: <value>}`. A scalar
//! written by path (`$set: {"mentraosSettings.x": true}`) does not keep its
//! type on every MongoDB-compatible server (nx-27017, which the tests use,
//! stores such a boolean as 1); a sub-document written by path does.

use mongodb::bson::{self, Bson, Document};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::StoreError;

/// Field of the per-app settings map in a user document.
pub const APP_SETTINGS: &str = "appSettings";
/// Field of the MentraOS settings map in a user document.
pub const MENTRAOS_SETTINGS: &str = "mentraosSettings";

/// Escapes a map key so MongoDB stores it as one field name.
pub fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, c) in key.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '$' if i == 0 => out.push_str("%24"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_key`].
pub fn unescape_key(key: &str) -> String {
    key.replace("%2E", ".")
        .replace("%24", "$")
        .replace("%25", "%")
}

/// The dotted path of one entry of a user's escaped map.
pub fn map_path(map: &str, key: &str) -> String {
    format!("{map}.{}", escape_key(key))
}

/// A record as a document to write.
pub fn to_document<T: Serialize>(what: &str, record: &T) -> Result<Document, StoreError> {
    bson::to_document(record).map_err(|e| StoreError::Backend {
        op: "encode document",
        reason: format!("{what}: {e}"),
    })
}

/// A JSON value (settings, location) as BSON to write.
pub fn to_bson(what: &str, value: &Value) -> Result<Bson, StoreError> {
    bson::to_bson(value).map_err(|e| StoreError::Backend {
        op: "encode document",
        reason: format!("{what}: {e}"),
    })
}

/// One MentraOS setting as stored: `{value: <value>}`.
pub fn wrapped_setting(key: &str, value: &Value) -> Result<Bson, StoreError> {
    let mut doc = Document::new();
    doc.insert("value", to_bson(&format!("MentraOS setting {key}"), value)?);
    Ok(Bson::Document(doc))
}

/// A document read back as a record. `_id` and unknown fields are ignored;
/// the escaped maps of user documents get their keys back.
pub fn from_document<T: DeserializeOwned>(what: &str, doc: Document) -> Result<T, StoreError> {
    let mut json = Bson::Document(doc).into_relaxed_extjson();
    if let Value::Object(fields) = &mut json {
        fields.remove("_id");
        for map in [APP_SETTINGS, MENTRAOS_SETTINGS] {
            if let Some(Value::Object(entries)) = fields.get_mut(map) {
                let unescaped: Map<String, Value> = std::mem::take(entries)
                    .into_iter()
                    .map(|(k, v)| match (map, v) {
                        (MENTRAOS_SETTINGS, Value::Object(mut wrapped)) => (
                            unescape_key(&k),
                            wrapped.remove("value").unwrap_or(Value::Null),
                        ),
                        (_, v) => (unescape_key(&k), v),
                    })
                    .collect();
                *entries = unescaped;
            }
        }
    }
    serde_json::from_value(json).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// A JSON object's entries as an escaped-key document.
#[cfg(test)]
pub fn escaped_map(what: &str, entries: &Map<String, Value>) -> Result<Document, StoreError> {
    let mut doc = Document::new();
    for (k, v) in entries {
        doc.insert(escape_key(k), to_bson(what, v)?);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserRecord;
    use serde_json::json;

    #[test]
    fn keys_round_trip() {
        for k in ["com.example.notes", "$where", "50%.x", "plain", "%2E"] {
            let e = escape_key(k);
            assert!(!e.contains('.') && !e.starts_with('$'), "{e}");
            assert_eq!(unescape_key(&e), k);
        }
    }

    #[test]
    fn user_documents_round_trip() {
        let mut u = UserRecord::new("a@b.c", "2025-01-01T00:00:00.000Z".into());
        u.running_apps = vec!["com.a".into()];
        u.app_settings.insert(
            "com.a".into(),
            json!([{"key": "k", "value": 1.5}, {"key": "n", "value": 2}]),
        );
        let mut doc = to_document("user", &u).unwrap();
        let settings: Map<String, Value> = u.app_settings.clone().into_iter().collect();
        doc.insert(APP_SETTINGS, escaped_map("settings", &settings).unwrap());
        doc.insert("_id", bson::oid::ObjectId::new());
        let back: UserRecord = from_document("user", doc).unwrap();
        assert_eq!(back, u);
    }
}
