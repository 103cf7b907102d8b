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

mod effects;
mod location;
mod photo;
mod speaker;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sightline_protocol::device::{self as wire, DeviceAnswer, DeviceRequest, RequestKind};
use sightline_protocol::outbound;

use effects::{dropped, led_response, photo_failure, settled, settled_from};
pub use effects::{DeviceEffect, DeviceEffects, Outcome, PhotoFailure, Settled};
pub use location::{tier_of, LocationState};
pub use photo::UploadRefused;
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
            "audio_stop_request" => (RequestKind::Audio, None),
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

    /// Whether the app may have one more request waiting.
    pub(super) fn has_room(&self, package: &str) -> bool {
        self.pending
            .values()
            .filter(|p| p.package == package)
            .count()
            < self.config.max_pending_per_app
    }

    pub(super) fn wait(
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
}

/// A random token (for photo uploads through Sightline).
pub fn fresh_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
