//! Messages Sightline sends, to the glasses and to apps.
//!
//! Every builder returns the JSON text of one message, to be sent in a text
//! frame (the SDK takes *any* binary frame for audio). `data_stream`, the one
//! built per event and per app, splices the event's JSON in unchanged.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::app::DisplayRequest;

/// What the glasses (and the phone UI) learn about the session in
/// `connection_ack` and `app_state_change`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSnapshot {
    pub user_id: String,
    pub start_time: String,
    pub active_app_sessions: Vec<String>,
    pub loading_apps: Vec<String>,
    pub app_subscriptions: BTreeMap<String, Vec<String>>,
    pub requires_audio: bool,
    pub minimum_transcription_languages: Vec<String>,
    pub is_transcribing: bool,
}

/// Every `type` Sightline sends.
pub const OUTBOUND_TYPES: &[&str] = &[
    "data_stream",
    "display_event",
    "connection_ack",
    "connection_error",
    "app_state_change",
    "microphone_state_change",
    "settings_update",
    "tpa_connection_ack",
    "tpa_connection_error",
    "permission_error",
    "app_stopped",
    "stream_status_check_response",
    "dashboard_mode_changed",
];

/// The `type` of a message built here, read from its first field (every
/// builder puts `type` first), as one of [`OUTBOUND_TYPES`] or `other`.
pub fn message_type(text: &str) -> &'static str {
    let Some(rest) = text.strip_prefix(r#"{"type":""#) else {
        return "other";
    };
    let name = rest.split('"').next().unwrap_or_default();
    OUTBOUND_TYPES
        .iter()
        .find(|t| **t == name)
        .copied()
        .unwrap_or("other")
}

// ---------------------------------------------------------------- glasses --

/// `connection_ack`, sent on open and on every `connection_init`.
pub fn connection_ack(snapshot: &SessionSnapshot, timestamp: &str) -> String {
    json!({
        "type": "connection_ack",
        "sessionId": snapshot.user_id,
        "userSession": snapshot,
        "activeAppPackageNames": snapshot.active_app_sessions,
        "timestamp": timestamp,
    })
    .to_string()
}

/// `connection_error`, for a frame the server could not use.
pub fn connection_error(code: &str, message: &str, timestamp: &str) -> String {
    json!({"type": "connection_error", "code": code, "message": message, "timestamp": timestamp})
        .to_string()
}

/// `app_state_change`, after every lifecycle or subscription change.
pub fn app_state_change(
    snapshot: &SessionSnapshot,
    error: Option<&str>,
    timestamp: &str,
) -> String {
    let mut v = json!({
        "type": "app_state_change",
        "sessionId": snapshot.user_id,
        "userSession": snapshot,
        "activeAppPackageNames": snapshot.active_app_sessions,
        "timestamp": timestamp,
    });
    if let (Some(e), Value::Object(m)) = (error, &mut v) {
        m.insert("error".into(), Value::String(e.to_string()));
    }
    v.to_string()
}

/// `microphone_state_change`: whether the glasses should stream audio and
/// what it is needed for (`pcm`, `transcription`).
pub fn microphone_state_change(
    user_id: &str,
    enabled: bool,
    required_data: &[&str],
    bypass_vad: bool,
    timestamp: &str,
) -> String {
    json!({
        "type": "microphone_state_change",
        "sessionId": user_id,
        "isMicrophoneEnabled": enabled,
        "requiredData": required_data,
        "bypassVad": bypass_vad,
        "timestamp": timestamp,
    })
    .to_string()
}

/// `settings_update` answering `request_settings`.
pub fn glasses_settings(user_id: &str, settings: &Map<String, Value>, timestamp: &str) -> String {
    json!({"type": "settings_update", "sessionId": user_id, "settings": settings, "timestamp": timestamp})
        .to_string()
}

/// `settings_update` answering `settings_update_request`.
pub fn glasses_settings_response(
    user_id: &str,
    settings: &Map<String, Value>,
    timestamp: &str,
) -> String {
    json!({
        "type": "settings_update",
        "sessionId": user_id,
        "success": true,
        "message": "Current settings retrieved successfully",
        "settings": settings,
        "timestamp": timestamp,
    })
    .to_string()
}

/// `display_event` to the glasses, attributed to the app bound to the socket
/// it came from.
pub fn display_event(package_name: &str, req: &DisplayRequest, timestamp: &str) -> String {
    let mut m = Map::new();
    m.insert("type".into(), "display_event".into());
    m.insert("packageName".into(), package_name.into());
    m.insert("view".into(), req.view.clone().into());
    m.insert("layout".into(), Value::Object(req.layout.clone()));
    if let Some(d) = req.duration_ms {
        m.insert("durationMs".into(), d.into());
    }
    if req.force_display {
        m.insert("forceDisplay".into(), true.into());
    }
    m.insert("timestamp".into(), timestamp.into());
    Value::Object(m).to_string()
}

// -------------------------------------------------------------------- app --

/// `tpa_connection_ack`. `mentraosSettings` is what the SDK reads;
/// `augmentosSettings` is kept for older SDKs.
pub fn tpa_connection_ack(
    session_id: &str,
    settings: &Value,
    mentraos_settings: &Map<String, Value>,
    capabilities: &Value,
    timestamp: &str,
) -> String {
    json!({
        "type": "tpa_connection_ack",
        "sessionId": session_id,
        "settings": settings,
        "mentraosSettings": mentraos_settings,
        "augmentosSettings": mentraos_settings,
        "capabilities": capabilities,
        "timestamp": timestamp,
    })
    .to_string()
}

/// `tpa_connection_error`.
pub fn tpa_connection_error(code: &str, message: &str, timestamp: &str) -> String {
    json!({"type": "tpa_connection_error", "code": code, "message": message, "timestamp": timestamp})
        .to_string()
}

/// `data_stream` carrying `data` unchanged, with the app's own subscription
/// string as `streamType`.
pub fn data_stream(
    session_id: &str,
    stream_type: &str,
    data: &RawValue,
    timestamp: &str,
) -> String {
    DataStreamFrame::new(stream_type, data.get(), timestamp).for_session(session_id)
}

/// A `data_stream` serialised once for one event and one `streamType`;
/// only the app's `sessionId` is written per app. Fanning an event out to
/// many apps with the same subscription costs one serialisation, then a
/// copy per app.
#[derive(Debug, Clone)]
pub struct DataStreamFrame {
    /// Everything after `sessionId`'s value: `,"streamType":…}`.
    tail: String,
}

impl DataStreamFrame {
    const HEAD: &'static str = r#"{"type":"data_stream","sessionId":"#;

    /// `data` is JSON text, written as it is (a `RawValue`'s text, or a
    /// glasses event's validated `EventJson`).
    pub fn new(stream_type: &str, data: &str, timestamp: &str) -> DataStreamFrame {
        let mut tail = String::with_capacity(data.len() + stream_type.len() + 64);
        tail.push_str(r#","streamType":"#);
        push_json_str(&mut tail, stream_type);
        tail.push_str(r#","data":"#);
        tail.push_str(data);
        tail.push_str(r#","timestamp":"#);
        push_json_str(&mut tail, timestamp);
        tail.push('}');
        DataStreamFrame { tail }
    }

    /// The message for the app whose session id is `session_id`.
    pub fn for_session(&self, session_id: &str) -> String {
        let mut s =
            String::with_capacity(Self::HEAD.len() + session_id.len() + 2 + self.tail.len());
        s.push_str(Self::HEAD);
        push_json_str(&mut s, session_id);
        s.push_str(&self.tail);
        s
    }
}

/// Appends `v` as a JSON string literal.
fn push_json_str(out: &mut String, v: &str) {
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(v);
        out.push('"');
    } else {
        // Serialising a str cannot fail.
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
}

/// One stream an app was refused, for `permission_error`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionDenied {
    pub stream: String,
    pub required_permission: String,
    pub message: String,
}

/// `permission_error`: the streams of a subscription update that were left
/// out; the rest of the update applies.
pub fn permission_error(details: &[PermissionDenied], timestamp: &str) -> String {
    json!({
        "type": "permission_error",
        "message": format!("{} stream(s) need permissions this app does not have", details.len()),
        "details": details,
        "timestamp": timestamp,
    })
    .to_string()
}

/// `app_stopped`, sent before the close that ends an app's socket.
pub fn app_stopped(reason: &str, timestamp: &str) -> String {
    json!({"type": "app_stopped", "reason": reason, "timestamp": timestamp}).to_string()
}

/// `dashboard_mode_changed`, broadcast to every app of the session.
pub fn dashboard_mode_changed(mode: &str, session_id: &str, timestamp: &str) -> String {
    json!({"type": "dashboard_mode_changed", "mode": mode, "sessionId": session_id, "timestamp": timestamp})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builder_puts_its_type_first() {
        let snap = SessionSnapshot::default();
        let ts = "2026-01-01T00:00:00.000Z";
        let data = RawValue::from_string("{}".into()).unwrap();
        let req = crate::app::parse_app_message(
            r#"{"type":"display_event","layout":{"layoutType":"text_wall","text":"hi"}}"#,
        );
        let Ok(crate::app::AppMessage::DisplayEvent(req)) = req else {
            panic!("display request did not parse");
        };
        let built = [
            (connection_ack(&snap, ts), "connection_ack"),
            (connection_error("X", "m", ts), "connection_error"),
            (app_state_change(&snap, Some("e"), ts), "app_state_change"),
            (
                microphone_state_change("u", true, &["pcm"], false, ts),
                "microphone_state_change",
            ),
            (glasses_settings("u", &Map::new(), ts), "settings_update"),
            (
                glasses_settings_response("u", &Map::new(), ts),
                "settings_update",
            ),
            (display_event("p", &req, ts), "display_event"),
            (
                tpa_connection_ack("s", &json!([]), &Map::new(), &json!({}), ts),
                "tpa_connection_ack",
            ),
            (tpa_connection_error("X", "m", ts), "tpa_connection_error"),
            (data_stream("s", "button_press", &data, ts), "data_stream"),
            (permission_error(&[], ts), "permission_error"),
            (app_stopped("r", ts), "app_stopped"),
            (
                crate::device::stream_status_check_response(None, ts),
                "stream_status_check_response",
            ),
            (
                dashboard_mode_changed("main", "s", ts),
                "dashboard_mode_changed",
            ),
        ];
        for (text, kind) in built {
            assert_eq!(message_type(&text), kind, "{text}");
        }
        assert_eq!(message_type(r#"{"a":1,"type":"data_stream"}"#), "other");
        assert_eq!(message_type(r#"{"type":"made_up"}"#), "other");
    }

    #[test]
    fn data_stream_splices_data_verbatim() {
        let data =
            RawValue::from_string(r#"{"type":"button_press","buttonId":"power"}"#.into()).unwrap();
        let s = data_stream("u-p", "button_press", &data, "T");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["type"], "data_stream");
        assert_eq!(v["streamType"], "button_press");
        assert_eq!(v["data"]["buttonId"], "power");
        assert_eq!(v["sessionId"], "u-p");
    }

    #[test]
    fn data_stream_frame_matches_serde_for_every_session() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct DataStream<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            session_id: &'a str,
            stream_type: &'a str,
            data: &'a RawValue,
            timestamp: &'a str,
        }
        let data = RawValue::from_string(r#"{"type":"x","t":"a\"b"}"#.into()).unwrap();
        let frame = DataStreamFrame::new(
            "transcription:en-US",
            data.get(),
            "2025-01-01T00:00:00.000Z",
        );
        for sid in ["u@e.com-com.a", "we\"ird\\id\u{1}", ""] {
            let want = serde_json::to_string(&DataStream {
                kind: "data_stream",
                session_id: sid,
                stream_type: "transcription:en-US",
                data: &data,
                timestamp: "2025-01-01T00:00:00.000Z",
            })
            .unwrap();
            assert_eq!(frame.for_session(sid), want);
        }
    }

    #[test]
    fn ack_has_the_fields_the_sdk_reads() {
        let s = tpa_connection_ack(
            "u-p",
            &json!([]),
            &crate::settings::default_mentraos_settings(),
            &crate::capabilities::profile_for(crate::capabilities::DEFAULT_MODEL),
            "T",
        );
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["type"], "tpa_connection_ack");
        assert!(v["settings"].is_array());
        assert_eq!(v["mentraosSettings"]["headUpAngle"], 20);
        assert_eq!(v["capabilities"]["hasWifi"], false);
    }
}
