//! Defaults the protocol assumes: the MentraOS system settings an app sees
//! in its ack, and the capability profile of the default glasses.

use serde_json::{json, Map, Value};

/// MentraOS (system) settings for a user who never changed any.
pub fn default_mentraos_settings() -> Map<String, Value> {
    let v = json!({
        "useOnboardMic": false,
        "contextualDashboard": true,
        "headUpAngle": 20,
        "brightness": 50,
        "autoBrightness": false,
        "sensingEnabled": true,
        "alwaysOnStatusBar": false,
        "bypassVad": false,
        "bypassAudioEncoding": false,
        "metricSystemEnabled": false,
        "dashboardHeight": 4,
        "dashboardDepth": 5
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Merges a user's stored settings over the defaults.
pub fn mentraos_settings(stored: &Map<String, Value>) -> Map<String, Value> {
    let mut out = default_mentraos_settings();
    for (k, v) in stored {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The MentraOS settings a phone report carries, under the names apps
/// read: `core_status_update` (`status.core_info` and the glasses'
/// `glasses_settings`, in the phone's snake_case) or a settings message
/// with a `settings` object. Only known settings with a value of the
/// right type are taken.
pub fn mentraos_changes(kind: &str, event: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let defaults = default_mentraos_settings();
    let mut take = |name: &str, v: Option<&Value>| {
        let (Some(v), Some(default)) = (v, defaults.get(name)) else {
            return;
        };
        let same_type = match (default, v) {
            (Value::Bool(_), Value::Bool(_)) => true,
            (Value::Number(_), Value::Number(n)) => {
                n.as_f64().is_some_and(|x| (-1000.0..=1000.0).contains(&x))
            }
            _ => false,
        };
        if same_type {
            out.insert(name.to_string(), v.clone());
        }
    };
    match kind {
        "core_status_update" => {
            let status = event.get("status").map(|s| s.get("status").unwrap_or(s));
            let core = status.and_then(|s| s.get("core_info"));
            let glasses = status.and_then(|s| {
                s.pointer("/connected_glasses/glasses_settings")
                    .or_else(|| s.get("glasses_settings"))
            });
            let from_core = [
                ("sensingEnabled", "sensing_enabled"),
                ("alwaysOnStatusBar", "always_on_status_bar"),
                ("bypassVad", "bypass_vad_for_debugging"),
                ("bypassAudioEncoding", "bypass_audio_encoding_for_debugging"),
                ("contextualDashboard", "contextual_dashboard_enabled"),
                ("metricSystemEnabled", "metric_system_enabled"),
                ("useOnboardMic", "force_core_onboard_mic"),
            ];
            for (name, field) in from_core {
                take(name, core.and_then(|c| c.get(field)));
            }
            let from_glasses = [
                ("brightness", "brightness"),
                ("autoBrightness", "auto_brightness"),
                ("headUpAngle", "head_up_angle"),
                ("dashboardHeight", "dashboard_height"),
                ("dashboardDepth", "dashboard_depth"),
            ];
            for (name, field) in from_glasses {
                take(name, glasses.and_then(|g| g.get(field)));
            }
        }
        _ => {
            if let Some(Value::Object(s)) = event.get("settings") {
                for (k, v) in s {
                    take(k, Some(v));
                }
            }
        }
    }
    out
}

/// `augmentos_settings_update`: the user's MentraOS settings, whole, for
/// an app (the SDK replaces its copy and tells its listeners).
pub fn augmentos_settings_update(
    session_id: &str,
    settings: &Map<String, Value>,
    ts: &str,
) -> String {
    json!({"type": "augmentos_settings_update", "sessionId": session_id, "settings": settings, "timestamp": ts})
        .to_string()
}

#[cfg(test)]
mod change_tests {
    use super::*;

    #[test]
    fn phone_reports_become_the_settings_apps_read() {
        let report = json!({"type": "core_status_update", "status": {"status": {
            "core_info": {"metric_system_enabled": true, "sensing_enabled": "yes", "unknown": 1},
            "connected_glasses": {"glasses_settings": {"brightness": 80, "head_up_angle": 30}}}}});
        let c = mentraos_changes("core_status_update", &report);
        assert_eq!(c.get("metricSystemEnabled"), Some(&json!(true)));
        assert_eq!(c.get("brightness"), Some(&json!(80)));
        assert_eq!(c.get("headUpAngle"), Some(&json!(30)));
        assert!(!c.contains_key("sensingEnabled"), "a string is not a bool");
        assert_eq!(c.len(), 3);
        let direct = json!({"settings": {"bypassVad": true, "evil": "x"}});
        assert_eq!(
            mentraos_changes("mentraos_settings_update", &direct).len(),
            1
        );
    }
}
