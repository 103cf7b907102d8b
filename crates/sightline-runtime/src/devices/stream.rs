//! Unmanaged RTMP streaming from the glasses' camera: at most one stream
//! per glasses, owned by the app that started it; kept alive with
//! `keep_rtmp_stream_alive` / `keep_alive_ack`; ended by its app, its
//! app stopping, the glasses going, or missed keep-alives. Every stream
//! ends with a top-level `rtmp_stream_status` `stopped`, `error` or
//! `timeout` to its app — the only thing that clears the SDK's "already
//! streaming" — whether or not the glasses confirm.

use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_protocol::device::{self as wire, RequestKind, StreamStart};
use sightline_protocol::stream::permission_granted;

use super::{settled, Asker, DeviceConfig, DeviceEffect, DeviceEffects, Outcome, Readiness};

#[derive(Debug)]
struct Stream {
    id: String,
    package: String,
    rtmp_url: String,
    /// The status the app was last told (`initializing`, `active`, `stopping`).
    status: &'static str,
    created_at: String,
    started: Instant,
    /// The keep-alive waiting for its acknowledgement, and until when.
    awaiting: Option<(String, Instant)>,
    missed: u32,
    next_keepalive: Instant,
    sent: u64,
}

/// The running stream, for the actor tree and `stream_status_check`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    pub stream_id: String,
    pub package: String,
    pub status: &'static str,
    pub rtmp_url: String,
    pub created_at: String,
    pub missed_keepalives: u32,
}

#[derive(Debug)]
pub struct StreamTable {
    interval: Duration,
    ack_deadline: Duration,
    max_missed: u32,
    current: Option<Stream>,
}

impl StreamTable {
    pub(super) fn new(config: &DeviceConfig) -> Self {
        StreamTable {
            interval: config.keepalive_interval,
            ack_deadline: config.ack_deadline,
            max_missed: config.max_missed_acks,
            current: None,
        }
    }

    /// The running stream, if any.
    pub fn view(&self) -> Option<StreamView> {
        self.current.as_ref().map(|s| StreamView {
            stream_id: s.id.clone(),
            package: s.package.clone(),
            status: s.status,
            rtmp_url: s.rtmp_url.clone(),
            created_at: s.created_at.clone(),
            missed_keepalives: s.missed,
        })
    }

    /// `stream_status_check_response` for an app.
    pub fn status_check(&self) -> String {
        let ts = crate::now_iso();
        match &self.current {
            Some(s) => wire::stream_status_check_response(
                Some(&wire::RunningStream {
                    stream_id: &s.id,
                    status: s.status,
                    rtmp_url: &s.rtmp_url,
                    package: &s.package,
                    created_at: &s.created_at,
                }),
                &ts,
            ),
            None => wire::stream_status_check_response(None, &ts),
        }
    }

    pub(super) fn start(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        req: StreamStart,
        stream_id: &str,
    ) -> DeviceEffects {
        let package = app.package;
        let refusal = if !permission_granted(app.permissions, "CAMERA") {
            Some((
                Outcome::NoPermission,
                "Camera permission required to start video streams".to_string(),
            ))
        } else if !glasses.glasses {
            Some((
                Outcome::NotConnected,
                "Cannot process stream request - smart glasses are not connected".to_string(),
            ))
        } else if !glasses.can_stream() {
            Some((
                Outcome::NoCapability,
                format!("Connected glasses ({}) cannot stream video", glasses.model),
            ))
        } else if glasses.has("hasWifi") && glasses.wifi_connected == Some(false) {
            Some((
                Outcome::NotConnected,
                "Cannot process request - smart glasses must be connected to WiFi for this operation"
                    .to_string(),
            ))
        } else {
            // One stream per glasses: another app's running stream wins.
            self.current
                .as_ref()
                .filter(|s| s.package != package)
                .map(|other| {
                    (
                        Outcome::Busy,
                        format!(
                            "Another app ({}) is streaming from these glasses; only one stream can run at a time",
                            other.package
                        ),
                    )
                })
        };
        let ts = crate::now_iso();
        if let Some((outcome, why)) = refusal {
            return vec![
                DeviceEffect::ToApp {
                    package: package.into(),
                    text: wire::rtmp_stream_status(package, None, "error", Some(&why), None, &ts),
                },
                settled(
                    RequestKind::Stream,
                    package,
                    "",
                    outcome,
                    Duration::ZERO,
                    why,
                ),
            ];
        }
        let mut fx = Vec::new();
        // The same app starting again (its SDK thought the last one over):
        // the old stream ends first.
        if let Some(old) = self.current.take() {
            fx.extend(end(
                &old,
                now,
                "stopped",
                Some("Replaced by a new stream"),
                true,
            ));
        }
        let stream = Stream {
            id: stream_id.to_string(),
            package: package.to_string(),
            rtmp_url: req.rtmp_url.clone(),
            status: "initializing",
            created_at: ts.clone(),
            started: now,
            awaiting: None,
            missed: 0,
            next_keepalive: now + self.interval,
            sent: 0,
        };
        fx.push(DeviceEffect::ToGlasses(wire::start_rtmp_stream(
            package, stream_id, &req, &ts,
        )));
        fx.push(DeviceEffect::ToApp {
            package: package.into(),
            text: wire::rtmp_stream_status(
                package,
                Some(stream_id),
                "initializing",
                None,
                None,
                &ts,
            ),
        });
        fx.push(DeviceEffect::Wake(stream.next_keepalive));
        self.current = Some(stream);
        fx
    }

    pub(super) fn stop(
        &mut self,
        now: Instant,
        package: &str,
        stream_id: Option<&str>,
        phone: bool,
    ) -> DeviceEffects {
        let owned = self
            .current
            .as_ref()
            .is_some_and(|s| s.package == package && stream_id.is_none_or(|id| id == s.id));
        if owned {
            if let Some(s) = self.current.take() {
                return end(&s, now, "stopped", None, phone);
            }
        }
        if let Some(s) = &self.current {
            if s.package != package {
                tracing::info!(package, owner = %s.package, stream_id = %s.id, "an app asked to stop a stream another app owns; left running");
            }
        }
        // Nothing of this app's runs: it hears `stopped` all the same, so
        // its SDK stops believing it streams.
        vec![DeviceEffect::ToApp {
            package: package.into(),
            text: wire::rtmp_stream_status(
                package,
                stream_id,
                "stopped",
                None,
                None,
                &crate::now_iso(),
            ),
        }]
    }

    /// A status from the glasses, mapped to what apps understand.
    pub(super) fn status(
        &mut self,
        now: Instant,
        stream_id: &str,
        status: &str,
        details: Option<&str>,
        stats: Option<&Value>,
    ) -> DeviceEffects {
        let Some(s) = self.current.as_mut().filter(|s| s.id == stream_id) else {
            return vec![DeviceEffect::AnswerDropped {
                kind: RequestKind::Stream,
                why: "unknown_stream",
            }];
        };
        // Any word from the glasses about the stream shows they are there.
        s.missed = 0;
        let (mapped, ends) = match status {
            "initializing" | "connecting" | "reconnecting" => ("initializing", false),
            "active" | "streaming" | "reconnected" => ("active", false),
            "stopping" => ("stopping", false),
            "stopped" | "disconnected" => ("stopped", true),
            "error" | "reconnect_failed" => ("error", true),
            "timeout" => ("timeout", true),
            _ => {
                return vec![DeviceEffect::AnswerDropped {
                    kind: RequestKind::Stream,
                    why: "unknown_status",
                }]
            }
        };
        if ends {
            let details = details.or(match status {
                "reconnect_failed" => Some("The glasses could not reconnect to the RTMP server"),
                "disconnected" => Some("The RTMP server connection closed"),
                _ => None,
            });
            let Some(s) = self.current.take() else {
                return Vec::new();
            };
            let mut fx = vec![DeviceEffect::ToApp {
                package: s.package.clone(),
                text: wire::rtmp_stream_status(
                    &s.package,
                    Some(&s.id),
                    mapped,
                    details,
                    stats,
                    &crate::now_iso(),
                ),
            }];
            let outcome = if mapped == "stopped" {
                Outcome::Ok
            } else {
                Outcome::Failed
            };
            fx.push(settled(
                RequestKind::Stream,
                &s.package,
                &s.id,
                outcome,
                now.saturating_duration_since(s.started),
                details.unwrap_or(mapped).to_string(),
            ));
            return fx;
        }
        s.status = mapped;
        vec![DeviceEffect::ToApp {
            package: s.package.clone(),
            text: wire::rtmp_stream_status(
                &s.package,
                Some(&s.id),
                mapped,
                details,
                stats,
                &crate::now_iso(),
            ),
        }]
    }

    pub(super) fn acked(&mut self, _now: Instant, stream_id: &str, ack_id: &str) -> DeviceEffects {
        match self.current.as_mut() {
            Some(s)
                if s.id == stream_id && s.awaiting.as_ref().is_some_and(|(a, _)| a == ack_id) =>
            {
                s.awaiting = None;
                s.missed = 0;
                Vec::new()
            }
            _ => vec![DeviceEffect::AnswerDropped {
                kind: RequestKind::Stream,
                why: "unknown_keepalive",
            }],
        }
    }

    pub(super) fn tick(&mut self, now: Instant) -> DeviceEffects {
        let Some(s) = self.current.as_mut() else {
            return Vec::new();
        };
        if let Some((_, deadline)) = &s.awaiting {
            if *deadline <= now {
                s.awaiting = None;
                s.missed += 1;
            }
        }
        if s.missed >= self.max_missed {
            let why = format!(
                "The glasses missed {} keep-alives in a row; the stream is considered lost",
                s.missed
            );
            let Some(s) = self.current.take() else {
                return Vec::new();
            };
            return end(&s, now, "timeout", Some(&why), true);
        }
        let mut fx = Vec::new();
        if s.next_keepalive <= now {
            s.sent += 1;
            let ack_id = format!("{}-{}", s.id, s.sent);
            fx.push(DeviceEffect::ToGlasses(wire::keep_rtmp_stream_alive(
                &s.id,
                &ack_id,
                &crate::now_iso(),
            )));
            s.awaiting = Some((ack_id, now + self.ack_deadline));
            s.next_keepalive = now + self.interval;
        }
        let next = match &s.awaiting {
            Some((_, d)) => (*d).min(s.next_keepalive),
            None => s.next_keepalive,
        };
        fx.push(DeviceEffect::Wake(next));
        fx
    }

    pub(super) fn glasses_gone(&mut self, now: Instant) -> DeviceEffects {
        match self.current.take() {
            Some(s) => end(&s, now, "stopped", Some("Glasses disconnected"), false),
            None => Vec::new(),
        }
    }

    pub(super) fn app_stopped(&mut self, package: &str, phone: bool) -> DeviceEffects {
        match self.current.take() {
            Some(s) if s.package == package => {
                let mut fx = Vec::new();
                if phone {
                    fx.push(DeviceEffect::ToGlasses(wire::stop_rtmp_stream(
                        &s.package,
                        &s.id,
                        &crate::now_iso(),
                    )));
                }
                fx.push(settled(
                    RequestKind::Stream,
                    &s.package,
                    &s.id,
                    Outcome::AppGone,
                    Duration::ZERO,
                    "the app stopped".into(),
                ));
                fx
            }
            other => {
                self.current = other;
                Vec::new()
            }
        }
    }

    /// The status an app that reconnected should hear again.
    pub fn status_for(&self, package: &str) -> Option<String> {
        let s = self.current.as_ref().filter(|s| s.package == package)?;
        Some(wire::rtmp_stream_status(
            package,
            Some(&s.id),
            s.status,
            None,
            None,
            &crate::now_iso(),
        ))
    }
}

/// Ends a stream: the glasses are told to stop (when they are there) and
/// its app hears the final status.
fn end(
    s: &Stream,
    now: Instant,
    status: &str,
    details: Option<&str>,
    phone: bool,
) -> DeviceEffects {
    let ts = crate::now_iso();
    let mut fx = Vec::new();
    if phone {
        fx.push(DeviceEffect::ToGlasses(wire::stop_rtmp_stream(
            &s.package, &s.id, &ts,
        )));
    }
    fx.push(DeviceEffect::ToApp {
        package: s.package.clone(),
        text: wire::rtmp_stream_status(&s.package, Some(&s.id), status, details, None, &ts),
    });
    let outcome = match status {
        "stopped" => Outcome::Ok,
        "timeout" => Outcome::Timeout,
        _ => Outcome::Failed,
    };
    let outcome = if details == Some("Glasses disconnected") {
        Outcome::GlassesGone
    } else {
        outcome
    };
    fx.push(settled(
        RequestKind::Stream,
        &s.package,
        &s.id,
        outcome,
        now.saturating_duration_since(s.started),
        details.unwrap_or(status).to_string(),
    ));
    fx
}
