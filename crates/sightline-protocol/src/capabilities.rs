//! What each model of glasses can do, in the shape the SDK reads into
//! `session.capabilities`, and the messages that tell apps about the
//! glasses: `capabilities_update` and `device_state_update`.
//!
//! Profiles exist for Even Realities G1, Mentra Live, Vuzix Z100 and the
//! phone app's Simulated Glasses; any other model gets a conservative
//! profile with neither display nor camera, so an app never assumes
//! hardware that may not be there.

use serde_json::{json, Map, Value};

/// The model assumed until the phone names the glasses: MentraOS's
/// default wearable.
pub const DEFAULT_MODEL: &str = "Even Realities G1";

/// The capability profile of `model`.
pub fn profile_for(model: &str) -> Value {
    match model {
        "Even Realities G1" => even_realities_g1(),
        "Mentra Live" => mentra_live(),
        "Vuzix Z100" => vuzix_z100(),
        "Simulated Glasses" => simulated(),
        other => unknown(other),
    }
}

fn even_realities_g1() -> Value {
    json!({
        "modelName": "Even Realities G1",
        "hasCamera": false, "camera": null,
        "hasDisplay": true,
        "display": {"count": 2, "isColor": false, "color": "green", "canDisplayBitmap": true,
            "resolution": {"width": 640, "height": 200}, "fieldOfView": {"horizontal": 25},
            "maxTextLines": 5, "adjustBrightness": true},
        "hasMicrophone": true, "microphone": {"count": 1, "hasVAD": false},
        "hasSpeaker": false, "speaker": null,
        "hasIMU": true, "imu": null,
        "hasButton": false, "button": null,
        "hasLight": false, "light": null,
        "power": {"hasExternalBattery": false},
        "hasWifi": false
    })
}

fn mentra_live() -> Value {
    json!({
        "modelName": "Mentra Live",
        "hasCamera": true,
        "camera": {"resolution": {"width": 1920, "height": 1080}, "hasHDR": false, "hasFocus": true,
            "video": {"canRecord": true, "canStream": true, "supportedStreamTypes": ["rtmp"],
                "supportedResolutions": [{"width": 1920, "height": 1080},
                    {"width": 1280, "height": 720}, {"width": 640, "height": 480}]}},
        "hasDisplay": false, "display": null,
        "hasMicrophone": true, "microphone": {"count": 1, "hasVAD": true},
        "hasSpeaker": true, "speaker": {"count": 1, "isPrivate": false},
        "hasIMU": true,
        "imu": {"axisCount": 6, "hasAccelerometer": true, "hasCompass": false, "hasGyroscope": true},
        "hasButton": true,
        "button": {"count": 1, "buttons": [{"type": "press",
            "events": ["press", "double_press", "long_press"], "isCapacitive": false}]},
        "hasLight": true,
        "light": {"count": 2, "lights": [
            {"id": "privacy", "purpose": "privacy", "isFullColor": false, "color": "white",
                "position": "front_facing"},
            {"id": "user_feedback", "purpose": "user_feedback", "isFullColor": true, "color": "rgb",
                "position": "user_facing"}]},
        "power": {"hasExternalBattery": false},
        "hasWifi": true
    })
}

fn vuzix_z100() -> Value {
    json!({
        "modelName": "Vuzix Z100",
        "hasCamera": false, "camera": null,
        "hasDisplay": true,
        "display": {"count": 1, "isColor": false, "color": "green", "canDisplayBitmap": false,
            "resolution": {"width": 640, "height": 480}, "fieldOfView": {"horizontal": 30},
            "maxTextLines": 7, "adjustBrightness": true},
        "hasMicrophone": false, "microphone": null,
        "hasSpeaker": false, "speaker": null,
        "hasIMU": false, "imu": null,
        "hasButton": false, "button": null,
        "hasLight": false, "light": null,
        "power": {"hasExternalBattery": false},
        "hasWifi": false
    })
}

fn simulated() -> Value {
    let mut v = vuzix_z100();
    if let Value::Object(m) = &mut v {
        m.insert("modelName".into(), "Simulated Glasses".into());
        m.insert("hasMicrophone".into(), true.into());
        m.insert("microphone".into(), json!({"count": 1, "hasVAD": false}));
        m.insert("hasSpeaker".into(), true.into());
        m.insert("speaker".into(), json!({"count": 1, "isPrivate": false}));
        m.insert("hasButton".into(), true.into());
        m.insert(
            "button".into(),
            json!({"count": 1, "buttons": [{"type": "press", "events": ["press"], "isCapacitive": false}]}),
        );
    }
    v
}

/// Glasses Sightline has no profile for: the phone's microphone, nothing
/// else assumed.
fn unknown(model: &str) -> Value {
    json!({
        "modelName": model,
        "hasCamera": false, "camera": null,
        "hasDisplay": false, "display": null,
        "hasMicrophone": true, "microphone": {"count": 1, "hasVAD": false},
        "hasSpeaker": false, "speaker": null,
        "hasIMU": false, "imu": null,
        "hasButton": false, "button": null,
        "hasLight": false, "light": null,
        "power": {"hasExternalBattery": false},
        "hasWifi": false
    })
}

/// `capabilities_update`: the glasses changed model.
pub fn capabilities_update(capabilities: &Value, model: &str, timestamp: &str) -> String {
    json!({
        "type": "capabilities_update",
        "capabilities": capabilities,
        "modelName": model,
        "timestamp": timestamp,
    })
    .to_string()
}

/// `device_state_update`: these fields of the glasses' state changed (or,
/// with `full`, this is the whole state).
pub fn device_state_update(state: &Map<String, Value>, full: bool, timestamp: &str) -> String {
    json!({
        "type": "device_state_update",
        "state": state,
        "fullSnapshot": full,
        "timestamp": timestamp,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_known_model_has_its_hardware() {
        assert_eq!(profile_for("Mentra Live")["hasCamera"], true);
        assert_eq!(profile_for("Mentra Live")["hasDisplay"], false);
        assert_eq!(profile_for("Mentra Live")["hasSpeaker"], true);
        assert_eq!(profile_for("Even Realities G1")["hasDisplay"], true);
        assert_eq!(profile_for("Even Realities G1")["hasCamera"], false);
        assert_eq!(profile_for("Vuzix Z100")["hasMicrophone"], false);
        assert_eq!(profile_for("Simulated Glasses")["hasSpeaker"], true);
        assert_eq!(
            profile_for("Simulated Glasses")["modelName"],
            "Simulated Glasses"
        );
    }

    #[test]
    fn an_unknown_model_is_assumed_to_have_neither_display_nor_camera() {
        let p = profile_for("Brand New Frames");
        assert_eq!(p["modelName"], "Brand New Frames");
        assert_eq!(p["hasDisplay"], false);
        assert_eq!(p["hasCamera"], false);
    }

    #[test]
    fn every_profile_has_every_field_the_sdk_reads() {
        let fields = [
            "modelName",
            "hasCamera",
            "camera",
            "hasDisplay",
            "display",
            "hasMicrophone",
            "microphone",
            "hasSpeaker",
            "speaker",
            "hasIMU",
            "imu",
            "hasButton",
            "button",
            "hasLight",
            "light",
            "power",
            "hasWifi",
        ];
        for model in [
            "Even Realities G1",
            "Mentra Live",
            "Vuzix Z100",
            "Simulated Glasses",
            "x",
        ] {
            let p = profile_for(model);
            for f in fields {
                assert!(p.get(f).is_some(), "{model} lacks {f}");
            }
        }
    }
}
