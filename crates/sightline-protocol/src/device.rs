//! Device requests: what apps ask of the glasses' hardware (camera,
//! speaker, location, LED, Wi-Fi setup, video streams), what the phone
//! answers, and the frames Sightline sends either way.
//!
//! Requests come from an app's socket ([`parse_device_request`], called by
//! [`crate::app::parse_app_message`]); answers arrive from the phone as
//! ordinary glasses events and are picked out by [`DeviceAnswer::from_event`].
//! Every field is checked and bounded here, so the session only ever sees
//! values it can forward as they are.

use serde_json::{json, Map, Value};

use crate::error::ProtocolError;

/// Longest request id (or correlation id) taken from an app or the phone;
/// the SDK's are about 30 characters.
pub const MAX_ID_LEN: usize = 256;
/// Longest URL taken (audio, webhook, RTMP).
pub const MAX_URL_LEN: usize = 2048;
/// Longest free-text field taken (a Wi-Fi setup reason, an error message).
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest stream configuration object (`video`, `audio`, `stream`) taken,
/// as JSON text.
pub const MAX_CONFIG_LEN: usize = 4096;

/// Which kind of device request something concerns (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Photo,
    Audio,
    Location,
    Led,
    WifiSetup,
    Stream,
    ManagedStream,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Photo => "photo",
            RequestKind::Audio => "audio",
            RequestKind::Location => "location",
            RequestKind::Led => "led",
            RequestKind::WifiSetup => "wifi_setup",
            RequestKind::Stream => "rtmp_stream",
            RequestKind::ManagedStream => "managed_stream",
        }
    }
}

/// A device request from an app.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceRequest {
    /// `photo_request`.
    Photo(PhotoRequest),
    /// `audio_play_request`.
    AudioPlay(AudioPlay),
    /// `audio_stop_request`; no `trackId` means every track.
    AudioStop { track_id: Option<u8> },
    /// `location_poll_request`.
    LocationPoll {
        correlation_id: String,
        accuracy: String,
    },
    /// `rgb_led_control`.
    Led(LedControl),
    /// `request_wifi_setup`.
    WifiSetup { reason: Option<String> },
    /// `rtmp_stream_request`.
    StreamStart(StreamStart),
    /// `rtmp_stream_stop`; no `streamId` means the app's stream, whichever.
    StreamStop { stream_id: Option<String> },
    /// `managed_stream_request`.
    ManagedStart,
    /// `managed_stream_stop`.
    ManagedStop,
}

impl DeviceRequest {
    pub fn kind(&self) -> RequestKind {
        match self {
            DeviceRequest::Photo(_) => RequestKind::Photo,
            DeviceRequest::AudioPlay(_) | DeviceRequest::AudioStop { .. } => RequestKind::Audio,
            DeviceRequest::LocationPoll { .. } => RequestKind::Location,
            DeviceRequest::Led(_) => RequestKind::Led,
            DeviceRequest::WifiSetup { .. } => RequestKind::WifiSetup,
            DeviceRequest::StreamStart(_) | DeviceRequest::StreamStop { .. } => RequestKind::Stream,
            DeviceRequest::ManagedStart | DeviceRequest::ManagedStop => RequestKind::ManagedStream,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRequest {
    pub request_id: String,
    pub save_to_gallery: bool,
    /// `small`, `medium`, `large` or `full`.
    pub size: String,
    /// `none`, `medium` or `heavy`.
    pub compress: String,
    /// Where the app wants the photo instead of its `/photo-upload`.
    pub custom_webhook_url: Option<String>,
    /// A token the app gave to be shown back on upload.
    pub auth_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioPlay {
    pub request_id: String,
    pub audio_url: String,
    pub volume: f64,
    /// The SDK waits for an answer only when this is true (its default).
    pub stop_other_audio: bool,
    /// 0 speaker, 1 app audio, 2 text-to-speech.
    pub track_id: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedControl {
    pub request_id: String,
    /// `on` or `off`.
    pub action: String,
    pub color: Option<String>,
    pub ontime: Option<u64>,
    pub offtime: Option<u64>,
    pub count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamStart {
    pub rtmp_url: String,
    pub video: Map<String, Value>,
    pub audio: Map<String, Value>,
    pub stream: Map<String, Value>,
}

/// The device request types apps send.
pub const DEVICE_REQUEST_TYPES: &[&str] = &[
    "photo_request",
    "audio_play_request",
    "audio_stop_request",
    "location_poll_request",
    "rgb_led_control",
    "request_wifi_setup",
    "rtmp_stream_request",
    "rtmp_stream_stop",
    "managed_stream_request",
    "managed_stream_stop",
];

/// Parses a device request of type `kind` (one of [`DEVICE_REQUEST_TYPES`]).
pub fn parse_device_request(
    kind: &str,
    obj: &Map<String, Value>,
) -> Result<DeviceRequest, ProtocolError> {
    let f = Fields { kind, obj };
    Ok(match kind {
        "photo_request" => DeviceRequest::Photo(PhotoRequest {
            request_id: f.id("requestId")?,
            save_to_gallery: f.flag("saveToGallery", false)?,
            size: f.choice("size", &["small", "medium", "large", "full"], "medium")?,
            compress: f.choice("compress", &["none", "medium", "heavy"], "none")?,
            custom_webhook_url: f.opt_url("customWebhookUrl", &["http://", "https://"])?,
            auth_token: f.opt_text("authToken", MAX_TEXT_LEN)?,
        }),
        "audio_play_request" => DeviceRequest::AudioPlay(AudioPlay {
            request_id: f.id("requestId")?,
            audio_url: f
                .opt_url("audioUrl", &["http://", "https://"])?
                .ok_or_else(|| f.bad("\"audioUrl\" must be an http(s) URL"))?,
            volume: match obj.get("volume") {
                None | Some(Value::Null) => 1.0,
                Some(v) => match v.as_f64() {
                    Some(x) if (0.0..=1.0).contains(&x) => x,
                    _ => return Err(f.bad("\"volume\" must be a number from 0 to 1")),
                },
            },
            stop_other_audio: f.flag("stopOtherAudio", true)?,
            track_id: f.track("trackId")?.unwrap_or(0),
        }),
        "audio_stop_request" => DeviceRequest::AudioStop {
            track_id: f.track("trackId")?,
        },
        "location_poll_request" => DeviceRequest::LocationPoll {
            correlation_id: f.id("correlationId")?,
            accuracy: f
                .opt_text("accuracy", 32)?
                .unwrap_or_else(|| "standard".into()),
        },
        "rgb_led_control" => DeviceRequest::Led(LedControl {
            request_id: f.id("requestId")?,
            action: f.choice("action", &["on", "off"], "on")?,
            color: match f.opt_text("color", 16)? {
                Some(c) if ["red", "green", "blue", "orange", "white"].contains(&c.as_str()) => {
                    Some(c)
                }
                Some(c) => return Err(f.bad(format!("unknown LED color {c:?}"))),
                None => None,
            },
            ontime: f.millis("ontime")?,
            offtime: f.millis("offtime")?,
            count: f.millis("count")?,
        }),
        "request_wifi_setup" => DeviceRequest::WifiSetup {
            reason: f.opt_text("reason", MAX_TEXT_LEN)?,
        },
        "rtmp_stream_request" => DeviceRequest::StreamStart(StreamStart {
            rtmp_url: f
                .opt_url("rtmpUrl", &["rtmp://", "rtmps://"])?
                .ok_or_else(|| f.bad("\"rtmpUrl\" must be an rtmp:// or rtmps:// URL"))?,
            video: f.config("video")?,
            audio: f.config("audio")?,
            stream: f.config("stream")?,
        }),
        "rtmp_stream_stop" => DeviceRequest::StreamStop {
            stream_id: f.opt_text("streamId", MAX_ID_LEN)?,
        },
        "managed_stream_request" => DeviceRequest::ManagedStart,
        "managed_stream_stop" => DeviceRequest::ManagedStop,
        other => return Err(ProtocolError::UnknownType(other.to_string())),
    })
}

/// Field readers for one message, each naming the field in its error.
struct Fields<'a> {
    kind: &'a str,
    obj: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn bad(&self, why: impl std::fmt::Display) -> ProtocolError {
        ProtocolError::invalid(self.kind, why)
    }

    fn id(&self, name: &str) -> Result<String, ProtocolError> {
        match self.obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(s.clone()),
            _ => Err(self.bad(format!(
                "\"{name}\" must be a non-empty string of at most {MAX_ID_LEN} bytes"
            ))),
        }
    }

    fn opt_text(&self, name: &str, max: usize) -> Result<Option<String>, ProtocolError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(self.bad(format!("\"{name}\" is over {max} bytes"))),
            Some(_) => Err(self.bad(format!("\"{name}\" must be a string"))),
        }
    }

    fn opt_url(&self, name: &str, schemes: &[&str]) -> Result<Option<String>, ProtocolError> {
        let Some(url) = self.opt_text(name, MAX_URL_LEN)? else {
            return Ok(None);
        };
        let lower = url.to_ascii_lowercase();
        let host_start = schemes
            .iter()
            .find(|s| lower.starts_with(**s))
            .map(|s| s.len());
        match host_start {
            Some(n) if url.len() > n && !url.chars().any(char::is_whitespace) => Ok(Some(url)),
            _ => Err(self.bad(format!("\"{name}\" must be a {} URL", schemes.join(" or ")))),
        }
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, ProtocolError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(format!("\"{name}\" must be true or false"))),
        }
    }

    fn choice(&self, name: &str, allowed: &[&str], default: &str) -> Result<String, ProtocolError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
            _ => Err(self.bad(format!("\"{name}\" must be one of {}", allowed.join(", ")))),
        }
    }

    fn track(&self, name: &str) -> Result<Option<u8>, ProtocolError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(t @ 0..=2) => Ok(Some(t as u8)),
                _ => Err(self.bad(format!("\"{name}\" must be 0, 1 or 2"))),
            },
        }
    }

    fn millis(&self, name: &str) -> Result<Option<u64>, ProtocolError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= 3_600_000 => Ok(Some(n)),
                _ => Err(self.bad(format!("\"{name}\" must be a whole number up to 3600000"))),
            },
        }
    }

    fn config(&self, name: &str) -> Result<Map<String, Value>, ProtocolError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => {
                if Value::Object(m.clone()).to_string().len() > MAX_CONFIG_LEN {
                    return Err(self.bad(format!("\"{name}\" is over {MAX_CONFIG_LEN} bytes")));
                }
                Ok(m.clone())
            }
            Some(_) => Err(self.bad(format!("\"{name}\" must be an object"))),
        }
    }
}

// ------------------------------------------------------------- answers --

/// An answer from the phone to a device request.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceAnswer {
    /// `audio_play_response`.
    AudioPlayed {
        request_id: String,
        success: bool,
        error: Option<String>,
        duration: Option<f64>,
    },
    /// `photo_response`: older phones report a capture here (usually a
    /// failure; the photo itself goes to the app's upload URL).
    Photo {
        request_id: String,
        success: bool,
        code: Option<String>,
        message: Option<String>,
    },
    /// `location_update` carrying the `correlationId` of a poll.
    LocationFix { correlation_id: String },
    /// `rgb_led_control_response`.
    Led {
        request_id: String,
        success: bool,
        error: Option<String>,
    },
    /// `keep_alive_ack` for a running stream.
    KeepAliveAck { stream_id: String, ack_id: String },
    /// `rtmp_stream_status`.
    StreamStatus {
        stream_id: String,
        status: String,
        error_details: Option<String>,
        stats: Option<Value>,
    },
}

impl DeviceAnswer {
    /// The request this answers, for answers to a waiting request.
    pub fn request(&self) -> Option<(RequestKind, &str)> {
        match self {
            DeviceAnswer::AudioPlayed { request_id, .. } => Some((RequestKind::Audio, request_id)),
            DeviceAnswer::Photo { request_id, .. } => Some((RequestKind::Photo, request_id)),
            DeviceAnswer::LocationFix { correlation_id } => {
                Some((RequestKind::Location, correlation_id))
            }
            DeviceAnswer::Led { request_id, .. } => Some((RequestKind::Led, request_id)),
            DeviceAnswer::KeepAliveAck { .. } | DeviceAnswer::StreamStatus { .. } => None,
        }
    }

    /// The app an answer names (`appId`, else `packageName`), if any.
    pub fn names_app(ev: &Value) -> Option<&str> {
        ev.get("appId")
            .or_else(|| ev.get("packageName"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Whether events of this type may be an answer (cheap, by type only).
    pub fn may_be(kind: &str) -> bool {
        matches!(
            kind,
            "audio_play_response"
                | "photo_response"
                | "location_update"
                | "rgb_led_control_response"
                | "keep_alive_ack"
                | "rtmp_stream_status"
        )
    }

    /// Whether an event of this type is for Sightline only and must not
    /// reach apps as a `data_stream` (the SDK does not know it).
    pub fn is_internal(kind: &str) -> bool {
        matches!(kind, "keep_alive_ack")
    }

    /// The answer an event carries, if it is a well-formed one.
    pub fn from_event(kind: &str, ev: &Value) -> Option<DeviceAnswer> {
        let id = |name: &str| -> Option<String> {
            ev.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN)
                .map(str::to_string)
        };
        let text = |v: Option<&Value>| -> Option<String> {
            v.and_then(Value::as_str)
                .map(|s| s.chars().take(MAX_TEXT_LEN).collect())
        };
        let success = ev.get("success").and_then(Value::as_bool);
        Some(match kind {
            "audio_play_response" => DeviceAnswer::AudioPlayed {
                request_id: id("requestId")?,
                success: success?,
                error: text(ev.get("error")),
                duration: ev.get("duration").and_then(Value::as_f64),
            },
            "photo_response" => {
                let err = ev.get("error");
                DeviceAnswer::Photo {
                    request_id: id("requestId")?,
                    success: success?,
                    code: text(err.and_then(|e| e.get("code")).or(ev.get("errorCode"))),
                    message: text(
                        err.and_then(|e| e.get("message"))
                            .or(ev.get("errorMessage"))
                            .or(err.filter(|e| e.is_string())),
                    ),
                }
            }
            "location_update" => DeviceAnswer::LocationFix {
                correlation_id: id("correlationId")?,
            },
            "rgb_led_control_response" => DeviceAnswer::Led {
                request_id: id("requestId")?,
                success: success?,
                error: text(ev.get("error")),
            },
            "keep_alive_ack" => DeviceAnswer::KeepAliveAck {
                stream_id: id("streamId")?,
                ack_id: id("ackId")?,
            },
            "rtmp_stream_status" => DeviceAnswer::StreamStatus {
                stream_id: id("streamId")?,
                status: id("status")?,
                error_details: text(ev.get("errorDetails")),
                stats: ev.get("stats").filter(|s| s.is_object()).cloned(),
            },
            _ => return None,
        })
    }
}

// -------------------------------------------------- frames to the glasses --

/// `photo_request` to the glasses: take a photo and upload it to
/// `webhook_url` (the app's), or to `upload_url` (Sightline's) with
/// `upload_token` when the phone cannot reach the app.
pub struct GlassesPhoto<'a> {
    pub request: &'a PhotoRequest,
    pub package: &'a str,
    pub webhook_url: &'a str,
    pub auth_token: &'a str,
    pub upload_url: &'a str,
    pub upload_token: &'a str,
}

pub fn glasses_photo_request(p: &GlassesPhoto, timestamp: &str) -> String {
    json!({
        "type": "photo_request",
        "requestId": p.request.request_id,
        "appId": p.package,
        "packageName": p.package,
        "webhookUrl": p.webhook_url,
        "authToken": p.auth_token,
        "uploadUrl": p.upload_url,
        "uploadToken": p.upload_token,
        "size": p.request.size,
        "compress": p.request.compress,
        "saveToGallery": p.request.save_to_gallery,
        "timestamp": timestamp,
    })
    .to_string()
}

pub fn glasses_audio_play(package: &str, a: &AudioPlay, audio_url: &str, ts: &str) -> String {
    json!({
        "type": "audio_play_request",
        "requestId": a.request_id,
        "appId": package,
        "packageName": package,
        "audioUrl": audio_url,
        "volume": a.volume,
        "stopOtherAudio": a.stop_other_audio,
        "trackId": a.track_id,
        "timestamp": ts,
    })
    .to_string()
}

pub fn glasses_audio_stop(package: &str, track_id: Option<u8>, ts: &str) -> String {
    let mut v = json!({"type": "audio_stop_request", "appId": package, "packageName": package, "timestamp": ts});
    if let Some(t) = track_id {
        v["trackId"] = t.into();
    }
    v.to_string()
}

pub fn request_single_location(accuracy: &str, correlation_id: &str, ts: &str) -> String {
    json!({"type": "request_single_location", "accuracy": accuracy, "correlationId": correlation_id, "timestamp": ts})
        .to_string()
}

pub fn set_location_tier(tier: &str, ts: &str) -> String {
    json!({"type": "set_location_tier", "tier": tier, "timestamp": ts}).to_string()
}

pub fn glasses_led(package: &str, led: &LedControl, ts: &str) -> String {
    let mut v = json!({
        "type": "rgb_led_control",
        "requestId": led.request_id,
        "appId": package,
        "packageName": package,
        "action": led.action,
        "timestamp": ts,
    });
    if led.action == "on" {
        v["color"] = led.color.as_deref().unwrap_or("red").into();
        v["ontime"] = led.ontime.unwrap_or(1000).into();
        v["offtime"] = led.offtime.unwrap_or(0).into();
        v["count"] = led.count.unwrap_or(1).into();
    }
    v.to_string()
}

pub fn show_wifi_setup(package: &str, reason: Option<&str>, ts: &str) -> String {
    json!({
        "type": "show_wifi_setup",
        "reason": reason.unwrap_or("An app needs the glasses on Wi-Fi"),
        "appPackageName": package,
        "timestamp": ts,
    })
    .to_string()
}

pub fn start_rtmp_stream(package: &str, stream_id: &str, s: &StreamStart, ts: &str) -> String {
    json!({
        "type": "start_rtmp_stream",
        "rtmpUrl": s.rtmp_url,
        "appId": package,
        "streamId": stream_id,
        "video": s.video,
        "audio": s.audio,
        "stream": s.stream,
        "timestamp": ts,
    })
    .to_string()
}

pub fn stop_rtmp_stream(package: &str, stream_id: &str, ts: &str) -> String {
    json!({"type": "stop_rtmp_stream", "appId": package, "streamId": stream_id, "timestamp": ts})
        .to_string()
}

pub fn keep_rtmp_stream_alive(stream_id: &str, ack_id: &str, ts: &str) -> String {
    json!({"type": "keep_rtmp_stream_alive", "streamId": stream_id, "ackId": ack_id, "timestamp": ts})
        .to_string()
}

// ------------------------------------------------------ frames to apps --

/// `audio_play_response`: the SDK resolves `playAudio()` / `speak()` with
/// `{success, error, duration}`.
pub fn audio_play_response(
    request_id: &str,
    success: bool,
    error: Option<&str>,
    duration: Option<f64>,
    ts: &str,
) -> String {
    let mut v = json!({"type": "audio_play_response", "requestId": request_id, "success": success, "timestamp": ts});
    if let Some(e) = error {
        v["error"] = e.into();
    }
    if let Some(d) = duration {
        v["duration"] = d.into();
    }
    v.to_string()
}

/// `rtmp_stream_status` at the top level, which the SDK's camera module
/// reads (`stopped`, `error` and `timeout` end its "already streaming").
pub fn rtmp_stream_status(
    package: &str,
    stream_id: Option<&str>,
    status: &str,
    error_details: Option<&str>,
    stats: Option<&Value>,
    ts: &str,
) -> String {
    let mut v =
        json!({"type": "rtmp_stream_status", "status": status, "appId": package, "timestamp": ts});
    if let Some(id) = stream_id {
        v["streamId"] = id.into();
    }
    if let Some(e) = error_details {
        v["errorDetails"] = e.into();
    }
    if let Some(s) = stats {
        v["stats"] = s.clone();
    }
    v.to_string()
}

/// `managed_stream_status`; `error` and `stopped` reject a pending
/// `startManagedStream()` with `message`.
pub fn managed_stream_status(status: &str, message: Option<&str>, ts: &str) -> String {
    let mut v = json!({"type": "managed_stream_status", "status": status, "timestamp": ts});
    if let Some(m) = message {
        v["message"] = m.into();
    }
    v.to_string()
}

/// What `stream_status_check_response` says of a running stream.
pub struct RunningStream<'a> {
    pub stream_id: &'a str,
    pub status: &'a str,
    pub rtmp_url: &'a str,
    pub package: &'a str,
    pub created_at: &'a str,
}

pub fn stream_status_check_response(stream: Option<&RunningStream>, ts: &str) -> String {
    match stream {
        None => json!({"type": "stream_status_check_response", "hasActiveStream": false, "timestamp": ts}),
        Some(s) => json!({
            "type": "stream_status_check_response",
            "hasActiveStream": true,
            "streamInfo": {
                "type": "unmanaged",
                "streamId": s.stream_id,
                "status": s.status,
                "createdAt": s.created_at,
                "rtmpUrl": s.rtmp_url,
                "requestingAppId": s.package,
            },
            "timestamp": ts,
        }),
    }
    .to_string()
}

/// The JSON body Sightline POSTs to an app's `/photo-upload` when a photo
/// failed: the SDK rejects `requestPhoto()` with
/// `Photo capture failed: <message> (code: <code>)`.
pub fn photo_error_upload(request_id: &str, code: &str, message: &str) -> Value {
    json!({
        "requestId": request_id,
        "type": "photo_error",
        "success": false,
        "errorCode": code,
        "errorMessage": message,
    })
}

/// The `data` of a `location_update` for one app: the fix with the
/// app's `correlationId` when it answers its poll.
pub fn location_for(fix: &Map<String, Value>, correlation_id: Option<&str>) -> Value {
    let mut data = fix.clone();
    data.insert("type".into(), "location_update".into());
    match correlation_id {
        Some(id) => data.insert("correlationId".into(), id.into()),
        None => data.remove("correlationId"),
    };
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_photo_request_takes_the_sdk_defaults() {
        let r = parse_device_request(
            "photo_request",
            &obj(json!({"requestId": "photo_req_1", "saveToGallery": false})),
        );
        let Ok(DeviceRequest::Photo(p)) = r else {
            panic!("{r:?}")
        };
        assert_eq!((p.size.as_str(), p.compress.as_str()), ("medium", "none"));
        assert!(parse_device_request("photo_request", &obj(json!({}))).is_err());
        assert!(parse_device_request(
            "photo_request",
            &obj(json!({"requestId": "x", "size": "huge"}))
        )
        .is_err());
        assert!(parse_device_request(
            "photo_request",
            &obj(json!({"requestId": "x".repeat(MAX_ID_LEN + 1)}))
        )
        .is_err());
    }

    #[test]
    fn audio_and_stream_urls_are_checked() {
        let ok = parse_device_request(
            "audio_play_request",
            &obj(json!({"requestId": "a", "audioUrl": "https://x/y.mp3", "trackId": 2})),
        );
        assert!(
            matches!(ok, Ok(DeviceRequest::AudioPlay(ref a)) if a.stop_other_audio && a.track_id == 2)
        );
        for bad in [
            json!({"requestId": "a", "audioUrl": "file:///etc/passwd"}),
            json!({"requestId": "a", "audioUrl": "https://x", "volume": 7}),
            json!({"requestId": "a", "audioUrl": "https://x", "trackId": 9}),
        ] {
            assert!(parse_device_request("audio_play_request", &obj(bad)).is_err());
        }
        assert!(parse_device_request(
            "rtmp_stream_request",
            &obj(json!({"rtmpUrl": "http://not-rtmp"}))
        )
        .is_err());
        let big = json!({"rtmpUrl": "rtmp://x/live", "video": {"k": "v".repeat(MAX_CONFIG_LEN)}});
        assert!(parse_device_request("rtmp_stream_request", &obj(big)).is_err());
    }

    #[test]
    fn answers_are_read_in_both_shapes_the_phones_send() {
        let nested = DeviceAnswer::from_event(
            "photo_response",
            &json!({"requestId": "p", "success": false, "error": {"code": "CAMERA_BUSY", "message": "busy"}}),
        );
        let flat = DeviceAnswer::from_event(
            "photo_response",
            &json!({"requestId": "p", "success": false, "errorCode": "CAMERA_BUSY", "errorMessage": "busy"}),
        );
        assert_eq!(nested, flat);
        assert!(DeviceAnswer::from_event("location_update", &json!({"lat": 1.0})).is_none());
        assert!(
            DeviceAnswer::from_event("audio_play_response", &json!({"requestId": "a"})).is_none()
        );
    }

    #[test]
    fn a_poll_answer_carries_only_its_own_correlation_id() {
        let fix = obj(json!({"lat": 1.5, "lng": 2.5, "correlationId": "someone_else"}));
        assert_eq!(location_for(&fix, Some("mine"))["correlationId"], "mine");
        assert!(location_for(&fix, None).get("correlationId").is_none());
    }
}
