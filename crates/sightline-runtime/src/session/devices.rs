//! The session's side of device requests: it feeds the
//! [`DeviceRequests`](crate::devices::DeviceRequests) table what apps ask
//! and what the phone answers, and carries out the effects it returns —
//! frames to the glasses and to apps, photo failures POSTed to the app's
//! upload route, timers, metrics and log lines with the request id.

use std::time::Instant;

use actix::{ActorFutureExt, AsyncContext, Context, Message, WrapFuture};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sightline_protocol::device::{DeviceAnswer, DeviceRequest};
use sightline_protocol::glasses::GlassesEvent;
use sightline_protocol::outbound;
use sightline_protocol::stream::StreamKind;

use super::{AppState, UserSession};
use crate::devices::{
    Asker, DeviceEffect, DeviceEffects, Outcome, PhotoTarget, Readiness, Settled, UploadRefused,
};
use crate::now_iso;
use crate::webhook::{self, WebhookError};

impl UserSession {
    /// A device request from an app.
    pub(super) fn device_request(
        &mut self,
        package: &str,
        req: DeviceRequest,
        ctx: &mut Context<Self>,
    ) {
        let Some(app) = self.apps.get(package) else {
            return;
        };
        let record = app.record.clone();
        let token = user_token(&self.user.email, &record.hashed_api_key);
        let asker = Asker {
            package,
            permissions: &record.permissions,
            public_url: &record.public_url,
            user_token: &token,
        };
        let stream_id = crate::devices::fresh_token();
        let now = Instant::now();
        let phone = self.glasses.is_some();
        let capabilities = self.device.capabilities();
        let readiness = Readiness {
            phone,
            glasses: phone && self.device.glasses_connected() != Some(false),
            model: self.device.model(),
            capabilities: &capabilities,
            wifi_connected: self.device.wifi_connected(),
        };
        let effects = self.devices.ask(now, asker, readiness, req, &stream_id);
        self.carry_out_devices(effects, ctx);
    }

    /// A device request whose fields were wrong.
    pub(super) fn invalid_device_request(
        &mut self,
        package: &str,
        kind: &str,
        request_id: Option<&str>,
        reason: &str,
        ctx: &mut Context<Self>,
    ) {
        let Some(app) = self.apps.get(package) else {
            return;
        };
        let record = app.record.clone();
        let asker = Asker {
            package,
            permissions: &record.permissions,
            public_url: &record.public_url,
            user_token: "",
        };
        let effects = self.devices.refuse_invalid(asker, kind, request_id, reason);
        self.carry_out_devices(effects, ctx);
    }

    /// A glasses event that may answer a device request. Returns whether
    /// the event should still reach subscribed apps, and the app that
    /// already got it directly (the poll's asker, the stream's owner).
    pub(super) fn device_answer(
        &mut self,
        ev: &GlassesEvent,
        ctx: &mut Context<Self>,
    ) -> (bool, Option<String>) {
        if !DeviceAnswer::may_be(&ev.kind) {
            return (true, None);
        }
        let relay = !DeviceAnswer::is_internal(&ev.kind);
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(ev.json.get()) else {
            return (relay, None);
        };
        let now = Instant::now();
        if ev.kind == "location_update" {
            let (asker, effects) = self.devices.location_fix(now, &event);
            self.carry_out_devices(effects, ctx);
            let Some((package, correlation_id)) = asker else {
                return (true, None);
            };
            let data = sightline_protocol::device::location_for(&event, Some(&correlation_id));
            self.location_to_app(&package, &data);
            return (true, Some(package));
        }
        // The owner of a stream hears its status top-level, mapped; the raw
        // status reaches only other subscribers.
        let except = (ev.kind == "rtmp_stream_status")
            .then(|| self.devices.streams().view().map(|s| s.package))
            .flatten();
        let event = Value::Object(event);
        let Some(answer) = DeviceAnswer::from_event(&ev.kind, &event) else {
            self.health
                .metrics
                .device_answer_dropped(answer_kind(&ev.kind), "malformed");
            return (relay, None);
        };
        let effects = self
            .devices
            .answered(now, answer, DeviceAnswer::names_app(&event));
        self.carry_out_devices(effects, ctx);
        (relay, except)
    }

    /// The glasses went away: every waiting request fails now.
    pub(super) fn devices_glasses_gone(&mut self, ctx: &mut Context<Self>) {
        let effects = self.devices.glasses_gone(Instant::now());
        self.carry_out_devices(effects, ctx);
    }

    /// The glasses (re)connected.
    pub(super) fn devices_glasses_connected(&mut self, ctx: &mut Context<Self>) {
        let effects = self.devices.glasses_connected();
        self.carry_out_devices(effects, ctx);
    }

    /// An app stopped: its requests go, its stream ends.
    pub(super) fn devices_app_stopped(&mut self, package: &str, ctx: &mut Context<Self>) {
        let phone = self.glasses.is_some();
        let effects = self.devices.app_stopped(Instant::now(), package, phone);
        self.carry_out_devices(effects, ctx);
        self.location_tier_may_change(ctx);
    }

    /// An app's (re)accepted connection hears its running stream again.
    pub(super) fn devices_app_connected(&mut self, package: &str) {
        if let Some(text) = self.devices.streams().status_for(package) {
            self.text_to_app(package, text);
        }
    }

    /// Whether `package` subscribes to location updates.
    pub(super) fn wants_location(&self, package: &str) -> bool {
        self.apps.get(package).is_some_and(|a| {
            a.subscriptions
                .iter()
                .any(|s| matches!(&s.kind, StreamKind::Event(e) if e == "location_update"))
        })
    }

    /// An app's subscriptions changed: a new location subscriber gets the
    /// last fix, and the glasses may need another location tier.
    pub(super) fn location_subscription_changed(
        &mut self,
        package: &str,
        had_location: bool,
        ctx: &mut Context<Self>,
    ) {
        if !had_location && self.wants_location(package) {
            if let Some(fix) = self.devices.location().last_fix() {
                self.location_to_app(package, &fix);
            }
        }
        self.location_tier_may_change(ctx);
    }

    fn location_tier_may_change(&mut self, ctx: &mut Context<Self>) {
        let mut tiers: Vec<&str> = Vec::new();
        for app in self.apps.values().filter(|a| a.state != AppState::Loading) {
            for s in &app.subscriptions {
                if matches!(&s.kind, StreamKind::Event(e) if e == "location_update") {
                    tiers.push(s.rate.as_deref().unwrap_or("standard"));
                }
            }
        }
        let phone = self.glasses.is_some();
        let effects = self.devices.location_wanted(&tiers, phone);
        self.carry_out_devices(effects, ctx);
    }

    pub(super) fn text_to_app(&self, package: &str, text: String) {
        match self.apps.get(package).and_then(|a| a.link.as_ref()) {
            Some(link) => {
                link.text(text);
            }
            None => tracing::debug!(
                package,
                "device answer for an app that is not connected; dropped"
            ),
        }
    }

    fn location_to_app(&self, package: &str, data: &Value) {
        let Some(app) = self.apps.get(package) else {
            return;
        };
        let Ok(raw) = serde_json::value::to_raw_value(data) else {
            return;
        };
        let text = outbound::data_stream(&app.session_id, "location_update", &raw, &now_iso());
        self.text_to_app(package, text);
    }

    fn settle(&self, s: &Settled) {
        self.health
            .metrics
            .device_settled(s.kind.as_str(), s.outcome.as_str(), s.took);
        let ms = s.took.as_millis() as u64;
        match s.outcome {
            Outcome::Ok | Outcome::Forwarded | Outcome::Cached | Outcome::Delivered => {
                tracing::info!(package = %s.package, kind = s.kind.as_str(), request_id = %s.request_id, outcome = s.outcome.as_str(), took_ms = ms, "device request settled")
            }
            _ => {
                tracing::warn!(package = %s.package, kind = s.kind.as_str(), request_id = %s.request_id, outcome = s.outcome.as_str(), took_ms = ms, reason = %s.reason, "device request failed")
            }
        }
    }

    /// Carries out what the device table decided, in order.
    pub(super) fn carry_out_devices(&mut self, effects: DeviceEffects, ctx: &mut Context<Self>) {
        for effect in effects {
            match effect {
                DeviceEffect::ToGlasses(text) => self.send_to_glasses(text),
                DeviceEffect::ToApp { package, text } => self.text_to_app(&package, text),
                DeviceEffect::LocationToApp { package, data } => {
                    self.location_to_app(&package, &data)
                }
                DeviceEffect::Wake(at) => {
                    let delay = at.saturating_duration_since(Instant::now());
                    ctx.run_later(delay, |act, ctx| {
                        let effects = act.devices.tick(Instant::now());
                        act.carry_out_devices(effects, ctx);
                    });
                }
                DeviceEffect::Settled(s) => self.settle(&s),
                DeviceEffect::AnswerDropped { kind, why } => {
                    tracing::debug!(
                        kind = kind.as_str(),
                        why,
                        "answer from the phone dropped: no request waits for it"
                    );
                    self.health
                        .metrics
                        .device_answer_dropped(kind.as_str(), why);
                }
                DeviceEffect::PhotoFailed(failure) => {
                    let health = self.health.clone();
                    let timeout = self.config.webhook_timeout;
                    let url = failure.url.clone();
                    let body = failure.body.clone();
                    let id = failure.settled.request_id.clone();
                    ctx.spawn(
                        async move {
                            webhook::post_guarded(&health, &url, &body, timeout, &id).await
                        }
                        .into_actor(self)
                        .map(move |res, act, _| {
                            let mut settled = failure.settled;
                            match res {
                                Ok(()) => {}
                                // The SDK no longer waits for this photo:
                                // the glasses delivered it straight to the app.
                                Err(WebhookError::Status { status: 404, .. })
                                    if settled.outcome == Outcome::Timeout =>
                                {
                                    settled.outcome = Outcome::Delivered;
                                }
                                Err(e) => {
                                    tracing::warn!(package = %settled.package, request_id = %settled.request_id, error = %e, "could not tell the app its photo failed");
                                }
                            }
                            act.settle(&settled);
                        }),
                    );
                }
            }
        }
    }
}

/// A token the app's SDK accepts as the user's: `<user>:<sha256(user +
/// sha256(api key))>`, the SDK's "frontend token" (Sightline stores the
/// API key's hash, which is all it takes).
pub(super) fn user_token(user: &str, hashed_api_key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(user.as_bytes())
        .chain_update(hashed_api_key.as_bytes())
        .finalize();
    format!("{user}:{}", hex::encode(digest))
}

fn answer_kind(kind: &str) -> &'static str {
    use sightline_protocol::device::RequestKind;
    match kind {
        "audio_play_response" => RequestKind::Audio,
        "photo_response" => RequestKind::Photo,
        "rgb_led_control_response" => RequestKind::Led,
        "location_update" => RequestKind::Location,
        _ => RequestKind::Stream,
    }
    .as_str()
}

/// A photo the phone uploads through Sightline, asking where it goes: the
/// session settles the waiting request if the token matches.
#[derive(Message)]
#[rtype(result = "Result<PhotoDestination, UploadRefused>")]
pub struct PhotoUploaded {
    pub request_id: String,
    pub token: String,
    /// Settle the request (the photo has been read); without, only check.
    pub take: bool,
}

/// Where a photo uploaded through Sightline is delivered.
#[derive(Debug, Clone)]
pub struct PhotoDestination {
    pub package: String,
    pub upload_url: String,
    pub auth_token: String,
}

impl actix::Handler<PhotoUploaded> for UserSession {
    type Result = Result<PhotoDestination, UploadRefused>;
    fn handle(&mut self, msg: PhotoUploaded, _: &mut Context<Self>) -> Self::Result {
        match self
            .devices
            .photo_uploaded(Instant::now(), &msg.request_id, &msg.token, msg.take)
        {
            Ok((
                PhotoTarget {
                    upload_url,
                    auth_token,
                    ..
                },
                settled,
            )) => {
                if msg.take {
                    self.settle(&settled);
                }
                Ok(PhotoDestination {
                    package: settled.package,
                    upload_url,
                    auth_token,
                })
            }
            Err(why) => {
                self.health
                    .metrics
                    .device_answer_dropped("photo", "unknown_upload");
                Err(why)
            }
        }
    }
}
