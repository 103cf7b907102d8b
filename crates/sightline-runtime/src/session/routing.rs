//! What flows through a session: glasses events and audio out to the apps
//! that subscribed, and app requests (subscriptions, display, dashboard) in.

use std::time::Instant;

use actix::Context;
use bytes::Bytes;
use sightline_protocol::app::AppMessage;
use sightline_protocol::glasses::GlassesEvent;
use sightline_protocol::outbound;
use sightline_protocol::outbound::DataStreamFrame;
use sightline_protocol::stream::StreamKind;

use super::{AppState, UserSession};
use crate::dashboard::DashboardMode;
use crate::link::{close, ConnectionId, Delivery, Outbound};
use crate::now_iso;

impl UserSession {
    /// Sends a glasses event to every connected app with a matching
    /// subscription: one `data_stream` per matching subscription string, with
    /// that string as `streamType` (the SDK matches it exactly). An app whose
    /// connection is away gets it kept in its replay buffer instead; so does
    /// an app whose client stopped reading (its connection is closing 1013,
    /// and it is treated as disconnected from this event on).
    /// The message is serialised once per distinct `streamType` of the
    /// event (see [`DataStreamFrame`]); each app costs only its
    /// `sessionId` and a copy.
    pub(super) fn route_event(
        &mut self,
        ev: &GlassesEvent,
        received: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.route_event_except(ev, received, None, ctx)
    }

    /// [`Self::route_event`] to every app but `except` (which already had
    /// the event, as the answer to its own request).
    pub(super) fn route_event_except(
        &mut self,
        ev: &GlassesEvent,
        received: Instant,
        except: Option<&str>,
        ctx: &mut Context<Self>,
    ) {
        let ts = now_iso();
        let mut dropped = 0;
        let mut overflowed = Vec::new();
        let mut frames: Vec<(String, DataStreamFrame)> = Vec::new();
        for (package, entry) in self.apps.iter_mut() {
            if except == Some(package.as_str()) {
                continue;
            }
            // A restarted app keeps collecting until it has subscribed
            // again, so kept events are never overtaken by new ones.
            let connected = entry.receives_live();
            if !connected && entry.replay.is_none() {
                continue;
            }
            let mut undelivered = Vec::new();
            let mut close_code = close::SLOW_CONSUMER;
            for sub in &entry.subscriptions {
                if !sub.matches_event(&ev.kind, ev.gesture.as_deref()) {
                    continue;
                }
                let stream_type = match sub.kind {
                    StreamKind::All => ev.kind.as_str(),
                    _ => sub.raw.as_str(),
                };
                let i = match frames.iter().position(|(t, _)| t == stream_type) {
                    Some(i) => i,
                    None => {
                        let frame = DataStreamFrame::new(stream_type, ev.json.get(), &ts);
                        frames.push((stream_type.to_string(), frame));
                        frames.len() - 1
                    }
                };
                let text = frames[i].1.for_session(&entry.session_id);
                match (&entry.link, &mut entry.replay) {
                    (Some(link), _) if connected && undelivered.is_empty() => {
                        if let Err((text, why)) = link.send_event(text, received) {
                            if why == Delivery::Gone {
                                close_code = close::GOING_AWAY;
                            }
                            undelivered.push((stream_type.to_string(), text));
                        }
                    }
                    (Some(_), _) if connected => undelivered.push((stream_type.to_string(), text)),
                    (_, Some(replay)) => {
                        self.health.metrics.replay_buffered.inc();
                        dropped += replay.push(stream_type, text)
                    }
                    _ => {}
                }
            }
            if let (false, Some(link)) = (undelivered.is_empty(), &entry.link) {
                overflowed.push((package.clone(), link.id, close_code, undelivered));
            }
        }
        // An app whose client stopped reading, or whose connection has just
        // stopped, is treated as disconnected from here on: what it missed
        // is kept for its reconnect.
        for (package, id, code, undelivered) in overflowed {
            self.app_disconnected(&package, id, Some(code), ctx);
            if let Some(replay) = self.apps.get_mut(&package).and_then(|e| e.replay.as_mut()) {
                for (stream_type, text) in undelivered {
                    self.health.metrics.replay_buffered.inc();
                    dropped += replay.push(&stream_type, text);
                }
            }
        }
        self.count_dropped(dropped);
    }

    /// Relays decoded PCM to apps subscribed to `audio_chunk` and to the
    /// transcription streams.
    pub(super) fn route_audio(&self, data: Bytes) {
        if data.is_empty() {
            return; // the SDK treats an empty binary frame as an error
        }
        self.feed_transcription(&data);
        for entry in self.apps.values() {
            let Some(link) = &entry.link else { continue };
            if entry.state == AppState::Running
                && entry.subscriptions.iter().any(|s| s.needs_audio())
            {
                link.send(Outbound::Binary(data.clone()));
            }
        }
    }

    /// Handles a frame from an app connection, attributed to the package the
    /// socket was bound to.
    pub(super) fn app_message(
        &mut self,
        package: &str,
        id: ConnectionId,
        msg: AppMessage,
        ctx: &mut Context<Self>,
    ) {
        let Some(link) = self.apps.current_link(package, id).cloned() else {
            return; // a superseded socket no longer speaks for the app
        };
        let reply_error = |code: &str, message: &str| {
            link.text(outbound::tpa_connection_error(code, message, &now_iso()));
        };
        match msg {
            AppMessage::SubscriptionUpdate(items) => {
                let had_location = self.wants_location(package);
                let effects = self
                    .apps
                    .subscriptions_changed(Instant::now(), package, id, &items);
                self.carry_out(effects, ctx);
                self.location_subscription_changed(package, had_location, ctx);
            }
            AppMessage::DisplayEvent(req) => self.screen_request(package, req, ctx),
            AppMessage::DashboardContentUpdate { content, modes } => {
                self.dashboard_content(package, content, &modes)
            }
            AppMessage::DashboardModeChange { mode } => {
                if package != self.config.dashboard_package {
                    reply_error(
                        "FORBIDDEN",
                        "dashboard_mode_change is accepted only from the system dashboard",
                    );
                    return;
                }
                match DashboardMode::parse(&mode) {
                    Some(mode) => self.dashboard_mode(mode),
                    None => reply_error(
                        "INVALID_DASHBOARD_MODE",
                        &format!("unknown dashboard mode {mode:?}; expected main or expanded"),
                    ),
                }
            }
            AppMessage::DashboardSystemUpdate { section, content } => {
                if package != self.config.dashboard_package {
                    reply_error(
                        "FORBIDDEN",
                        "dashboard_system_update is accepted only from the system dashboard",
                    );
                    return;
                }
                if !self.dashboard_system(&section, content) {
                    reply_error(
                        "INVALID_DASHBOARD_SECTION",
                        &format!("unknown dashboard section {section:?}; expected topLeft, topRight, bottomLeft or bottomRight"),
                    );
                }
            }
            AppMessage::OwnershipRelease { reason } => {
                tracing::info!(package, reason = %reason, "app released ownership; its next close is deliberate");
                self.apps.ownership_released(package, id);
            }
            AppMessage::StreamStatusCheck => {
                link.text(self.devices.streams().status_check());
            }
            AppMessage::Device(req) => self.device_request(package, req, ctx),
            AppMessage::InvalidRequest {
                kind,
                request_id,
                reason,
            } if kind.starts_with("app_") => {
                self.invalid_messaging_request(package, &kind, request_id.as_deref(), &reason)
            }
            AppMessage::InvalidRequest {
                kind,
                request_id,
                reason,
            } => self.invalid_device_request(package, &kind, request_id.as_deref(), &reason, ctx),
            AppMessage::Messaging(req) => self.messaging_request(package, req, ctx),
            AppMessage::ConnectionInit(_) => reply_error(
                "ALREADY_CONNECTED",
                "this connection is already initialised",
            ),
        }
    }
}
