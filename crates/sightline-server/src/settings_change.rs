//! What a user's change does to the values they stored for one app
//! (`POST /appsettings/{packageName}`), and the bounds on those values.
//!
//! Sightline stores only `{key, value}` pairs; the app's settings schema
//! supplies everything else when the settings are read (see
//! [`sightline_store::effective_settings`]). A change, a full array or one
//! `{key, value}`, is merged key by key into what is stored, as the
//! original cloud does. When the app declares settings, only declared keys
//! are accepted; an app that declares none may store any keys, within
//! [`SettingsLimits::keys_per_app`].

use std::collections::HashMap;

use serde_json::{json, Value};
use thiserror::Error;

/// Bounds on what one user may store as app settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsLimits {
    /// Bytes of one value, as JSON (`SIGHTLINE_SETTINGS_MAX_VALUE_BYTES`).
    pub value_bytes: usize,
    /// Keys stored per (user, app) (`SIGHTLINE_SETTINGS_MAX_KEYS_PER_APP`).
    pub keys_per_app: usize,
    /// Bytes stored per (user, app), as JSON
    /// (`SIGHTLINE_SETTINGS_MAX_APP_BYTES`).
    pub app_bytes: usize,
    /// Bytes of all app settings of one user, as JSON
    /// (`SIGHTLINE_SETTINGS_MAX_USER_BYTES`).
    pub user_bytes: usize,
}

impl Default for SettingsLimits {
    fn default() -> Self {
        SettingsLimits {
            value_bytes: 64 * 1024,
            keys_per_app: 256,
            app_bytes: 256 * 1024,
            user_bytes: 1024 * 1024,
        }
    }
}

/// Why a change was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsChangeError {
    /// The body is not a settings array or `{key, value}` object, or names
    /// a key the app does not declare (400).
    #[error("{0}")]
    Invalid(String),
    /// A bound of [`SettingsLimits`] would be crossed (413).
    #[error("{0}")]
    TooLarge(String),
}

/// The keys an app's schema declares as settings (groups are layout, not
/// values).
pub fn declared_keys(schema: &[Value]) -> Vec<&str> {
    schema
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) != Some("group"))
        .filter_map(|s| s.get("key").and_then(Value::as_str))
        .collect()
}

/// The `(key, value)` pairs a change sets. Array entries without a
/// `value` (such as groups sent back by the phone) change nothing.
fn updates(change: Value) -> Result<Vec<(String, Value)>, SettingsChangeError> {
    let invalid = |m: &str| SettingsChangeError::Invalid(m.to_string());
    match change {
        Value::Array(all) => {
            let mut out = Vec::with_capacity(all.len());
            for entry in all {
                let Value::Object(mut entry) = entry else {
                    return Err(invalid(
                        "every setting must be an object with a string \"key\"",
                    ));
                };
                let Some(Value::String(key)) = entry.remove("key") else {
                    return Err(invalid(
                        "every setting must be an object with a string \"key\"",
                    ));
                };
                if let Some(value) = entry.remove("value") {
                    out.push((key, value));
                }
            }
            Ok(out)
        }
        Value::Object(mut one) => {
            let Some(Value::String(key)) = one.remove("key") else {
                return Err(invalid("a setting must have a string \"key\""));
            };
            let value = one
                .remove("value")
                .ok_or_else(|| invalid("a setting must have a \"value\""))?;
            Ok(vec![(key, value)])
        }
        _ => Err(invalid(
            "send an array of settings or one {\"key\", \"value\"} object",
        )),
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Merges `change` into `stored` (the user's `{key, value}` pairs of the
/// app whose schema is `schema`) and returns the new stored pairs.
/// Stored entries of keys the schema no longer declares are dropped.
pub fn apply_change(
    schema: &[Value],
    stored: &[Value],
    change: Value,
    limits: &SettingsLimits,
) -> Result<Vec<Value>, SettingsChangeError> {
    let declared = declared_keys(schema);
    let restricted = !declared.is_empty();
    let is_declared = |k: &str| !restricted || declared.contains(&k);
    // The stored pairs, normalised to {key, value}, in order.
    let mut pairs: Vec<(String, Value)> = stored
        .iter()
        .filter_map(|s| {
            let key = s.get("key")?.as_str()?;
            let value = s.get("value")?;
            is_declared(key).then(|| (key.to_string(), value.clone()))
        })
        .collect();
    let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
    pairs.retain(|(k, _)| {
        let fresh = !index.contains_key(k);
        if fresh {
            index.insert(k.clone(), index.len());
        }
        fresh
    });
    for (key, value) in updates(change)? {
        if !is_declared(&key) {
            return Err(SettingsChangeError::Invalid(format!(
                "the app declares no setting {key:?}"
            )));
        }
        let size = json_len(&value);
        if size > limits.value_bytes {
            return Err(SettingsChangeError::TooLarge(format!(
                "the value of {key:?} is {size} bytes; at most {} are stored \
                 (SIGHTLINE_SETTINGS_MAX_VALUE_BYTES)",
                limits.value_bytes
            )));
        }
        match index.get(&key) {
            Some(&i) => pairs[i].1 = value,
            None => {
                if pairs.len() >= limits.keys_per_app {
                    return Err(SettingsChangeError::TooLarge(format!(
                        "at most {} settings are stored per app \
                         (SIGHTLINE_SETTINGS_MAX_KEYS_PER_APP)",
                        limits.keys_per_app
                    )));
                }
                index.insert(key.clone(), pairs.len());
                pairs.push((key, value));
            }
        }
    }
    let out: Vec<Value> = pairs
        .into_iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    let size = stored_bytes(&out);
    if size > limits.app_bytes {
        return Err(SettingsChangeError::TooLarge(format!(
            "the app's settings would be {size} bytes; at most {} are stored per app \
             (SIGHTLINE_SETTINGS_MAX_APP_BYTES)",
            limits.app_bytes
        )));
    }
    Ok(out)
}

/// Bytes a stored settings array takes, as JSON.
pub fn stored_bytes(stored: &[Value]) -> usize {
    stored.iter().map(json_len).sum::<usize>() + stored.len() + 1
}

/// Bytes of everything stored as `v` (one app's settings), as JSON.
pub fn value_bytes(v: &Value) -> usize {
    json_len(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<Value> {
        vec![
            json!({"key": "layout", "type": "group", "title": "Look"}),
            json!({"key": "color", "type": "text", "defaultValue": "green"}),
            json!({"key": "size", "type": "slider", "defaultValue": 2}),
        ]
    }

    #[test]
    fn a_single_change_is_merged_into_the_stored_values() {
        let stored = vec![json!({"key": "size", "value": 3})];
        let limits = SettingsLimits::default();
        let out = apply_change(
            &schema(),
            &stored,
            json!({"key": "color", "value": "red"}),
            &limits,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"key": "size", "value": 3}),
                json!({"key": "color", "value": "red"})
            ]
        );
        let out =
            apply_change(&schema(), &out, json!({"key": "size", "value": 9}), &limits).unwrap();
        assert_eq!(out[0], json!({"key": "size", "value": 9}));
        assert_eq!(out[1], json!({"key": "color", "value": "red"}));
    }

    #[test]
    fn arrays_merge_by_key_and_garbage_is_refused() {
        let limits = SettingsLimits::default();
        let all = json!([
            {"key": "color", "type": "text", "value": "blue", "label": "Colour"},
            {"key": "layout", "type": "group"}
        ]);
        let out = apply_change(&schema(), &[], all, &limits).unwrap();
        assert_eq!(out, vec![json!({"key": "color", "value": "blue"})]);
        for bad in [
            json!([{"value": 1}]),
            json!("x"),
            json!({"value": 1}),
            json!({"key": "color"}),
            json!([7]),
        ] {
            assert!(
                matches!(
                    apply_change(&schema(), &[], bad.clone(), &limits),
                    Err(SettingsChangeError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn undeclared_keys_are_refused_when_the_app_declares_settings() {
        let limits = SettingsLimits::default();
        let e = apply_change(&schema(), &[], json!({"key": "other", "value": 1}), &limits);
        assert!(matches!(e, Err(SettingsChangeError::Invalid(m)) if m.contains("other")));
        // Stored values of keys the schema dropped are not kept.
        let stored = vec![json!({"key": "gone", "value": 1})];
        let out = apply_change(
            &schema(),
            &stored,
            json!({"key": "size", "value": 1}),
            &limits,
        )
        .unwrap();
        assert_eq!(out, vec![json!({"key": "size", "value": 1})]);
        // An app without a schema may store any keys, up to the limit.
        let out = apply_change(&[], &[], json!({"key": "free", "value": 1}), &limits).unwrap();
        assert_eq!(out, vec![json!({"key": "free", "value": 1})]);
    }

    #[test]
    fn the_limits_answer_too_large() {
        let limits = SettingsLimits {
            value_bytes: 10,
            keys_per_app: 2,
            app_bytes: 50,
            user_bytes: 1000,
        };
        let too_large = |r: Result<Vec<Value>, SettingsChangeError>| {
            matches!(r, Err(SettingsChangeError::TooLarge(_)))
        };
        assert!(too_large(apply_change(
            &[],
            &[],
            json!({"key": "a", "value": "0123456789"}),
            &limits
        )));
        let two = apply_change(
            &[],
            &[],
            json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}]),
            &limits,
        )
        .unwrap();
        assert!(too_large(apply_change(
            &[],
            &two,
            json!({"key": "c", "value": 3}),
            &limits
        )));
        // Changing an existing key is not a new key.
        assert!(apply_change(&[], &two, json!({"key": "a", "value": 5}), &limits).is_ok());
        assert!(too_large(apply_change(
            &[],
            &two,
            json!({"key": "a", "value": "12345678"}),
            &limits
        )));
    }
}
