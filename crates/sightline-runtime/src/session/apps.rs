//! The session's side of the app lifecycle: it feeds the [`AppTable`]
//! (`crate::lifecycle`) what happens and carries out the effects it
//! returns — store lookups, webhooks, timers, messages to app sockets, the
//! screen, the glasses' app list and the figures. The rules themselves live
//! in the table.

use std::time::Instant;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use sightline_protocol::capabilities::device_state_update;
use sightline_protocol::outbound;
use sightline_protocol::settings::mentraos_settings;
use sightline_protocol::webhook::{SessionRequest, StopReason, StopRequest};
use sightline_store::AppRecord;

use super::UserSession;
use crate::figures::SessionEvent;
use crate::health::ConnectionRole;
use crate::lifecycle::{AfterStop, Count, Effect, Effects, Timer, WebhookTarget};
use crate::link::{ConnectionId, ConnectionLink, Outbound};
use crate::now_iso;
use crate::webhook::{self, endpoint};

impl UserSession {
    /// Starts an app.
    pub(super) fn request_start(&mut self, package: String, ctx: &mut Context<Self>) {
        let effects = self.apps.start(Instant::now(), &package);
        self.carry_out(effects, ctx);
    }

    /// Stops an app.
    pub(super) fn stop_app(&mut self, package: &str, reason: StopReason, ctx: &mut Context<Self>) {
        let effects = self.apps.stop(Instant::now(), package, reason);
        self.carry_out(effects, ctx);
    }

    /// Binds an authenticated app connection to its app.
    pub(super) fn attach_app(
        &mut self,
        record: AppRecord,
        link: ConnectionLink,
        ctx: &mut Context<Self>,
    ) {
        let effects = self.apps.connected(Instant::now(), record, link);
        self.carry_out(effects, ctx);
    }

    pub(super) fn app_disconnected(
        &mut self,
        package: &str,
        id: ConnectionId,
        code: Option<u16>,
        ctx: &mut Context<Self>,
    ) {
        let effects = self.apps.disconnected(Instant::now(), package, id, code);
        self.carry_out(effects, ctx);
    }

    /// Ends the session now.
    pub(super) fn dispose(&mut self, ctx: &mut Context<Self>) {
        self.probe.set_state("ending");
        let running: Vec<String> = self.apps.iter().map(|(p, _)| p.clone()).collect();
        for package in running {
            self.messaging_app_stopped(&package);
        }
        let effects = self.apps.dispose();
        self.carry_out(effects, ctx);
        if let Some(g) = self.glasses.take() {
            g.close(crate::link::close::GOING_AWAY, "User session ended");
        }
        actix::ActorContext::stop(ctx);
    }

    /// Carries out what the lifecycle decided, in order.
    pub(super) fn carry_out(&mut self, effects: Effects<ConnectionLink>, ctx: &mut Context<Self>) {
        for effect in effects {
            match effect {
                Effect::LookUp { package, intent } => {
                    let store = self.store.clone();
                    let pkg = package.clone();
                    ctx.spawn(
                        async move { store.get_app(&pkg).await.map_err(|e| e.to_string()) }
                            .into_actor(self)
                            .map(move |found, act, ctx| {
                                let effects =
                                    act.apps.looked_up(Instant::now(), &package, intent, found);
                                act.carry_out(effects, ctx);
                            }),
                    );
                }
                Effect::PostSessionRequest {
                    package,
                    generation,
                    target,
                } => self.post_session_request(package, generation, target, ctx),
                Effect::PostStopRequest {
                    package,
                    target,
                    reason,
                    then,
                } => self.post_stop_request(package, target, reason, then, ctx),
                Effect::Arm { at, timer } => self.arm(at, timer, ctx),
                Effect::Persist { package, running } => self.persist_running(&package, running),
                Effect::Accept { package, link } => {
                    self.accept(&package, &link);
                    self.devices_app_connected(&package);
                    self.messaging_app_running(&package, ctx);
                }
                Effect::Reject {
                    link,
                    code,
                    message,
                } => {
                    link.send(Outbound::InitRejected { code, message });
                }
                Effect::Supersede { link } => {
                    link.send(Outbound::Superseded);
                }
                Effect::Send { link, text } => {
                    link.text(text);
                }
                Effect::Close { link, code, reason } => link.close(code, reason),
                Effect::Watch { package, link } => {
                    self.watch(ConnectionRole::App { package }, &link)
                }
                Effect::Unwatch { id } => self.unwatch(id),
                Effect::ScreenStarted {
                    package,
                    name,
                    app_type,
                } => self.screen_app_started(&package, &name, app_type, ctx),
                Effect::ScreenBooted { package } => self.screen_app_booted(&package, ctx),
                Effect::ScreenStopped { package } => {
                    self.screen_app_stopped(&package, ctx);
                    self.devices_app_stopped(&package, ctx);
                    self.messaging_app_stopped(&package);
                }
                Effect::AppStates { error } => self.send_app_state(error.as_deref()),
                Effect::MicrophoneMayChange => self.update_mic(false, ctx),
                Effect::Count(count) => self.count(count),
            }
        }
    }

    fn count(&mut self, count: Count) {
        match count {
            Count::Dropped(n) => self.count_dropped(n),
            Count::Replayed(n) => self.record(SessionEvent::Replayed(n)),
            Count::AppReconnected => self.record(SessionEvent::AppReconnected),
            Count::Resurrected => self.record(SessionEvent::Resurrected),
            Count::StartTook(d) => self.health.metrics.app_start.observe(d.as_secs_f64()),
            Count::SubscriptionsRefused => self.health.metrics.refused("subscriptions"),
        }
    }

    /// Counts events an app will never get.
    pub(super) fn count_dropped(&mut self, n: u64) {
        if n > 0 {
            self.record(SessionEvent::Dropped(n));
        }
    }

    fn arm(&mut self, at: Instant, timer: Timer, ctx: &mut Context<Self>) {
        let delay = at.saturating_duration_since(Instant::now());
        ctx.run_later(delay, move |act, ctx| {
            let effects = act.apps.timer_fired(Instant::now(), &timer);
            act.carry_out(effects, ctx);
        });
    }

    /// `InitAccepted` and the ack, with the user's settings of the app.
    fn accept(&mut self, package: &str, link: &ConnectionLink) {
        let Some(app) = self.apps.get(package) else {
            return;
        };
        let ack = outbound::tpa_connection_ack(
            &app.session_id,
            &serde_json::Value::Array(self.user.settings_for(&app.record)),
            &mentraos_settings(&self.user.mentraos_settings),
            &self.device.capabilities(),
            &now_iso(),
        );
        link.send(Outbound::InitAccepted);
        link.text(ack);
        // What the glasses are like now, so `session.device.state` starts
        // out right.
        let state = self.device.snapshot();
        if !state.is_empty() {
            link.text(device_state_update(state, true, &now_iso()));
        }
    }

    fn post_session_request(
        &mut self,
        package: String,
        generation: u64,
        target: WebhookTarget,
        ctx: &mut Context<Self>,
    ) {
        let body = serde_json::to_value(SessionRequest::new(
            &target.session_id,
            &self.user.email,
            &self.config.public_ws_url,
            now_iso(),
        ))
        .unwrap_or_default();
        let call = self.call_webhook(&target, body);
        ctx.spawn(call.into_actor(self).map(move |res, act, ctx| {
            let res = res.map_err(|e| e.to_string());
            let effects = act
                .apps
                .webhook_answered(Instant::now(), &package, generation, res);
            act.carry_out(effects, ctx);
        }));
    }

    fn post_stop_request(
        &mut self,
        package: String,
        target: WebhookTarget,
        reason: StopReason,
        then: AfterStop,
        ctx: &mut Context<Self>,
    ) {
        let body = serde_json::to_value(StopRequest::new(
            &target.session_id,
            &self.user.email,
            reason,
            now_iso(),
        ))
        .unwrap_or_default();
        let call = self.call_webhook(&target, body);
        ctx.spawn(call.into_actor(self).map(move |res, act, ctx| {
            if let Err(e) = res {
                tracing::info!(package = %package, error = %e, "stop webhook failed (the app is stopped regardless)");
            }
            let effects = act.apps.stop_answered(Instant::now(), &package, &then);
            act.carry_out(effects, ctx);
        }));
    }

    /// One webhook call through the app server's circuit breaker: refused
    /// at once while the breaker is open, and its outcome recorded.
    fn call_webhook(
        &self,
        target: &WebhookTarget,
        body: serde_json::Value,
    ) -> impl std::future::Future<Output = Result<(), webhook::WebhookError>> + 'static {
        let health = self.health.clone();
        let timeout = self.config.webhook_timeout;
        let url = endpoint(&target.public_url, "/webhook");
        let correlation_id = target.correlation_id.clone();
        async move { webhook::post_guarded(&health, &url, &body, timeout, &correlation_id).await }
    }

    fn persist_running(&mut self, package: &str, running: bool) {
        if running {
            if !self.user.running_apps.iter().any(|p| p == package) {
                self.user.running_apps.push(package.to_string());
            }
        } else {
            self.user.running_apps.retain(|p| p != package);
        }
        self.running_writer.set(package, running);
    }
}
