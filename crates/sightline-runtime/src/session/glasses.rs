//! The glasses side of a user session: connect, reconnect within the grace
//! period, control messages, and what the glasses are told about the session.

use std::time::Instant;

use actix::{AsyncContext, Context};
use serde_json::json;
use sightline_protocol::capabilities::{capabilities_update, device_state_update};
use sightline_protocol::glasses::{GlassesEvent, GlassesMessage};
use sightline_protocol::outbound::{self, SessionSnapshot};
use sightline_protocol::settings::mentraos_settings;
use sightline_protocol::webhook::StopReason;

use super::{AppState, RetireSession, UserSession};
use crate::device::{DeviceChange, GlassesDevice};
use crate::figures::SessionEvent;
use crate::health::ConnectionRole;
use crate::link::{close, ConnectionId, ConnectionLink};
use crate::microphone::{MicAction, MicState};
use crate::now_iso;

impl UserSession {
    pub(super) fn is_current_glasses(&self, id: ConnectionId) -> bool {
        self.glasses.as_ref().is_some_and(|g| g.id == id)
    }

    pub(super) fn glasses_connected(&mut self, link: ConnectionLink, ctx: &mut Context<Self>) {
        let returning = match self.glasses_grace.take() {
            Some(handle) => {
                ctx.cancel_future(handle);
                true
            }
            None => false,
        };
        self.watch(ConnectionRole::Glasses, &link);
        if let Some(old) = self.glasses.replace(link) {
            self.unwatch(old.id);
            tracing::info!(user = %self.user.email, old = %old.id, "glasses connection replaced by a newer one");
            old.close(close::REPLACED, "Replaced by a newer connection");
        }
        tracing::info!(user = %self.user.email, returning, "glasses connected");
        self.probe.set_state("active");
        self.send_connection_ack();
        if !self.ever_connected {
            self.ever_connected = true;
            for package in self.user.running_apps.clone() {
                self.request_start(package, ctx);
            }
        } else if returning {
            self.probe.restarted();
            self.record(SessionEvent::GlassesReconnected);
            self.route_event(&connection_state_event("CONNECTED"), Instant::now(), ctx);
        }
        let effects = self.apps.glasses_connected(Instant::now());
        self.carry_out(effects, ctx);
        if !self.apps.is_empty() {
            // Returning (or replacing) glasses learn which apps run.
            self.send_app_state(None);
        }
        self.screen_restore();
        self.update_mic(true, ctx);
        self.devices_glasses_connected(ctx);
    }

    pub(super) fn glasses_disconnected(&mut self, id: ConnectionId, ctx: &mut Context<Self>) {
        if !self.is_current_glasses(id) {
            return;
        }
        self.glasses = None;
        self.apps.glasses_left();
        let change = self.device.glasses_gone();
        self.tell_apps_about_device(change);
        self.devices_glasses_gone(ctx);
        self.probe.set_state("glasses-away");
        self.unwatch(id);
        self.sync_transcription(true);
        tracing::info!(user = %self.user.email, grace_ms = self.config.glasses_grace.as_millis() as u64, "glasses disconnected; waiting for them to return");
        self.route_event(&connection_state_event("DISCONNECTED"), Instant::now(), ctx);
        let handle = ctx.run_later(self.config.glasses_grace, |act, _| {
            act.glasses_grace = None;
            if act.glasses.is_none() {
                act.supervisor.do_send(RetireSession {
                    user_id: act.user.email.clone(),
                    seq: act.seq,
                });
            }
        });
        self.glasses_grace = Some(handle);
    }

    pub(super) fn glasses_message(
        &mut self,
        msg: GlassesMessage,
        received: Instant,
        ctx: &mut Context<Self>,
    ) {
        match msg {
            GlassesMessage::ConnectionInit { .. } => self.send_connection_ack(),
            GlassesMessage::StartApp { package_name } => self.request_start(package_name, ctx),
            GlassesMessage::StopApp { package_name } => {
                self.stop_app(&package_name, StopReason::UserDisabled, ctx)
            }
            GlassesMessage::RequestSettings => {
                let s = mentraos_settings(&self.user.mentraos_settings);
                self.send_to_glasses(outbound::glasses_settings(self.user_id(), &s, &now_iso()));
            }
            GlassesMessage::SettingsUpdateRequest => {
                let s = mentraos_settings(&self.user.mentraos_settings);
                self.send_to_glasses(outbound::glasses_settings_response(
                    self.user_id(),
                    &s,
                    &now_iso(),
                ));
            }
            GlassesMessage::Event(ev) => {
                self.dashboard_observe(&ev);
                self.observe_device(&ev);
                self.transcription_vad(&ev);
                let (relay, answered) = self.device_answer(&ev, ctx);
                if self.observe_phone(&ev) && relay {
                    self.route_event_except(&ev, received, answered.as_deref(), ctx);
                }
            }
        }
    }

    /// What the phone says about the glasses: a new model changes every
    /// app's `session.capabilities`; a changed state field reaches
    /// `session.device.state`.
    fn observe_device(&mut self, ev: &GlassesEvent) {
        if !GlassesDevice::reports(&ev.kind) {
            return;
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(ev.json.get()) else {
            return;
        };
        let change = self.device.observe(&ev.kind, &event);
        if let Some(model) = &change.model {
            tracing::info!(user = %self.user.email, model = %model, "glasses model reported");
        }
        self.tell_apps_about_device(change);
    }

    fn tell_apps_about_device(&self, change: DeviceChange) {
        if change.is_empty() {
            return;
        }
        let ts = now_iso();
        let capabilities = change
            .model
            .as_ref()
            .map(|m| capabilities_update(&self.device.capabilities(), m, &ts));
        let state =
            (!change.state.is_empty()).then(|| device_state_update(&change.state, false, &ts));
        for app in self.apps.values().filter(|a| a.state == AppState::Running) {
            let Some(link) = &app.link else { continue };
            if let Some(c) = &capabilities {
                link.text(c.clone());
            }
            if let Some(s) = &state {
                link.text(s.clone());
            }
        }
    }

    pub(super) fn send_to_glasses(&self, text: String) {
        if let Some(g) = &self.glasses {
            g.text(text);
        }
    }

    fn send_connection_ack(&self) {
        self.send_to_glasses(outbound::connection_ack(&self.snapshot(), &now_iso()));
    }

    /// Tells the glasses the app states changed, with an error if a start
    /// or a restart failed.
    pub(super) fn send_app_state(&self, error: Option<&str>) {
        self.send_to_glasses(outbound::app_state_change(
            &self.snapshot(),
            error,
            &now_iso(),
        ));
    }

    pub(super) fn snapshot(&self) -> SessionSnapshot {
        let mut snap = SessionSnapshot {
            user_id: self.user.email.clone(),
            start_time: self.started_at.clone(),
            ..SessionSnapshot::default()
        };
        for (pkg, entry) in self.apps.iter() {
            match entry.state {
                AppState::Loading => snap.loading_apps.push(pkg.clone()),
                _ => snap.active_app_sessions.push(pkg.clone()),
            }
            snap.app_subscriptions.insert(
                pkg.clone(),
                entry.subscriptions.iter().map(|s| s.raw.clone()).collect(),
            );
            for s in &entry.subscriptions {
                snap.requires_audio |= s.needs_audio() || s.needs_transcription();
                if let sightline_protocol::stream::StreamKind::Transcription { language } = &s.kind
                {
                    if !snap.minimum_transcription_languages.contains(language) {
                        snap.minimum_transcription_languages.push(language.clone());
                    }
                }
            }
        }
        snap
    }

    /// What the apps' subscriptions want from the microphone now.
    fn wanted_mic(&self) -> MicState {
        let (mut pcm, mut transcription) = (false, false);
        for entry in self.apps.values().filter(|e| e.state != AppState::Loading) {
            for s in &entry.subscriptions {
                pcm |= s.needs_audio();
                transcription |= s.needs_transcription();
            }
        }
        // Sightline transcribes in the cloud, so transcripts need the raw
        // audio too: whatever the apps want, the phone must stream PCM.
        let on = pcm || transcription;
        MicState {
            on,
            required: if on { vec!["pcm"] } else { Vec::new() },
        }
    }

    /// What the apps want from the microphone may have changed: new
    /// transcription streams start now; the glasses are told, and streams
    /// no one wants stop, as the [`MicrophoneGate`] decides (after a
    /// re-subscribe settles). With `force` (glasses connected) the glasses
    /// are told at once.
    pub(super) fn update_mic(&mut self, force: bool, ctx: &mut Context<Self>) {
        let wanted = self.wanted_mic();
        let action = if force {
            self.sync_transcription(true);
            self.mic.force(Instant::now(), wanted)
        } else {
            self.sync_transcription(false);
            self.mic.want(Instant::now(), wanted)
        };
        self.carry_out_mic(action, ctx);
    }

    fn carry_out_mic(&mut self, action: MicAction, ctx: &mut Context<Self>) {
        match action {
            MicAction::Nothing => {}
            MicAction::Wake(at) => {
                let delay = at.saturating_duration_since(Instant::now());
                ctx.run_later(delay, |act, ctx| {
                    let action = act.mic.tick(Instant::now());
                    if !act.mic.settling() {
                        act.sync_transcription(true);
                    }
                    act.carry_out_mic(action, ctx);
                });
            }
            MicAction::Send(state) => {
                let bypass_vad = self
                    .user
                    .mentraos_settings
                    .get("bypassVad")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                self.send_to_glasses(outbound::microphone_state_change(
                    self.user_id(),
                    state.on,
                    &state.required,
                    bypass_vad,
                    &now_iso(),
                ));
            }
        }
    }
}

/// The `glasses_connection_state` event Sightline emits to apps when the
/// glasses drop or return.
fn connection_state_event(status: &str) -> GlassesEvent {
    let v = json!({
        "type": "glasses_connection_state",
        "status": status,
        "modelName": null,
        "timestamp": now_iso(),
    });
    GlassesEvent::synthetic("glasses_connection_state", &v)
}
