//! Frames from the glasses (through the user's phone) on `/glasses-ws`.
//!
//! A few message types drive the session (`connection_init`, `start_app`,
//! `stop_app`, settings requests); everything else is an *event*, relayed to
//! subscribed apps as the `data` of a `data_stream`. Events keep their exact
//! JSON text, so relaying them costs no re-serialisation; only a numeric
//! `timestamp` (Android sends epoch milliseconds) is rewritten to ISO form.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ProtocolError;
use crate::time::iso_from_epoch_ms;

/// A parsed frame from the glasses.
#[derive(Debug, Clone, PartialEq)]
pub enum GlassesMessage {
    /// Sent by the phone about a second after opening; answered with
    /// `connection_ack` every time. May choose the audio codec of the
    /// connection's binary frames (`audioCodec`: `pcm` or `lc3`, and
    /// `lc3FrameBytes`).
    ConnectionInit {
        audio_codec: Option<String>,
        lc3_frame_bytes: Option<u32>,
    },
    StartApp {
        package_name: String,
    },
    StopApp {
        package_name: String,
    },
    /// `request_settings`: answered with `settings_update {sessionId, settings}`.
    RequestSettings,
    /// `settings_update_request`: answered with `settings_update {success, ...}`.
    SettingsUpdateRequest,
    /// Anything else: relayed to subscribers.
    Event(GlassesEvent),
}

/// A glasses event, ready to be relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct GlassesEvent {
    /// The message `type`, as sent.
    pub kind: String,
    /// `gesture_name` of a `touch_event`.
    pub gesture: Option<String>,
    /// The whole message object as JSON text (timestamp in ISO form).
    pub json: EventJson,
}

/// The JSON text of one event object, validated once when it was parsed
/// (a `RawValue` would validate the same text a second time).
#[derive(Debug, Clone, PartialEq)]
pub struct EventJson(Box<str>);

impl EventJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

impl GlassesEvent {
    /// Builds an event Sightline itself emits (for example
    /// `glasses_connection_state` when the glasses drop).
    pub fn synthetic(kind: &str, value: &Value) -> GlassesEvent {
        GlassesEvent {
            kind: kind.to_string(),
            gesture: None,
            json: EventJson(value.to_string().into_boxed_str()),
        }
    }
}

/// Event types the glasses and phone are known to send, for metric labels:
/// any other type is counted as `other_event`, so a client cannot grow the
/// set of labels.
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "button_press",
    "head_position",
    "touch_event",
    "glasses_battery_update",
    "phone_battery_update",
    "glasses_connection_state",
    "location_update",
    "calendar_event",
    "VAD",
    "vad",
    "phone_notification",
    "phone_notification_dismissed",
    "notification_dismissed",
    "core_status_update",
    "photo_response",
    "rtmp_stream_status",
    "keep_alive_ack",
    "video_stream_response",
    "audio_play_response",
    "local_transcription",
    "mentraos_settings_update_request",
    "mentraos_settings_update",
    "augmentos_settings_update",
    "custom_message",
    "rgb_led_control_response",
];

impl GlassesMessage {
    /// The message's `type`, from a fixed set (for counting).
    pub fn type_name(&self) -> &'static str {
        match self {
            GlassesMessage::ConnectionInit { .. } => "connection_init",
            GlassesMessage::StartApp { .. } => "start_app",
            GlassesMessage::StopApp { .. } => "stop_app",
            GlassesMessage::RequestSettings => "request_settings",
            GlassesMessage::SettingsUpdateRequest => "settings_update_request",
            GlassesMessage::Event(ev) => KNOWN_EVENT_TYPES
                .iter()
                .find(|k| **k == ev.kind)
                .copied()
                .unwrap_or("other_event"),
        }
    }
}

/// The fields Sightline reads. All but `type` are taken as any JSON and
/// checked by the message that uses them, so a field of the wrong type is
/// reported by name (or ignored on an event that does not use it) instead
/// of failing the whole frame.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "packageName", default)]
    package_name: Option<Value>,
    #[serde(default)]
    gesture_name: Option<Value>,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(rename = "audioCodec", default)]
    audio_codec: Option<Value>,
    #[serde(rename = "lc3FrameBytes", default)]
    lc3_frame_bytes: Option<Value>,
}

/// Parses one text frame from the glasses.
pub fn parse_glasses_message(text: &str) -> Result<GlassesMessage, ProtocolError> {
    let env: Envelope = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ProtocolError::MissingType,
        _ => ProtocolError::InvalidJson(e.to_string()),
    })?;
    // serde also reads a struct from a JSON array (`["start_app","com.x"]`);
    // only objects are messages, and only objects may be relayed as events.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(ProtocolError::MissingType);
    }
    let kind = env.kind.ok_or(ProtocolError::MissingType)?;
    let package = |kind: &str| -> Result<String, ProtocolError> {
        match &env.package_name {
            Some(Value::String(p)) if !p.is_empty() => Ok(p.clone()),
            _ => Err(ProtocolError::invalid(
                kind,
                "packageName must be a non-empty string",
            )),
        }
    };
    Ok(match kind.as_ref() {
        "connection_init" => GlassesMessage::ConnectionInit {
            audio_codec: match &env.audio_codec {
                None | Some(Value::Null) => None,
                Some(Value::String(c)) => Some(c.clone()),
                Some(_) => {
                    return Err(ProtocolError::invalid(
                        "connection_init",
                        "audioCodec must be a string",
                    ))
                }
            },
            lc3_frame_bytes: match &env.lc3_frame_bytes {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64().map(u32::try_from) {
                    Some(Ok(n)) => Some(n),
                    _ => {
                        return Err(ProtocolError::invalid(
                            "connection_init",
                            "lc3FrameBytes must be a whole number of bytes",
                        ))
                    }
                },
            },
        },
        "start_app" => GlassesMessage::StartApp {
            package_name: package("start_app")?,
        },
        "stop_app" => GlassesMessage::StopApp {
            package_name: package("stop_app")?,
        },
        "request_settings" => GlassesMessage::RequestSettings,
        "settings_update_request" => GlassesMessage::SettingsUpdateRequest,
        "" => return Err(ProtocolError::MissingType),
        other => {
            // `text` parsed as an object above: it is valid JSON as it is.
            let json = match env.timestamp {
                Some(Value::Number(n)) => with_iso_timestamp(text, n.as_i64())?,
                _ => EventJson(text.trim().into()),
            };
            GlassesMessage::Event(GlassesEvent {
                kind: other.to_string(),
                gesture: match env.gesture_name {
                    Some(Value::String(g)) => Some(g),
                    _ => None,
                },
                json,
            })
        }
    })
}

fn with_iso_timestamp(text: &str, ms: Option<i64>) -> Result<EventJson, ProtocolError> {
    let mut obj: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    if let Some(iso) = ms.and_then(iso_from_epoch_ms) {
        obj.insert("timestamp".into(), Value::String(iso));
    }
    let s = serde_json::to_string(&obj).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    Ok(EventJson(s.into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages() {
        assert_eq!(
            parse_glasses_message(r#"{"type":"connection_init","coreToken":"x"}"#),
            Ok(GlassesMessage::ConnectionInit {
                audio_codec: None,
                lc3_frame_bytes: None
            })
        );
        assert_eq!(
            parse_glasses_message(
                r#"{"type":"connection_init","audioCodec":"lc3","lc3FrameBytes":40}"#
            ),
            Ok(GlassesMessage::ConnectionInit {
                audio_codec: Some("lc3".into()),
                lc3_frame_bytes: Some(40)
            })
        );
        assert_eq!(
            parse_glasses_message(r#"{"type":"start_app","packageName":"com.a"}"#),
            Ok(GlassesMessage::StartApp {
                package_name: "com.a".into()
            })
        );
        assert!(matches!(
            parse_glasses_message(r#"{"type":"stop_app"}"#),
            Err(ProtocolError::InvalidField { .. })
        ));
    }

    #[test]
    fn events_keep_their_text() {
        let text = r#"{"type":"button_press","buttonId":"power","pressType":"short","timestamp":"2025-01-01T00:00:00.000Z"}"#;
        match parse_glasses_message(text) {
            Ok(GlassesMessage::Event(e)) => {
                assert_eq!(e.kind, "button_press");
                assert_eq!(e.json.get(), text);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn numeric_timestamps_become_iso() {
        let text = r#"{"type":"head_position","position":"up","timestamp":1751044118000}"#;
        let Ok(GlassesMessage::Event(e)) = parse_glasses_message(text) else {
            panic!("not an event")
        };
        assert!(e
            .json
            .get()
            .contains(r#""timestamp":"2025-06-27T17:08:38.000Z""#));
    }

    #[test]
    fn touch_gesture_is_read() {
        let Ok(GlassesMessage::Event(e)) = parse_glasses_message(
            r#"{"type":"touch_event","gesture_name":"double_tap","device_model":"g1"}"#,
        ) else {
            panic!("not an event")
        };
        assert_eq!(e.gesture.as_deref(), Some("double_tap"));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            parse_glasses_message("not json"),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert_eq!(
            parse_glasses_message("[1,2]"),
            Err(ProtocolError::MissingType)
        );
        assert_eq!(parse_glasses_message("{}"), Err(ProtocolError::MissingType));
        assert_eq!(
            parse_glasses_message(r#"{"type":5}"#),
            Err(ProtocolError::MissingType)
        );
    }

    #[test]
    fn fields_of_the_wrong_type_are_named_or_ignored() {
        // These used to fail the whole frame as "must be a JSON object with
        // a string type field", even on events that do not use the field.
        let Ok(GlassesMessage::Event(e)) = parse_glasses_message(
            r#"{"type":"touch_event","gesture_name":7,"packageName":{},"audioCodec":[1]}"#,
        ) else {
            panic!("not an event")
        };
        assert_eq!(e.gesture, None);
        for (text, reason) in [
            (
                r#"{"type":"connection_init","audioCodec":5}"#,
                "audioCodec must be a string",
            ),
            (
                r#"{"type":"connection_init","audioCodec":"lc3","lc3FrameBytes":-1}"#,
                "lc3FrameBytes must be a whole number of bytes",
            ),
            (
                r#"{"type":"connection_init","lc3FrameBytes":4294967296}"#,
                "lc3FrameBytes must be a whole number of bytes",
            ),
            (
                r#"{"type":"start_app","packageName":5}"#,
                "packageName must be a non-empty string",
            ),
        ] {
            assert_eq!(
                parse_glasses_message(text),
                Err(ProtocolError::InvalidField {
                    kind: text[9..].split('"').next().unwrap_or_default().to_string(),
                    reason: reason.into()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn arrays_are_not_messages() {
        // Found while writing the glasses_message fuzz target: serde reads
        // a struct from an array too, so these used to start an app and
        // relay an array to apps as an event.
        for text in [
            r#"["start_app","com.x"]"#,
            r#"["button_press"]"#,
            r#" ["x",null,null,null,null,null]"#,
        ] {
            assert_eq!(
                parse_glasses_message(text),
                Err(ProtocolError::MissingType),
                "{text}"
            );
        }
    }
}
