//! What the session knows of the user's glasses: their model (and so their
//! capabilities) and their state — connected, battery, case, Wi-Fi — as
//! the phone reports them. A plain struct: it takes a glasses event and
//! says what changed, and the session tells the apps
//! (`capabilities_update`, `device_state_update`).
//!
//! The phone reports the model in `glasses_connection_state`
//! (`modelName`) and, on older phones, inside `core_status_update`
//! (`status.status.connected_glasses.model_name`); the battery in
//! `glasses_battery_update`. Until it names a model the session assumes
//! MentraOS's default wearable.

use serde_json::{Map, Value};
use sightline_protocol::capabilities::{profile_for, DEFAULT_MODEL};

/// Longest model name kept (a phone names its glasses; nothing longer is
/// a real model).
const MAX_MODEL_LEN: usize = 100;

/// The glasses as the session knows them.
#[derive(Debug, Default)]
pub struct GlassesDevice {
    model: Option<String>,
    /// The fields of the SDK's device state, as last reported.
    state: Map<String, Value>,
}

/// What one report changed.
#[derive(Debug, Default, PartialEq)]
pub struct DeviceChange {
    /// The new model, when it changed.
    pub model: Option<String>,
    /// The state fields that changed, with their new values.
    pub state: Map<String, Value>,
}

impl DeviceChange {
    pub fn is_empty(&self) -> bool {
        self.model.is_none() && self.state.is_empty()
    }
}

impl GlassesDevice {
    /// The model apps are told about.
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    /// The capability profile of the current model.
    pub fn capabilities(&self) -> Value {
        profile_for(self.model())
    }

    /// Every state field known, for a full snapshot.
    pub fn snapshot(&self) -> &Map<String, Value> {
        &self.state
    }

    /// Whether the phone says the glasses are connected to it (`None`
    /// until it says either way).
    pub fn glasses_connected(&self) -> Option<bool> {
        self.state.get("connected").and_then(Value::as_bool)
    }

    /// Whether the glasses are on Wi-Fi, when the phone said.
    pub fn wifi_connected(&self) -> Option<bool> {
        self.state.get("wifiConnected").and_then(Value::as_bool)
    }

    /// Whether events of this type can say anything about the glasses.
    pub fn reports(kind: &str) -> bool {
        matches!(
            kind,
            "glasses_connection_state" | "glasses_battery_update" | "core_status_update"
        )
    }

    /// Takes in one glasses event.
    pub fn observe(&mut self, kind: &str, event: &Value) -> DeviceChange {
        let mut change = DeviceChange::default();
        match kind {
            "glasses_connection_state" => {
                let status = event.get("status").and_then(Value::as_str).unwrap_or("");
                let connected = matches!(status, "CONNECTED" | "RECONNECTED");
                self.set(&mut change, "connected", Value::Bool(connected));
                if connected {
                    if let Some(model) = event.get("modelName").and_then(Value::as_str) {
                        self.set_model(&mut change, model);
                    }
                }
                if let Some(wifi) = event.get("wifi") {
                    if let Some(c) = wifi.get("connected").and_then(Value::as_bool) {
                        self.set(&mut change, "wifiConnected", Value::Bool(c));
                    }
                    if let Some(ssid) = wifi.get("ssid").and_then(Value::as_str) {
                        self.set(&mut change, "wifiSsid", short(ssid));
                    }
                }
            }
            "glasses_battery_update" => {
                if let Some(level) = event.get("level").and_then(Value::as_i64) {
                    self.set(&mut change, "batteryLevel", level.clamp(-1, 100).into());
                }
                if let Some(charging) = event.get("charging").and_then(Value::as_bool) {
                    self.set(&mut change, "charging", Value::Bool(charging));
                }
            }
            "core_status_update" => {
                let glasses = event
                    .pointer("/status/status/connected_glasses")
                    .or_else(|| event.pointer("/status/connected_glasses"));
                if let Some(g) = glasses.and_then(Value::as_object) {
                    self.core_status(&mut change, g);
                }
            }
            _ => {}
        }
        change
    }

    /// The glasses connection to the phone went away.
    pub fn glasses_gone(&mut self) -> DeviceChange {
        let mut change = DeviceChange::default();
        self.set(&mut change, "connected", Value::Bool(false));
        change
    }

    fn core_status(&mut self, change: &mut DeviceChange, g: &Map<String, Value>) {
        if let Some(model) = g.get("model_name").and_then(Value::as_str) {
            if !model.is_empty() {
                self.set(change, "connected", Value::Bool(true));
                self.set_model(change, model);
            }
        }
        let level = |k: &str| g.get(k).and_then(Value::as_i64).filter(|l| *l >= 0);
        if let Some(l) = level("battery_level") {
            self.set(change, "batteryLevel", l.min(100).into());
        }
        if let Some(l) = level("case_battery_level") {
            self.set(change, "caseBatteryLevel", l.min(100).into());
        }
        for (from, to) in [
            ("case_charging", "caseCharging"),
            ("case_open", "caseOpen"),
            ("case_removed", "caseRemoved"),
            ("glasses_wifi_connected", "wifiConnected"),
        ] {
            if let Some(b) = g.get(from).and_then(Value::as_bool) {
                self.set(change, to, Value::Bool(b));
            }
        }
        if let Some(ssid) = g.get("glasses_wifi_ssid").and_then(Value::as_str) {
            if !ssid.is_empty() {
                self.set(change, "wifiSsid", short(ssid));
            }
        }
    }

    fn set_model(&mut self, change: &mut DeviceChange, model: &str) {
        let model = truncate(model);
        if model.is_empty() || self.model.as_deref() == Some(model) {
            return;
        }
        self.model = Some(model.to_string());
        change.model = Some(model.to_string());
        self.set(change, "modelName", model.into());
    }

    fn set(&mut self, change: &mut DeviceChange, key: &str, value: Value) {
        if self.state.get(key) != Some(&value) {
            self.state.insert(key.to_string(), value.clone());
            change.state.insert(key.to_string(), value);
        }
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(MAX_MODEL_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn short(s: &str) -> Value {
    Value::String(truncate(s).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_default_wearable_is_assumed_until_the_phone_names_the_glasses() {
        let d = GlassesDevice::default();
        assert_eq!(d.model(), "Even Realities G1");
        assert_eq!(d.capabilities()["hasDisplay"], true);
    }

    #[test]
    fn a_connection_state_names_the_model_and_wifi() {
        let mut d = GlassesDevice::default();
        let c = d.observe(
            "glasses_connection_state",
            &json!({"status": "CONNECTED", "modelName": "Mentra Live",
                    "wifi": {"connected": true, "ssid": "home"}}),
        );
        assert_eq!(c.model.as_deref(), Some("Mentra Live"));
        assert_eq!(c.state["connected"], true);
        assert_eq!(c.state["wifiSsid"], "home");
        assert_eq!(d.capabilities()["hasCamera"], true);
        // The same report again changes nothing.
        let again = d.observe(
            "glasses_connection_state",
            &json!({"status": "CONNECTED", "modelName": "Mentra Live",
                    "wifi": {"connected": true, "ssid": "home"}}),
        );
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_disconnected_state_keeps_the_model_and_says_disconnected() {
        let mut d = GlassesDevice::default();
        d.observe(
            "glasses_connection_state",
            &json!({"status": "CONNECTED", "modelName": "Vuzix Z100"}),
        );
        let c = d.observe(
            "glasses_connection_state",
            &json!({"status": "DISCONNECTED", "modelName": null}),
        );
        assert_eq!(c.model, None);
        assert_eq!(c.state["connected"], false);
        assert_eq!(d.model(), "Vuzix Z100");
    }

    #[test]
    fn battery_and_core_status_fill_the_state() {
        let mut d = GlassesDevice::default();
        let c = d.observe(
            "glasses_battery_update",
            &json!({"level": 140, "charging": true}),
        );
        assert_eq!(c.state["batteryLevel"], 100);
        let c = d.observe(
            "core_status_update",
            &json!({"status": {"status": {"connected_glasses": {
                "model_name": "Mentra Live", "battery_level": 61, "case_battery_level": -1,
                "case_open": true, "glasses_wifi_connected": false, "glasses_wifi_ssid": ""}}}}),
        );
        assert_eq!(c.model.as_deref(), Some("Mentra Live"));
        assert_eq!(c.state["batteryLevel"], 61);
        assert_eq!(c.state["caseOpen"], true);
        assert!(
            !c.state.contains_key("caseBatteryLevel"),
            "-1 means unknown"
        );
        assert!(!c.state.contains_key("wifiSsid"));
    }

    #[test]
    fn hostile_reports_are_bounded_and_ignored_when_malformed() {
        let mut d = GlassesDevice::default();
        let long = "x".repeat(10_000);
        let c = d.observe(
            "glasses_connection_state",
            &json!({"status": "CONNECTED", "modelName": long}),
        );
        assert_eq!(c.model.map(|m| m.len()), Some(MAX_MODEL_LEN));
        let c = d.observe("core_status_update", &json!({"status": "just a string"}));
        assert!(c.is_empty());
        let c = d.observe("glasses_battery_update", &json!({"level": "full"}));
        assert!(c.is_empty());
    }
}
