//! What flows through a session: glasses events and audio out to the apps
//! that subscribed, and app requests (subscriptions, display, dashboard) in.

use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use sightline_protocol::app::{AppMessage, DisplayRequest};
use sightline_protocol::glasses::GlassesEvent;
use sightline_protocol::outbound;
use sightline_protocol::outbound::PermissionDenied;
use sightline_protocol::stream::{parse_list, permission_granted, StreamKind};

use super::{AppState, UserSession};
use crate::link::{ConnectionId, Outbound};
use crate::now_iso;

impl UserSession {
    /// Sends a glasses event to every connected app with a matching
    /// subscription: one `data_stream` per matching subscription string, with
    /// that string as `streamType` (the SDK matches it exactly).
    pub(super) fn route_event(&self, ev: &GlassesEvent) {
        let ts = now_iso();
        for entry in self.apps.values() {
            let Some(link) = &entry.link else { continue };
            if entry.state != AppState::Running {
                continue;
            }
            for sub in &entry.subscriptions {
                if sub.matches_event(&ev.kind, ev.gesture.as_deref()) {
                    let stream_type = match sub.kind {
                        StreamKind::All => ev.kind.as_str(),
                        _ => sub.raw.as_str(),
                    };
                    link.text(outbound::data_stream(
                        &entry.session_id,
                        stream_type,
                        &ev.json,
                        &ts,
                    ));
                }
            }
        }
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
    pub(super) fn app_message(&mut self, package: &str, id: ConnectionId, msg: AppMessage) {
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        let Some(link) = entry.link.clone().filter(|l| l.id == id) else {
            return; // a superseded socket no longer speaks for the app
        };
        let reply_error = |code: &str, message: &str| {
            link.text(outbound::tpa_connection_error(code, message, &now_iso()));
        };
        match msg {
            AppMessage::SubscriptionUpdate(items) => {
                let guard = self.config.empty_subscription_guard;
                let fresh = entry
                    .connected_at
                    .is_some_and(|t| Instant::now().duration_since(t) < guard);
                if items.is_empty() && fresh && !entry.subscriptions.is_empty() {
                    tracing::debug!(
                        package,
                        "empty subscription update right after reconnect ignored"
                    );
                    return;
                }
                let (allowed, denied): (Vec<_>, Vec<_>) =
                    parse_list(&items).into_iter().partition(|sub| {
                        sub.required_permission()
                            .is_none_or(|p| permission_granted(&entry.record.permissions, p))
                    });
                if !denied.is_empty() {
                    let details: Vec<PermissionDenied> = denied
                        .iter()
                        .filter_map(|sub| {
                            let need = sub.required_permission()?;
                            Some(PermissionDenied {
                                stream: sub.raw.clone(),
                                required_permission: need.to_string(),
                                message: format!("{} needs the {need} permission", sub.raw),
                            })
                        })
                        .collect();
                    tracing::info!(package, denied = ?details.iter().map(|d| &d.stream).collect::<Vec<_>>(), "subscriptions refused for missing permissions");
                    link.text(outbound::permission_error(&details, &now_iso()));
                }
                entry.subscriptions = allowed;
                tracing::debug!(package, subscriptions = ?entry.subscriptions.iter().map(|s| &s.raw).collect::<Vec<_>>(), "subscriptions replaced");
                self.send_app_state(None);
                self.update_mic(false);
            }
            AppMessage::DisplayEvent(req) => self.show(package, &req),
            AppMessage::DashboardContentUpdate { .. } => {
                // Accepted so SDK apps see no error; the dashboard that
                // would render it is not built yet (nothing is shown).
            }
            AppMessage::DashboardModeChange { mode } => {
                if package != self.config.dashboard_package {
                    reply_error(
                        "FORBIDDEN",
                        "dashboard_mode_change is accepted only from the system dashboard",
                    );
                    return;
                }
                let ts = now_iso();
                for e in self.apps.values() {
                    if let Some(l) = &e.link {
                        l.text(outbound::dashboard_mode_changed(&mode, &e.session_id, &ts));
                    }
                }
            }
            AppMessage::DashboardSystemUpdate { .. } => {
                if package != self.config.dashboard_package {
                    reply_error(
                        "FORBIDDEN",
                        "dashboard_system_update is accepted only from the system dashboard",
                    );
                }
            }
            AppMessage::OwnershipRelease { reason } => {
                tracing::info!(package, reason = %reason, "app released ownership; its next close is deliberate");
                entry.ownership_released = true;
            }
            AppMessage::StreamStatusCheck => {
                link.text(outbound::stream_status_check_response(&now_iso()));
            }
            AppMessage::Unsupported { kind } => reply_error(
                "UNSUPPORTED",
                &format!("{kind} is not supported by this Sightline server"),
            ),
            AppMessage::ConnectionInit(_) => reply_error(
                "ALREADY_CONNECTED",
                "this connection is already initialised",
            ),
        }
    }

    /// Puts an app's display request on the glasses.
    fn show(&mut self, package: &str, req: &DisplayRequest) {
        let text = outbound::display_event(package, req, &now_iso());
        if req.view == "main" {
            self.display = Some((text.clone(), package.to_string()));
        }
        self.send_to_glasses(text);
    }

    /// Forgets what a stopped app put on the screen, clearing it if it is
    /// still showing.
    pub(super) fn forget_display_of(&mut self, package: &str) {
        if self
            .display
            .as_ref()
            .is_some_and(|(_, owner)| owner == package)
        {
            self.display = None;
            let clear = json!({
                "type": "display_event",
                "packageName": self.config.dashboard_package,
                "view": "main",
                "layout": {"layoutType": "text_wall", "text": ""},
                "durationMs": 0,
                "timestamp": now_iso(),
            });
            self.send_to_glasses(clear.to_string());
        }
    }
}
