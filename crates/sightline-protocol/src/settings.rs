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
