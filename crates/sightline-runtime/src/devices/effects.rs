//! What the device request rules decide: the effects the session carries
//! out, how a request ended (for metrics and the log), and the few
//! builders every kind of request shares.

use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_protocol::device::{self as wire, RequestKind};

use super::Pending;

/// How a request ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The glasses answered and did it.
    Ok,
    /// Handed to the glasses; the SDK waits for no answer.
    Forwarded,
    /// The glasses answered that it failed.
    Failed,
    /// Answered from what Sightline already knew (a recent location).
    Cached,
    NotConnected,
    NoCapability,
    NoPermission,
    /// The request's fields were wrong.
    Invalid,
    /// The app already had too many requests waiting.
    Busy,
    /// No answer within Sightline's deadline.
    Timeout,
    /// The glasses went away before answering.
    GlassesGone,
    /// The app stopped before the answer came.
    AppGone,
    /// Not available on this server.
    Unavailable,
    /// A failed photo the app had in fact already received.
    Delivered,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Forwarded => "forwarded",
            Outcome::Failed => "failed",
            Outcome::Cached => "cached",
            Outcome::NotConnected => "not_connected",
            Outcome::NoCapability => "no_capability",
            Outcome::NoPermission => "no_permission",
            Outcome::Invalid => "invalid",
            Outcome::Busy => "busy",
            Outcome::Timeout => "timeout",
            Outcome::GlassesGone => "glasses_gone",
            Outcome::AppGone => "app_gone",
            Outcome::Unavailable => "unavailable",
            Outcome::Delivered => "delivered",
        }
    }
}

/// One settled request, for metrics and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub kind: RequestKind,
    pub package: String,
    pub request_id: String,
    pub outcome: Outcome,
    pub took: Duration,
    /// Why, in words (what the app was told).
    pub reason: String,
}

/// A failed photo, told to the app by a POST to its `/photo-upload`
/// (the only way SDK 2.1.29 rejects `requestPhoto()` early).
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoFailure {
    pub url: String,
    pub body: Value,
    /// How the request is counted once the POST is answered (unless the
    /// app answers that it already had the photo: [`Outcome::Delivered`]).
    pub settled: Settled,
}

/// What the session must do.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEffect {
    /// Send this frame to the glasses.
    ToGlasses(String),
    /// Send this frame to the app.
    ToApp { package: String, text: String },
    /// Send the app a `location_update` `data_stream` with this data.
    LocationToApp { package: String, data: Value },
    /// POST a photo failure to the app's upload route.
    PhotoFailed(PhotoFailure),
    /// Call [`DeviceRequests::tick`] at this instant.
    Wake(Instant),
    /// A request ended (count and log it).
    Settled(Settled),
    /// An answer no request waits for was dropped.
    AnswerDropped {
        kind: RequestKind,
        why: &'static str,
    },
}

pub type DeviceEffects = Vec<DeviceEffect>;

pub(super) fn led_response(
    request_id: &str,
    success: bool,
    error: Option<&str>,
    ts: &str,
) -> String {
    let mut v = serde_json::json!({
        "type": "rgb_led_control_response",
        "requestId": request_id,
        "success": success,
        "timestamp": ts,
    });
    if let Some(e) = error {
        v["error"] = e.into();
    }
    v.to_string()
}

pub(super) fn settled(
    kind: RequestKind,
    package: &str,
    request_id: &str,
    outcome: Outcome,
    took: Duration,
    reason: String,
) -> DeviceEffect {
    DeviceEffect::Settled(Settled {
        kind,
        package: package.into(),
        request_id: request_id.into(),
        outcome,
        took,
        reason,
    })
}

pub(super) fn settled_from(
    p: &Pending,
    now: Instant,
    outcome: Outcome,
    reason: String,
) -> DeviceEffect {
    settled(
        p.kind,
        &p.package,
        &p.request_id,
        outcome,
        now.saturating_duration_since(p.asked),
        reason,
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn photo_failure(
    url: &str,
    kind: RequestKind,
    package: &str,
    request_id: &str,
    code: &str,
    message: &str,
    outcome: Outcome,
    took: Duration,
) -> DeviceEffect {
    DeviceEffect::PhotoFailed(PhotoFailure {
        url: url.into(),
        body: wire::photo_error_upload(request_id, code, message),
        settled: Settled {
            kind,
            package: package.into(),
            request_id: request_id.into(),
            outcome,
            took,
            reason: format!("{message} ({code})"),
        },
    })
}

pub(super) fn dropped(kind: RequestKind, why: &'static str) -> DeviceEffects {
    vec![DeviceEffect::AnswerDropped { kind, why }]
}
