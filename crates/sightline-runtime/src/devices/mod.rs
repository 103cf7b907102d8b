//! Device requests: the rules for every request an app makes of the
//! glasses' hardware, as a plain table that takes the time and an input and
//! returns what to do ([`DeviceEffect`]s), the way the display manager and
//! the app lifecycle are built. The session carries the effects out.
//!
//! One mechanism serves every request that waits for the phone's answer
//! (photo, blocking audio, location poll, LED): a [`Pending`] entry keyed by
//! the app's own id, remembering which app asked and until when. The answer
//! reaches that app only; an answer naming an unknown, settled or foreign
//! request is dropped and counted. Every entry is settled — by its answer,
//! by Sightline's own deadline (shorter than the SDK's timer for that call),
//! or at once when the glasses go or cannot serve it — with the answer the
//! SDK expects for that call, so no app promise waits for the SDK's generic
//! timeout. Location ([`location`]) and video streams ([`stream`]) keep
//! their own state beside it.

mod location;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sightline_protocol::device::{self as wire, DeviceAnswer, DeviceRequest, RequestKind};
use sightline_protocol::outbound;
use sightline_protocol::stream::permission_granted;

pub use location::{tier_of, LocationState};
pub use stream::{StreamTable, StreamView};

/// Deadlines and bounds of device requests.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Photo taken and uploaded (the SDK gives up at 30 s).
    pub photo_deadline: Duration,
    /// Audio played to its end (the SDK gives up at 60 s).
    pub audio_deadline: Duration,
    /// Location poll answered (the SDK gives up at 15 s).
    pub location_deadline: Duration,
    /// LED change confirmed (the SDK does not wait).
    pub led_deadline: Duration,
    /// Requests one app may have waiting at a time.
    pub max_pending_per_app: usize,
    /// Keep-alive period of a running video stream.
    pub keepalive_interval: Duration,
    /// How long the glasses have to acknowledge a keep-alive.
    pub ack_deadline: Duration,
    /// Keep-alives missed in a row before the stream is declared timed out.
    pub max_missed_acks: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            photo_deadline: Duration::from_secs(25),
            audio_deadline: Duration::from_secs(55),
            location_deadline: Duration::from_secs(12),
            led_deadline: Duration::from_secs(5),
            max_pending_per_app: 32,
            keepalive_interval: Duration::from_secs(15),
            ack_deadline: Duration::from_secs(10),
            max_missed_acks: 3,
        }
    }
}

/// The glasses as they are when a request arrives.
#[derive(Debug, Clone, Copy)]
pub struct Readiness<'a> {
    /// The phone is connected to Sightline.
    pub phone: bool,
    /// The phone is connected and says the glasses are connected to it.
    pub glasses: bool,
    /// The model, for the reason given when hardware is missing.
    pub model: &'a str,
    /// The model's capability profile.
    pub capabilities: &'a Value,
    /// Whether the glasses are on Wi-Fi, when the phone said.
    pub wifi_connected: Option<bool>,
}

impl Readiness<'_> {
    fn has(&self, flag: &str) -> bool {
        self.capabilities.get(flag).and_then(Value::as_bool) == Some(true)
    }

    fn can_stream(&self) -> bool {
        self.capabilities
            .pointer("/camera/video/canStream")
            .and_then(Value::as_bool)
            == Some(true)
    }
}

/// The app making a request.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub package: &'a str,
    pub permissions: &'a [String],
    /// The app server's base URL (`/photo-upload` is under it).
    pub public_url: &'a str,
    /// A token the app's SDK accepts as the user's (its "frontend token"),
    /// sent with photos when the app gave none.
    pub user_token: &'a str,
}

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

/// A request waiting for the phone's answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub kind: RequestKind,
    pub package: String,
    pub request_id: String,
    pub asked: Instant,
    pub deadline: Instant,
    /// For photos: where failures go, the Sightline upload token, and
    /// whether the app's promise already resolved (a custom webhook URL).
    photo: Option<PhotoTarget>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhotoTarget {
    /// The app's `/photo-upload` (failures, and photos relayed through
    /// Sightline, go here).
    pub upload_url: String,
    /// The token the glasses show when uploading through Sightline.
    pub upload_token: String,
    /// The token the app checks on an upload.
    pub auth_token: String,
    /// The app chose its own URL: its promise resolved at once and no
    /// failure can reach it.
    pub custom: bool,
}

/// A pending request, for the actor tree.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView {
    pub kind: &'static str,
    pub package: String,
    pub request_id: String,
    pub age_ms: u64,
}

/// Every device request of one session.
#[derive(Debug)]
pub struct DeviceRequests {
    config: DeviceConfig,
    /// Keyed by (kind, the app's request id).
    pending: HashMap<(RequestKind, String), Pending>,
    location: LocationState,
    streams: StreamTable,
    /// `speak()` URLs as the SDK writes them for this server (always
    /// https) and where they really are.
    own_url: Option<(String, String)>,
    /// Where the phone may upload a photo through Sightline (the request
    /// id is appended).
    upload_base: String,
}

impl DeviceRequests {
    pub fn new(config: DeviceConfig) -> Self {
        DeviceRequests {
            streams: StreamTable::new(&config),
            config,
            pending: HashMap::new(),
            location: LocationState::default(),
            own_url: None,
            upload_base: String::new(),
        }
    }

    /// Where this server is: `sdk_prefix` is how the SDK writes URLs of
    /// this server (`https://host`), `real_prefix` where they are reachable,
    /// `upload_base` the route photos may be uploaded to.
    pub fn set_urls(&mut self, sdk_prefix: String, real_prefix: String, upload_base: String) {
        self.own_url = (sdk_prefix != real_prefix).then_some((sdk_prefix, real_prefix));
        self.upload_base = upload_base;
    }

    /// An audio URL the glasses can fetch: one of this server's, written
    /// by the SDK as https, is given its real scheme.
    fn reachable(&self, url: &str) -> String {
        match &self.own_url {
            Some((sdk, real))
                if url.starts_with(sdk.as_str()) && url[sdk.len()..].starts_with('/') =>
            {
                format!("{real}{}", &url[sdk.len()..])
            }
            _ => url.to_string(),
        }
    }

    /// The requests waiting, oldest first.
    pub fn pending(&self, now: Instant) -> Vec<PendingView> {
        let mut v: Vec<&Pending> = self.pending.values().collect();
        v.sort_by_key(|p| p.asked);
        v.into_iter()
            .map(|p| PendingView {
                kind: p.kind.as_str(),
                package: p.package.clone(),
                request_id: p.request_id.clone(),
                age_ms: now.saturating_duration_since(p.asked).as_millis() as u64,
            })
            .collect()
    }

    pub fn streams(&self) -> &StreamTable {
        &self.streams
    }

    pub fn location(&self) -> &LocationState {
        &self.location
    }

    /// An app asks something of the glasses. `stream_id` names a video
    /// stream this request would start.
    pub fn ask(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        req: DeviceRequest,
        stream_id: &str,
    ) -> DeviceEffects {
        let package = app.package.to_string();
        let ts = crate::now_iso();
        match req {
            DeviceRequest::Photo(p) => self.photo(now, app, glasses, p),
            DeviceRequest::AudioPlay(a) => self.audio(now, app, glasses, a),
            DeviceRequest::AudioStop { track_id } => {
                if glasses.phone {
                    vec![DeviceEffect::ToGlasses(wire::glasses_audio_stop(
                        &package, track_id, &ts,
                    ))]
                } else {
                    Vec::new()
                }
            }
            DeviceRequest::LocationPoll {
                correlation_id,
                accuracy,
            } => self.location_poll(now, app, glasses, correlation_id, accuracy),
            DeviceRequest::Led(led) => self.led(now, app, glasses, led),
            DeviceRequest::WifiSetup { reason } => {
                let (outcome, why) = if glasses.phone {
                    (Outcome::Forwarded, "shown on the phone".to_string())
                } else {
                    (Outcome::NotConnected, "the phone is not connected".into())
                };
                let mut fx = Vec::new();
                if glasses.phone {
                    fx.push(DeviceEffect::ToGlasses(wire::show_wifi_setup(
                        &package,
                        reason.as_deref(),
                        &ts,
                    )));
                }
                fx.push(settled(
                    RequestKind::WifiSetup,
                    &package,
                    "",
                    outcome,
                    Duration::ZERO,
                    why,
                ));
                fx
            }
            DeviceRequest::StreamStart(s) => self.streams.start(now, app, glasses, s, stream_id),
            DeviceRequest::StreamStop { stream_id } => {
                self.streams
                    .stop(now, &package, stream_id.as_deref(), glasses.phone)
            }
            DeviceRequest::ManagedStart => {
                let why = "Managed streaming is not available on this Sightline server; start an RTMP stream to your own server with startStream()";
                vec![
                    DeviceEffect::ToApp {
                        package: package.clone(),
                        text: wire::managed_stream_status("error", Some(why), &ts),
                    },
                    settled(
                        RequestKind::ManagedStream,
                        &package,
                        "",
                        Outcome::Unavailable,
                        Duration::ZERO,
                        why.into(),
                    ),
                ]
            }
            DeviceRequest::ManagedStop => vec![DeviceEffect::ToApp {
                package,
                text: wire::managed_stream_status("stopped", None, &ts),
            }],
        }
    }

    /// A device request whose fields were wrong: settled at once with the
    /// answer the SDK expects for its kind.
    pub fn refuse_invalid(
        &mut self,
        app: Asker,
        kind: &str,
        request_id: Option<&str>,
        reason: &str,
    ) -> DeviceEffects {
        let package = app.package;
        let ts = crate::now_iso();
        let id = request_id.unwrap_or_default();
        let (kind, answer) = match kind {
            "photo_request" => (RequestKind::Photo, None),
            "audio_play_request" => (
                RequestKind::Audio,
                request_id.map(|id| wire::audio_play_response(id, false, Some(reason), None, &ts)),
            ),
            "rtmp_stream_request" | "rtmp_stream_stop" => (
                RequestKind::Stream,
                Some(wire::rtmp_stream_status(
                    package,
                    None,
                    if kind == "rtmp_stream_stop" {
                        "stopped"
                    } else {
                        "error"
                    },
                    Some(reason),
                    None,
                    &ts,
                )),
            ),
            "managed_stream_request" | "managed_stream_stop" => (
                RequestKind::ManagedStream,
                Some(wire::managed_stream_status("error", Some(reason), &ts)),
            ),
            "location_poll_request" => (RequestKind::Location, None),
            "rgb_led_control" => (RequestKind::Led, None),
            _ => (RequestKind::WifiSetup, None),
        };
        let mut fx = Vec::new();
        match answer {
            Some(text) => fx.push(DeviceEffect::ToApp {
                package: package.into(),
                text,
            }),
            None if kind == RequestKind::Photo && request_id.is_some() => {
                fx.push(photo_failure(
                    &self.photo_url(app),
                    RequestKind::Photo,
                    package,
                    id,
                    "INVALID_REQUEST",
                    reason,
                    Outcome::Invalid,
                    Duration::ZERO,
                ));
                return fx;
            }
            None => fx.push(DeviceEffect::ToApp {
                package: package.into(),
                text: outbound::tpa_connection_error("INVALID_REQUEST", reason, &ts),
            }),
        }
        fx.push(settled(
            kind,
            package,
            id,
            Outcome::Invalid,
            Duration::ZERO,
            reason.into(),
        ));
        fx
    }

    fn photo_url(&self, app: Asker) -> String {
        crate::webhook::endpoint(app.public_url, "/photo-upload")
    }

    /// Whether the app may have one more request waiting.
    fn has_room(&self, package: &str) -> bool {
        self.pending
            .values()
            .filter(|p| p.package == package)
            .count()
            < self.config.max_pending_per_app
    }

    fn wait(
        &mut self,
        now: Instant,
        kind: RequestKind,
        package: &str,
        request_id: &str,
        deadline: Duration,
        photo: Option<PhotoTarget>,
    ) -> DeviceEffect {
        let deadline = now + deadline;
        self.pending.insert(
            (kind, request_id.to_string()),
            Pending {
                kind,
                package: package.to_string(),
                request_id: request_id.to_string(),
                asked: now,
                deadline,
                photo,
            },
        );
        DeviceEffect::Wake(deadline)
    }

    fn photo(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        p: wire::PhotoRequest,
    ) -> DeviceEffects {
        let package = app.package;
        let custom = p.custom_webhook_url.is_some();
        let upload_url = self.photo_url(app);
        let refusal = if !permission_granted(app.permissions, "CAMERA") {
            Some((
                Outcome::NoPermission,
                "PERMISSION_DENIED",
                "Camera permission required to take photos".to_string(),
            ))
        } else if !glasses.glasses {
            Some((
                Outcome::NotConnected,
                "PHONE_GLASSES_NOT_CONNECTED",
                "Smart glasses are not connected".to_string(),
            ))
        } else if !glasses.has("hasCamera") {
            Some((
                Outcome::NoCapability,
                "NO_CAMERA",
                format!("Connected glasses ({}) have no camera", glasses.model),
            ))
        } else if self
            .pending
            .contains_key(&(RequestKind::Photo, p.request_id.clone()))
        {
            Some((
                Outcome::Invalid,
                "DUPLICATE_REQUEST",
                "A photo with this requestId is already being taken".to_string(),
            ))
        } else if !self.has_room(package) {
            Some((
                Outcome::Busy,
                "TOO_MANY_REQUESTS",
                format!(
                    "This app already has {} device requests waiting",
                    self.config.max_pending_per_app
                ),
            ))
        } else {
            None
        };
        if let Some((outcome, code, message)) = refusal {
            if custom {
                // The SDK resolved this promise already; count it only.
                return vec![settled(
                    RequestKind::Photo,
                    package,
                    &p.request_id,
                    outcome,
                    Duration::ZERO,
                    message,
                )];
            }
            return vec![photo_failure(
                &upload_url,
                RequestKind::Photo,
                package,
                &p.request_id,
                code,
                &message,
                outcome,
                Duration::ZERO,
            )];
        }
        let webhook_url = p.custom_webhook_url.clone().unwrap_or(upload_url.clone());
        let auth_token = p
            .auth_token
            .clone()
            .unwrap_or_else(|| app.user_token.to_string());
        let upload_token = fresh_token();
        let upload_here = format!(
            "{}/{}",
            self.upload_base,
            percent_encoding::utf8_percent_encode(
                &p.request_id,
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let frame = wire::glasses_photo_request(
            &wire::GlassesPhoto {
                request: &p,
                package,
                webhook_url: &webhook_url,
                auth_token: &auth_token,
                upload_url: &upload_here,
                upload_token: &upload_token,
            },
            &crate::now_iso(),
        );
        let target = PhotoTarget {
            upload_url: webhook_url,
            upload_token,
            auth_token,
            custom,
        };
        let wake = self.wait(
            now,
            RequestKind::Photo,
            package,
            &p.request_id,
            self.config.photo_deadline,
            Some(target),
        );
        vec![DeviceEffect::ToGlasses(frame), wake]
    }

    fn audio(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        a: wire::AudioPlay,
    ) -> DeviceEffects {
        let package = app.package;
        let ts = crate::now_iso();
        let refusal = if !glasses.phone {
            Some((
                Outcome::NotConnected,
                "Glasses are not connected".to_string(),
            ))
        } else if a.stop_other_audio
            && self
                .pending
                .contains_key(&(RequestKind::Audio, a.request_id.clone()))
        {
            Some((
                Outcome::Invalid,
                "An audio request with this requestId is already playing".to_string(),
            ))
        } else if a.stop_other_audio && !self.has_room(package) {
            Some((
                Outcome::Busy,
                format!(
                    "This app already has {} device requests waiting",
                    self.config.max_pending_per_app
                ),
            ))
        } else {
            None
        };
        if let Some((outcome, why)) = refusal {
            let mut fx = Vec::new();
            if a.stop_other_audio {
                fx.push(DeviceEffect::ToApp {
                    package: package.into(),
                    text: wire::audio_play_response(&a.request_id, false, Some(&why), None, &ts),
                });
            }
            fx.push(settled(
                RequestKind::Audio,
                package,
                &a.request_id,
                outcome,
                Duration::ZERO,
                why,
            ));
            return fx;
        }
        let url = self.reachable(&a.audio_url);
        let mut fx = vec![DeviceEffect::ToGlasses(wire::glasses_audio_play(
            package, &a, &url, &ts,
        ))];
        if a.stop_other_audio {
            fx.push(self.wait(
                now,
                RequestKind::Audio,
                package,
                &a.request_id,
                self.config.audio_deadline,
                None,
            ));
        } else {
            fx.push(settled(
                RequestKind::Audio,
                package,
                &a.request_id,
                Outcome::Forwarded,
                Duration::ZERO,
                "played without waiting".into(),
            ));
        }
        fx
    }

    fn led(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        led: wire::LedControl,
    ) -> DeviceEffects {
        let package = app.package;
        let ts = crate::now_iso();
        let refusal = if !glasses.glasses {
            Some((
                Outcome::NotConnected,
                "Glasses are not connected".to_string(),
            ))
        } else if !glasses.has("hasLight") {
            Some((
                Outcome::NoCapability,
                format!("Connected glasses ({}) have no LED", glasses.model),
            ))
        } else if self
            .pending
            .contains_key(&(RequestKind::Led, led.request_id.clone()))
            || !self.has_room(package)
        {
            Some((Outcome::Busy, "Too many LED requests waiting".to_string()))
        } else {
            None
        };
        if let Some((outcome, why)) = refusal {
            return vec![
                DeviceEffect::ToApp {
                    package: package.into(),
                    text: led_response(&led.request_id, false, Some(&why), &ts),
                },
                settled(
                    RequestKind::Led,
                    package,
                    &led.request_id,
                    outcome,
                    Duration::ZERO,
                    why,
                ),
            ];
        }
        vec![
            DeviceEffect::ToGlasses(wire::glasses_led(package, &led, &ts)),
            self.wait(
                now,
                RequestKind::Led,
                package,
                &led.request_id,
                self.config.led_deadline,
                None,
            ),
        ]
    }

    /// The phone answered something; `app` is the app the answer names,
    /// when it names one (an answer naming another app than the one that
    /// asked is dropped, and the request keeps waiting).
    pub fn answered(
        &mut self,
        now: Instant,
        answer: DeviceAnswer,
        app: Option<&str>,
    ) -> DeviceEffects {
        if let Some((kind, id)) = answer.request() {
            if let (Some(app), Some(p)) = (app, self.pending.get(&(kind, id.to_string()))) {
                if p.package != app {
                    return dropped(kind, "another_app");
                }
            }
        }
        let ts = crate::now_iso();
        match answer {
            DeviceAnswer::AudioPlayed {
                request_id,
                success,
                error,
                duration,
            } => {
                let Some(p) = self.take(RequestKind::Audio, &request_id) else {
                    return dropped(RequestKind::Audio, "unknown_request");
                };
                let outcome = if success {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                };
                let why = error.clone().unwrap_or_else(|| "played".into());
                vec![
                    DeviceEffect::ToApp {
                        package: p.package.clone(),
                        text: wire::audio_play_response(
                            &request_id,
                            success,
                            error.as_deref(),
                            duration,
                            &ts,
                        ),
                    },
                    settled_from(&p, now, outcome, why),
                ]
            }
            DeviceAnswer::Photo {
                request_id,
                success,
                code,
                message,
            } => {
                let Some(p) = self.take(RequestKind::Photo, &request_id) else {
                    return dropped(RequestKind::Photo, "unknown_request");
                };
                if success {
                    return vec![settled_from(&p, now, Outcome::Ok, "taken".into())];
                }
                let message =
                    message.unwrap_or_else(|| "The glasses could not take the photo".into());
                let code = code.unwrap_or_else(|| "CAPTURE_FAILED".into());
                self.fail_photo(&p, now, &code, &message, Outcome::Failed)
            }
            DeviceAnswer::LocationFix { correlation_id } => {
                // The fix itself is taken by `location_fix`; this settles the poll.
                let Some(p) = self.take(RequestKind::Location, &correlation_id) else {
                    return dropped(RequestKind::Location, "unknown_request");
                };
                vec![settled_from(&p, now, Outcome::Ok, "located".into())]
            }
            DeviceAnswer::Led {
                request_id,
                success,
                error,
            } => {
                let Some(p) = self.take(RequestKind::Led, &request_id) else {
                    return dropped(RequestKind::Led, "unknown_request");
                };
                let outcome = if success {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                };
                vec![
                    DeviceEffect::ToApp {
                        package: p.package.clone(),
                        text: led_response(&request_id, success, error.as_deref(), &ts),
                    },
                    settled_from(&p, now, outcome, error.unwrap_or_else(|| "done".into())),
                ]
            }
            DeviceAnswer::KeepAliveAck { stream_id, ack_id } => {
                self.streams.acked(now, &stream_id, &ack_id)
            }
            DeviceAnswer::StreamStatus {
                stream_id,
                status,
                error_details,
                stats,
            } => self.streams.status(
                now,
                &stream_id,
                &status,
                error_details.as_deref(),
                stats.as_ref(),
            ),
        }
    }

    /// A `location_update` from the phone: the new last fix. Returns the
    /// app whose poll it answers (it gets the fix with its correlation id;
    /// every subscriber gets it as an event).
    pub fn location_fix(
        &mut self,
        now: Instant,
        fix: &Map<String, Value>,
    ) -> (Option<(String, String)>, DeviceEffects) {
        self.location.fixed(now, fix);
        let Some(id) = fix.get("correlationId").and_then(Value::as_str) else {
            return (None, Vec::new());
        };
        let package = self
            .pending
            .get(&(RequestKind::Location, id.to_string()))
            .map(|p| p.package.clone());
        let fx = self.answered(
            now,
            DeviceAnswer::LocationFix {
                correlation_id: id.to_string(),
            },
            None,
        );
        (package.map(|p| (p, id.to_string())), fx)
    }

    fn take(&mut self, kind: RequestKind, id: &str) -> Option<Pending> {
        self.pending.remove(&(kind, id.to_string()))
    }

    fn fail_photo(
        &self,
        p: &Pending,
        now: Instant,
        code: &str,
        message: &str,
        outcome: Outcome,
    ) -> DeviceEffects {
        let took = now.saturating_duration_since(p.asked);
        match &p.photo {
            Some(t) if !t.custom => vec![photo_failure(
                &t.upload_url,
                p.kind,
                &p.package,
                &p.request_id,
                code,
                message,
                outcome,
                took,
            )],
            _ => vec![settled_from(p, now, outcome, message.into())],
        }
    }

    /// Settles `p` without its answer: the failure the SDK expects.
    fn fail(&self, p: &Pending, now: Instant, outcome: Outcome, why: &str) -> DeviceEffects {
        let ts = crate::now_iso();
        match p.kind {
            RequestKind::Photo => {
                let code = match outcome {
                    Outcome::Timeout => "PHONE_TIMEOUT",
                    Outcome::GlassesGone => "PHONE_GLASSES_NOT_CONNECTED",
                    _ => "CANCELLED",
                };
                self.fail_photo(p, now, code, why, outcome)
            }
            RequestKind::Audio => vec![
                DeviceEffect::ToApp {
                    package: p.package.clone(),
                    text: wire::audio_play_response(&p.request_id, false, Some(why), None, &ts),
                },
                settled_from(p, now, outcome, why.into()),
            ],
            RequestKind::Location => {
                let mut fx = self.location.fallback(&p.package, &p.request_id, why);
                fx.push(settled_from(p, now, outcome, why.into()));
                fx
            }
            RequestKind::Led => vec![
                DeviceEffect::ToApp {
                    package: p.package.clone(),
                    text: led_response(&p.request_id, false, Some(why), &ts),
                },
                settled_from(p, now, outcome, why.into()),
            ],
            _ => vec![settled_from(p, now, outcome, why.into())],
        }
    }

    /// Time passed: requests past their deadline fail, streams are kept
    /// alive (or given up).
    pub fn tick(&mut self, now: Instant) -> DeviceEffects {
        let due: Vec<(RequestKind, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut fx = Vec::new();
        for key in due {
            if let Some(p) = self.pending.remove(&key) {
                let why = match p.kind {
                    RequestKind::Photo => format!(
                        "The glasses did not deliver the photo within {} s",
                        self.config.photo_deadline.as_secs()
                    ),
                    RequestKind::Audio => format!(
                        "The glasses did not finish playing within {} s",
                        self.config.audio_deadline.as_secs()
                    ),
                    RequestKind::Location => format!(
                        "The phone did not report a location within {} s",
                        self.config.location_deadline.as_secs()
                    ),
                    _ => "The glasses did not answer in time".to_string(),
                };
                fx.extend(self.fail(&p, now, Outcome::Timeout, &why));
            }
        }
        fx.extend(self.streams.tick(now));
        fx
    }

    /// The phone's connection closed: every waiting request fails now.
    pub fn glasses_gone(&mut self, now: Instant) -> DeviceEffects {
        let mut fx = Vec::new();
        let mut all: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        all.sort_by_key(|p| p.asked);
        for p in all {
            let why = match p.kind {
                RequestKind::Location => "The phone disconnected before reporting a location",
                _ => "Glasses disconnected",
            };
            fx.extend(self.fail(&p, now, Outcome::GlassesGone, why));
        }
        fx.extend(self.streams.glasses_gone(now));
        fx
    }

    /// The app stopped: its requests are dropped (no one to tell), its
    /// audio stopped and its stream ended.
    pub fn app_stopped(&mut self, now: Instant, package: &str, phone: bool) -> DeviceEffects {
        let mut fx = Vec::new();
        let gone: Vec<(RequestKind, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.package == package)
            .map(|(k, _)| k.clone())
            .collect();
        let mut had_audio = false;
        for key in gone {
            if let Some(p) = self.pending.remove(&key) {
                had_audio |= p.kind == RequestKind::Audio;
                fx.push(settled_from(
                    &p,
                    now,
                    Outcome::AppGone,
                    "the app stopped".into(),
                ));
            }
        }
        if had_audio && phone {
            fx.push(DeviceEffect::ToGlasses(wire::glasses_audio_stop(
                package,
                None,
                &crate::now_iso(),
            )));
        }
        fx.extend(self.streams.app_stopped(package, phone));
        fx
    }

    /// A photo the phone uploads through Sightline: if it answers a
    /// waiting request with the right token, the photo's destination is
    /// returned and, with `take`, the request settled (without, it is only
    /// checked, before the photo is read).
    pub fn photo_uploaded(
        &mut self,
        now: Instant,
        request_id: &str,
        token: &str,
        take: bool,
    ) -> Result<(PhotoTarget, Settled), &'static str> {
        let key = (RequestKind::Photo, request_id.to_string());
        let Some(p) = self.pending.get(&key) else {
            return Err("no photo with this requestId is waiting");
        };
        let Some(target) = p.photo.clone() else {
            return Err("no photo with this requestId is waiting");
        };
        let equal: bool =
            subtle::ConstantTimeEq::ct_eq(target.upload_token.as_bytes(), token.as_bytes()).into();
        if !equal {
            return Err("the upload token does not match the request");
        }
        if target.custom {
            return Err("this photo goes to the app's own URL");
        }
        let p = if take {
            self.pending.remove(&key).ok_or("already settled")?
        } else {
            p.clone()
        };
        let s = Settled {
            kind: RequestKind::Photo,
            package: p.package.clone(),
            request_id: p.request_id.clone(),
            outcome: Outcome::Ok,
            took: now.saturating_duration_since(p.asked),
            reason: "uploaded through Sightline".into(),
        };
        Ok((target, s))
    }

    fn location_poll(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        correlation_id: String,
        accuracy: String,
    ) -> DeviceEffects {
        let package = app.package;
        if !permission_granted(app.permissions, "LOCATION") {
            let why = "Location permission required to read the user's location";
            return vec![
                DeviceEffect::ToApp {
                    package: package.into(),
                    text: outbound::permission_error(
                        &[outbound::PermissionDenied {
                            stream: "location_update".into(),
                            required_permission: "LOCATION".into(),
                            message: why.into(),
                        }],
                        &crate::now_iso(),
                    ),
                },
                settled(
                    RequestKind::Location,
                    package,
                    &correlation_id,
                    Outcome::NoPermission,
                    Duration::ZERO,
                    why.into(),
                ),
            ];
        }
        if let Some(data) = self.location.fresh(now, &accuracy, &correlation_id) {
            return vec![
                DeviceEffect::LocationToApp {
                    package: package.into(),
                    data,
                },
                settled(
                    RequestKind::Location,
                    package,
                    &correlation_id,
                    Outcome::Cached,
                    Duration::ZERO,
                    "a recent fix".into(),
                ),
            ];
        }
        let key = (RequestKind::Location, correlation_id.clone());
        if !glasses.phone || self.pending.contains_key(&key) || !self.has_room(package) {
            let (outcome, why) = if glasses.phone {
                (Outcome::Busy, "Too many location polls waiting")
            } else {
                (Outcome::NotConnected, "The phone is not connected")
            };
            let mut fx = self.location.fallback(package, &correlation_id, why);
            fx.push(settled(
                RequestKind::Location,
                package,
                &correlation_id,
                outcome,
                Duration::ZERO,
                why.into(),
            ));
            return fx;
        }
        let tier = tier_of(&accuracy).unwrap_or("standard");
        vec![
            DeviceEffect::ToGlasses(wire::request_single_location(
                tier,
                &correlation_id,
                &crate::now_iso(),
            )),
            self.wait(
                now,
                RequestKind::Location,
                package,
                &correlation_id,
                self.config.location_deadline,
                None,
            ),
        ]
    }

    /// The location tiers the apps' subscriptions want now; the glasses
    /// are told when the highest changes.
    pub fn location_wanted(&mut self, tiers: &[&str], phone: bool) -> DeviceEffects {
        match self.location.want(tiers) {
            Some(tier) if phone => vec![DeviceEffect::ToGlasses(wire::set_location_tier(
                tier,
                &crate::now_iso(),
            ))],
            _ => Vec::new(),
        }
    }

    /// The glasses (re)connected: they learn the location tier again.
    pub fn glasses_connected(&self) -> DeviceEffects {
        match self.location.tier() {
            Some(tier) => vec![DeviceEffect::ToGlasses(wire::set_location_tier(
                tier,
                &crate::now_iso(),
            ))],
            None => Vec::new(),
        }
    }
}

/// A random token (for photo uploads through Sightline).
pub fn fresh_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn led_response(request_id: &str, success: bool, error: Option<&str>, ts: &str) -> String {
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

fn settled(
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

fn settled_from(p: &Pending, now: Instant, outcome: Outcome, reason: String) -> DeviceEffect {
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
fn photo_failure(
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

fn dropped(kind: RequestKind, why: &'static str) -> DeviceEffects {
    vec![DeviceEffect::AnswerDropped { kind, why }]
}
