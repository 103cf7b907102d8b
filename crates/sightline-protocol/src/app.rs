//! Frames from app servers (SDK `AppSession`s) on `/app-ws`.
//!
//! Identity fields in these messages (`sessionId`, `packageName`) are read
//! only from `tpa_connection_init`; later messages are attributed to the
//! (user, package) bound to the socket, because the SDK fills those fields
//! inconsistently (an empty `sessionId` on displays, a doubled package suffix
//! on dashboard messages).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app_messaging::{parse_messaging, MessagingRequest, MESSAGING_TYPES};
use crate::device::{parse_device_request, DeviceRequest, DEVICE_REQUEST_TYPES, MAX_ID_LEN};
use crate::error::ProtocolError;
use crate::stream::SubscriptionItem;

/// Largest base64 bitmap accepted in a display request, as the SDK checks.
pub const MAX_BITMAP_LEN: usize = 1_000_000;

/// A parsed frame from an app.
#[derive(Debug, Clone, PartialEq)]
pub enum AppMessage {
    ConnectionInit(ConnectionInit),
    /// A full replacement of the app's subscriptions.
    SubscriptionUpdate(Vec<SubscriptionItem>),
    DisplayEvent(DisplayRequest),
    DashboardContentUpdate {
        content: String,
        modes: Vec<String>,
    },
    DashboardModeChange {
        mode: String,
    },
    DashboardSystemUpdate {
        section: String,
        content: String,
    },
    /// The app says its next close is deliberate (`switching_clouds`,
    /// `clean_shutdown`, `user_logout`).
    OwnershipRelease {
        reason: String,
    },
    /// `stream_status_check`: answered at once with the running stream.
    StreamStatusCheck,
    /// A request to the glasses' hardware (see [`crate::device`]).
    Device(DeviceRequest),
    /// A message between users of the same app (see [`crate::app_messaging`]).
    Messaging(MessagingRequest),
    /// A device or messaging request whose fields are wrong: settled at
    /// once with the answer the SDK expects for its kind, carrying its id
    /// if it had one.
    InvalidRequest {
        kind: String,
        request_id: Option<String>,
        reason: String,
    },
}

/// `tpa_connection_init`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInit {
    pub session_id: String,
    pub package_name: String,
    pub api_key: String,
}

/// A validated `display_event` request.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayRequest {
    /// `main` or `dashboard`; anything else is coerced to `main`, as the SDK does.
    pub view: String,
    /// The layout object, forwarded unchanged.
    pub layout: Map<String, Value>,
    pub duration_ms: Option<u64>,
    pub force_display: bool,
}

impl DisplayRequest {
    pub fn layout_type(&self) -> &str {
        self.layout
            .get("layoutType")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

impl AppMessage {
    /// The message's `type`, from a fixed set (for counting).
    pub fn type_name(&self) -> &'static str {
        match self {
            AppMessage::ConnectionInit(_) => "tpa_connection_init",
            AppMessage::SubscriptionUpdate(_) => "subscription_update",
            AppMessage::DisplayEvent(_) => "display_event",
            AppMessage::DashboardContentUpdate { .. } => "dashboard_content_update",
            AppMessage::DashboardModeChange { .. } => "dashboard_mode_change",
            AppMessage::DashboardSystemUpdate { .. } => "dashboard_system_update",
            AppMessage::OwnershipRelease { .. } => "ownership_release",
            AppMessage::StreamStatusCheck => "stream_status_check",
            AppMessage::Device(_) => "device_request",
            AppMessage::Messaging(_) => "app_messaging",
            AppMessage::InvalidRequest { .. } => "invalid_request",
        }
    }
}

/// Whether a frame that failed to parse claimed to be a `display_event`
/// (so that refused display requests can be counted).
pub fn claims_display_event(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Claim<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Claim>(text).is_ok_and(|c| c.kind.as_deref() == Some("display_event"))
}

/// Entries of one `subscription_update` decoded at most; the rest are
/// skipped unread (an app holds far fewer: see the session's limit).
pub const MAX_SUBSCRIPTION_ITEMS: usize = 1024;

/// A `subscription_update` read straight from its text: the first
/// [`MAX_SUBSCRIPTION_ITEMS`] entries decoded, the rest only skipped, so a
/// huge list costs one scan and few allocations.
#[derive(Deserialize)]
struct SubscriptionFrame {
    #[serde(default)]
    subscriptions: Option<BoundedItems>,
}

struct BoundedItems(Vec<SubscriptionItem>);

impl<'de> Deserialize<'de> for BoundedItems {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = BoundedItems;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BoundedItems, A::Error> {
                let mut items = Vec::new();
                while items.len() < MAX_SUBSCRIPTION_ITEMS {
                    match seq.next_element::<Value>()? {
                        Some(v) => items.push(SubscriptionItem::from_value(v)),
                        None => return Ok(BoundedItems(items)),
                    }
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(BoundedItems(items))
            }
        }
        d.deserialize_seq(Items)
    }
}

/// The `type` of a frame, read without decoding the rest.
fn frame_type(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Claim<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Claim>(text).ok()?.kind
}

/// Parses one text frame from an app.
pub fn parse_app_message(text: &str) -> Result<AppMessage, ProtocolError> {
    if text.len() > 4096 && frame_type(text).as_deref() == Some("subscription_update") {
        // A long list: decoded straight from the text, bounded.
        if let Ok(frame) = serde_json::from_str::<SubscriptionFrame>(text) {
            let items = frame.subscriptions.map(|b| b.0).unwrap_or_default();
            return Ok(AppMessage::SubscriptionUpdate(items));
        }
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(ProtocolError::MissingType);
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ProtocolError::MissingType),
    };
    let str_field = |obj: &Map<String, Value>, name: &str| -> Result<String, ProtocolError> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(ProtocolError::invalid(
                &kind,
                format!("\"{name}\" must be a string"),
            )),
        }
    };
    Ok(match kind.as_str() {
        "tpa_connection_init" => {
            let init: ConnectionInit = serde_json::from_value(Value::Object(obj))
                .map_err(|e| ProtocolError::invalid(&kind, e))?;
            if init.package_name.is_empty() {
                return Err(ProtocolError::invalid(&kind, "packageName is empty"));
            }
            AppMessage::ConnectionInit(init)
        }
        "subscription_update" => match obj.remove("subscriptions") {
            Some(Value::Array(items)) => AppMessage::SubscriptionUpdate(
                items
                    .into_iter()
                    .map(SubscriptionItem::from_value)
                    .collect(),
            ),
            None | Some(Value::Null) => AppMessage::SubscriptionUpdate(Vec::new()),
            Some(_) => {
                return Err(ProtocolError::invalid(
                    &kind,
                    "subscriptions must be an array",
                ))
            }
        },
        "display_event" => AppMessage::DisplayEvent(parse_display(&kind, obj)?),
        "dashboard_content_update" => {
            let content = match obj.get("content") {
                Some(Value::String(s)) => s.clone(),
                // The SDK lets apps send a layout object as content.
                Some(v @ Value::Object(_)) => flatten_layout(v),
                _ => return Err(ProtocolError::invalid(&kind, "\"content\" is required")),
            };
            let modes = match obj.get("modes") {
                Some(Value::Array(m)) => m
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => vec!["main".to_string()],
            };
            AppMessage::DashboardContentUpdate { content, modes }
        }
        "dashboard_mode_change" => AppMessage::DashboardModeChange {
            mode: str_field(&obj, "mode")?,
        },
        "dashboard_system_update" => AppMessage::DashboardSystemUpdate {
            section: str_field(&obj, "section")?,
            content: str_field(&obj, "content")?,
        },
        "ownership_release" => AppMessage::OwnershipRelease {
            reason: obj
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("unspecified")
                .to_string(),
        },
        "stream_status_check" => AppMessage::StreamStatusCheck,
        k if DEVICE_REQUEST_TYPES.contains(&k) => match parse_device_request(k, &obj) {
            Ok(req) => AppMessage::Device(req),
            Err(e) => AppMessage::InvalidRequest {
                request_id: request_id(&obj),
                kind,
                reason: e.to_string(),
            },
        },
        k if MESSAGING_TYPES.contains(&k) => match parse_messaging(k, &obj) {
            Ok(req) => AppMessage::Messaging(req),
            Err(e) => AppMessage::InvalidRequest {
                request_id: request_id(&obj),
                kind,
                reason: e.to_string(),
            },
        },
        _ => return Err(ProtocolError::UnknownType(kind)),
    })
}

/// The id an app's pending promise waits on, if the frame has a usable one.
fn request_id(obj: &Map<String, Value>) -> Option<String> {
    ["requestId", "correlationId", "messageId"]
        .iter()
        .find_map(|k| match obj.get(*k) {
            Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_LEN => Some(id.clone()),
            _ => None,
        })
}

fn parse_display(kind: &str, mut obj: Map<String, Value>) -> Result<DisplayRequest, ProtocolError> {
    let layout = match obj.remove("layout") {
        Some(Value::Object(l)) => l,
        _ => return Err(ProtocolError::invalid(kind, "\"layout\" must be an object")),
    };
    let layout_type = match layout.get("layoutType") {
        Some(Value::String(t)) => t.as_str(),
        _ => {
            return Err(ProtocolError::invalid(
                kind,
                "layout.layoutType must be a string",
            ))
        }
    };
    let need = |fields: &[&str]| -> Result<(), ProtocolError> {
        for f in fields {
            if !matches!(layout.get(*f), Some(Value::String(_))) {
                return Err(ProtocolError::invalid(
                    kind,
                    format!("layout {layout_type} needs a string \"{f}\""),
                ));
            }
        }
        Ok(())
    };
    match layout_type {
        "text_wall" => need(&["text"])?,
        "double_text_wall" => need(&["topText", "bottomText"])?,
        "reference_card" => need(&["title", "text"])?,
        "dashboard_card" => need(&["leftText", "rightText"])?,
        "bitmap_view" => {
            need(&["data"])?;
            let len = layout
                .get("data")
                .and_then(Value::as_str)
                .map_or(0, str::len);
            if len > MAX_BITMAP_LEN {
                return Err(ProtocolError::invalid(
                    kind,
                    format!("bitmap is {len} bytes, more than {MAX_BITMAP_LEN}"),
                ));
            }
        }
        "bitmap_animation" => match layout.get("frames") {
            Some(Value::Array(f)) if !f.is_empty() => {}
            _ => {
                return Err(ProtocolError::invalid(
                    kind,
                    "bitmap_animation needs frames",
                ))
            }
        },
        // clear_view has no fields; other layouts are forwarded unchanged.
        _ => {}
    }
    let duration_ms = match obj.get("durationMs") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(d) if d >= 0.0 && d.is_finite() => Some(d as u64),
            _ => {
                return Err(ProtocolError::invalid(
                    kind,
                    "durationMs must be a non-negative number",
                ))
            }
        },
        Some(_) => return Err(ProtocolError::invalid(kind, "durationMs must be a number")),
    };
    let view = match obj.get("view").and_then(Value::as_str) {
        Some("dashboard") => "dashboard",
        _ => "main",
    };
    Ok(DisplayRequest {
        view: view.to_string(),
        layout,
        duration_ms,
        force_display: obj
            .get("forceDisplay")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Flattens a layout to the text shown on the dashboard.
pub fn flatten_layout(layout: &Value) -> String {
    let s = |k: &str| layout.get(k).and_then(Value::as_str).unwrap_or_default();
    match layout.get("layoutType").and_then(Value::as_str) {
        Some("double_text_wall") => format!("{}\n{}", s("topText"), s("bottomText")),
        Some("dashboard_card") => format!("{} | {}", s("leftText"), s("rightText")),
        Some("reference_card") => format!("{}\n{}", s("title"), s("text")),
        _ => s("text").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn init() {
        let m = parse_app_message(
            r#"{"type":"tpa_connection_init","sessionId":"a@b.c-com.x","packageName":"com.x","apiKey":"k","timestamp":"2025-01-01T00:00:00Z"}"#,
        );
        assert!(matches!(m, Ok(AppMessage::ConnectionInit(ref i)) if i.package_name == "com.x"));
        assert!(matches!(
            parse_app_message(r#"{"type":"tpa_connection_init","sessionId":"x"}"#),
            Err(ProtocolError::InvalidField { .. })
        ));
    }

    #[test]
    fn subscriptions_accept_anything_in_the_list() {
        let m = parse_app_message(
            r#"{"type":"subscription_update","subscriptions":["button_press",{"stream":"location_stream","rate":"high"},7]}"#,
        )
        .unwrap();
        let AppMessage::SubscriptionUpdate(items) = m else {
            panic!()
        };
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn display_validation() {
        let ok = parse_app_message(
            r#"{"type":"display_event","view":"weird","layout":{"layoutType":"text_wall","text":"hi"},"durationMs":500,"sessionId":""}"#,
        )
        .unwrap();
        let AppMessage::DisplayEvent(d) = ok else {
            panic!()
        };
        assert_eq!(d.view, "main");
        assert_eq!(d.duration_ms, Some(500));
        for bad in [
            r#"{"type":"display_event","layout":{"layoutType":"text_wall"}}"#,
            r#"{"type":"display_event","layout":"x"}"#,
            r#"{"type":"display_event","layout":{"layoutType":"text_wall","text":"a"},"durationMs":-5}"#,
            r#"{"type":"display_event","layout":{"layoutType":"double_text_wall","topText":"a"}}"#,
        ] {
            assert!(parse_app_message(bad).is_err(), "{bad}");
        }
        let unknown =
            parse_app_message(r#"{"type":"display_event","layout":{"layoutType":"hologram"}}"#);
        assert!(unknown.is_ok());
    }

    #[test]
    fn a_long_subscription_list_is_decoded_bounded_and_as_the_short_path_would() {
        let entries: Vec<Value> = (0..3000)
            .map(|n| match n % 3 {
                0 => json!(format!("stream_{n}")),
                1 => json!({"stream": format!("location_stream_{n}"), "rate": "high"}),
                _ => json!(n),
            })
            .collect();
        let text = json!({"type": "subscription_update", "subscriptions": entries}).to_string();
        let Ok(AppMessage::SubscriptionUpdate(items)) = parse_app_message(&text) else {
            panic!("a subscription update");
        };
        assert_eq!(items.len(), MAX_SUBSCRIPTION_ITEMS);
        let expected: Vec<SubscriptionItem> = entries[..MAX_SUBSCRIPTION_ITEMS]
            .iter()
            .map(|v| SubscriptionItem::from_value(v.clone()))
            .collect();
        assert_eq!(items, expected);
        // Not an array: the same clear error as a short frame gets.
        let bad = format!(
            r#"{{"type":"subscription_update","subscriptions":"{}"}}"#,
            "x".repeat(5000)
        );
        assert!(parse_app_message(&bad).is_err());
    }

    #[test]
    fn unknown_and_unsupported() {
        assert_eq!(
            parse_app_message(r#"{"type":"fly"}"#),
            Err(ProtocolError::UnknownType("fly".into()))
        );
        assert!(matches!(
            parse_app_message(r#"{"type":"photo_request"}"#),
            Ok(AppMessage::InvalidRequest { .. })
        ));
        assert!(matches!(
            parse_app_message(r#"{"type":"photo_request","requestId":"p1"}"#),
            Ok(AppMessage::Device(_))
        ));
        assert!(matches!(
            parse_app_message(r#"{"type":"app_direct_message","messageId":"m"}"#),
            Ok(AppMessage::InvalidRequest { .. })
        ));
        assert!(parse_app_message("{").is_err());
    }
}
