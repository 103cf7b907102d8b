//! App lifecycle inside a user session: start, connect, reconnect, stop.
//!
//! ```text
//!  start_app ──► Loading ──tpa_connection_init──► Running ──stop_app──► (gone)
//!                  │  ▲ webhook retried with backoff   │ socket lost
//!                  │  └────────── resurrect ◄──────────┤
//!     5 s timeout ─┘                     Reconnecting ◄┘ (grace: SDK retries)
//!                                         │ glasses away when grace ends
//!                                         ▼
//!                                       Dormant ── glasses return ──► resurrect
//! ```
//!
//! Every transition takes a new *generation* number; timers and webhook
//! results carry the generation they were started for and do nothing if the
//! app has moved on meanwhile.

use std::time::{Duration, Instant};

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use sightline_protocol::outbound;
use sightline_protocol::session_id::app_session_id;
use sightline_protocol::settings::{g1_capabilities, mentraos_settings};
use sightline_protocol::stream::Subscription;
use sightline_protocol::webhook::{SessionRequest, StopReason, StopRequest};
use sightline_store::{AppRecord, AppType, StoreError};

use super::replay::ReplayBuffer;
use super::UserSession;
use crate::health::ConnectionRole;
use crate::link::{close, ConnectionId, ConnectionLink, Outbound};
use crate::now_iso;
use crate::webhook::{self, endpoint};

/// App starts whose lookup may be under way at once in one session; more
/// are refused (a start costs a store lookup, and the phone sends them).
const MAX_STARTS_UNDER_WAY: usize = 32;

/// Where an app is in its life within the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// Webhook sent, waiting for `tpa_connection_init`.
    Loading,
    /// Connected and acknowledged.
    Running,
    /// The socket dropped; waiting for the SDK to reconnect.
    Reconnecting,
    /// The socket dropped while the glasses were away; restarted when they
    /// return, and accepted if the SDK reconnects meanwhile.
    Dormant,
}

impl AppState {
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Loading => "loading",
            AppState::Running => "running",
            AppState::Reconnecting => "reconnecting",
            AppState::Dormant => "dormant",
        }
    }
}

/// One app of the session.
pub(crate) struct AppEntry {
    pub record: AppRecord,
    /// `<userId>-<packageName>`.
    pub session_id: String,
    pub state: AppState,
    pub link: Option<ConnectionLink>,
    pub subscriptions: Vec<Subscription>,
    pub generation: u64,
    /// Delays between `session_request` attempts of the current launch.
    backoff: Option<ExponentialBackoff>,
    pub connected_at: Option<Instant>,
    /// When the current start was asked for, until the app connects.
    pub launched_at: Option<Instant>,
    /// The app announced (`ownership_release`) that its next close is
    /// deliberate.
    pub ownership_released: bool,
    pub resurrections: u32,
    /// Ties the log lines and webhook calls of one start together.
    pub correlation_id: String,
    /// Events kept for the app while its connection is away.
    pub replay: Option<ReplayBuffer>,
    /// A restarted app gets the kept events once it has subscribed again
    /// (before that, the SDK has no handlers for them).
    pub replay_after_subscribe: bool,
}

impl UserSession {
    fn new_backoff(&self) -> ExponentialBackoff {
        ExponentialBackoff {
            initial_interval: self.config.webhook_initial_backoff,
            current_interval: self.config.webhook_initial_backoff,
            randomization_factor: 0.3,
            multiplier: 2.0,
            max_interval: Duration::from_secs(2),
            max_elapsed_time: Some(self.config.app_start_timeout),
            ..ExponentialBackoff::default()
        }
    }

    fn new_entry(&self, record: AppRecord, state: AppState) -> AppEntry {
        AppEntry {
            session_id: app_session_id(&self.user.email, &record.package_name),
            record,
            state,
            link: None,
            subscriptions: Vec::new(),
            generation: 0,
            backoff: None,
            connected_at: None,
            launched_at: None,
            ownership_released: false,
            resurrections: 0,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            replay: None,
            replay_after_subscribe: false,
        }
    }

    /// Sends an app the events kept while it was away, oldest first; with
    /// `subscribed_only`, only those its current subscriptions still ask
    /// for.
    pub(super) fn flush_replay(&mut self, package: &str, subscribed_only: bool) {
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        entry.replay_after_subscribe = false;
        let Some(mut replay) = entry.replay.take() else {
            return;
        };
        let Some(link) = entry.link.clone() else {
            return;
        };
        let mut sent = 0u64;
        let mut skipped = 0u64;
        for event in replay.drain() {
            if subscribed_only
                && !entry
                    .subscriptions
                    .iter()
                    .any(|s| s.raw == event.stream_type)
            {
                skipped += 1;
                continue;
            }
            link.text(event.text);
            sent += 1;
        }
        if sent + skipped > 0 {
            tracing::info!(user = %self.user.email, package, replayed = sent, skipped, "events kept while the app was away delivered");
        }
        self.figures.replayed_events += sent;
        self.health.figures.replayed(sent);
        self.count_dropped(skipped);
    }

    /// Counts events an app will never get.
    pub(super) fn count_dropped(&mut self, n: u64) {
        if n > 0 {
            self.figures.dropped_events += n;
            self.health.figures.dropped(n);
        }
    }

    /// Starts an app: looks it up, then [`Self::begin_start`].
    ///
    /// The lookup is remembered with its own intent number: a stop that
    /// arrives while it is under way removes it, and the lookup's answer
    /// then finds itself cancelled, so a stop sent right after a start
    /// always wins and the app server is never contacted.
    pub(super) fn request_start(&mut self, package: String, ctx: &mut Context<Self>) {
        if self.apps.contains_key(&package) || self.lookups.contains_key(&package) {
            self.send_app_state(None);
            return;
        }
        if self.pending_stops.contains(&package) {
            tracing::debug!(user = %self.user.email, package = %package, "start waits for the app's stop webhook");
            self.deferred_starts.insert(package);
            return;
        }
        if self.lookups.len() >= MAX_STARTS_UNDER_WAY {
            tracing::warn!(user = %self.user.email, package = %package, "too many app starts under way; start refused");
            self.send_app_state(Some(&format!(
                "App {package} not started: {MAX_STARTS_UNDER_WAY} starts are already under way"
            )));
            return;
        }
        let intent = self.generation();
        self.lookups.insert(package.clone(), intent);
        let store = self.store.clone();
        let pkg = package.clone();
        ctx.spawn(
            async move { store.get_app(&pkg).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if act.lookups.get(&package) != Some(&intent) {
                        return; // a stop came after this start
                    }
                    act.lookups.remove(&package);
                    act.begin_start(package, res, ctx)
                }),
        );
    }

    fn begin_start(
        &mut self,
        package: String,
        found: Result<Option<AppRecord>, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        let record = match found {
            Ok(Some(r)) => r,
            Ok(None) => {
                tracing::warn!(user = %self.user.email, package = %package, "start of an unknown app refused");
                self.forget_running(&package);
                self.send_app_state(Some(&format!("App {package} is not registered")));
                return;
            }
            Err(e) => {
                tracing::error!(user = %self.user.email, package = %package, error = %e, "app lookup failed");
                self.send_app_state(Some(&format!("App {package} could not be started: {e}")));
                return;
            }
        };
        if self.apps.contains_key(&package) {
            return; // started meanwhile by another request
        }
        if record.app_type == AppType::Standard {
            let others: Vec<String> = self
                .apps
                .iter()
                .filter(|(p, e)| **p != package && e.record.app_type == AppType::Standard)
                .map(|(p, _)| p.clone())
                .collect();
            for other in others {
                tracing::info!(user = %self.user.email, package = %other, "stopping the running standard app for {package}");
                self.stop_app(&other, StopReason::SystemStop, ctx);
            }
        }
        let entry = self.new_entry(record, AppState::Loading);
        tracing::info!(user = %self.user.email, package = %package, correlation_id = %entry.correlation_id, "starting app");
        let (name, app_type) = (entry.record.name.clone(), entry.record.app_type);
        self.apps.insert(package.clone(), entry);
        self.screen_app_started(&package, &name, app_type, ctx);
        self.remember_running(&package);
        self.launch(&package, ctx);
        self.send_app_state(None);
    }

    /// Puts an app into Loading: arms the start timeout and sends the
    /// session webhook.
    fn launch(&mut self, package: &str, ctx: &mut Context<Self>) {
        let generation = self.generation();
        let backoff = self.new_backoff();
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        entry.state = AppState::Loading;
        entry.generation = generation;
        entry.backoff = Some(backoff);
        entry.launched_at.get_or_insert_with(Instant::now);
        let pkg = package.to_string();
        ctx.run_later(self.config.app_start_timeout, move |act, ctx| {
            act.on_start_timeout(&pkg, generation, ctx)
        });
        self.send_session_webhook(package, generation, ctx);
    }

    fn send_session_webhook(&mut self, package: &str, generation: u64, ctx: &mut Context<Self>) {
        let Some(entry) = self.apps.get(package) else {
            return;
        };
        let url = endpoint(&entry.record.public_url, "/webhook");
        let body = serde_json::to_value(SessionRequest::new(
            &entry.session_id,
            &self.user.email,
            &self.config.public_ws_url,
            now_iso(),
        ))
        .unwrap_or_default();
        let call = self.call_webhook(url, body, entry.correlation_id.clone());
        let pkg = package.to_string();
        ctx.spawn(
            call.into_actor(self)
                .map(move |res, act, ctx| act.on_session_webhook(&pkg, generation, res, ctx)),
        );
    }

    fn on_session_webhook(
        &mut self,
        package: &str,
        generation: u64,
        result: Result<(), webhook::WebhookError>,
        ctx: &mut Context<Self>,
    ) {
        let user = self.user.email.clone();
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        if entry.generation != generation || entry.state != AppState::Loading {
            return; // the app connected (or moved on) meanwhile: never retry
        }
        let Err(err) = result else {
            return;
        };
        match entry.backoff.as_mut().and_then(|b| b.next_backoff()) {
            Some(delay) => {
                tracing::warn!(user = %user, package, correlation_id = %entry.correlation_id, error = %err, retry_in_ms = delay.as_millis() as u64, "session webhook failed; retrying");
                let pkg = package.to_string();
                ctx.run_later(delay, move |act, ctx| {
                    let still_loading = act.apps.get(&pkg).is_some_and(|e| {
                        e.generation == generation && e.state == AppState::Loading
                    });
                    if still_loading {
                        act.send_session_webhook(&pkg, generation, ctx);
                    }
                });
            }
            None => {
                tracing::warn!(user = %user, package, correlation_id = %entry.correlation_id, error = %err, "session webhook failed; no more retries before the start timeout");
            }
        }
    }

    fn on_start_timeout(&mut self, package: &str, generation: u64, ctx: &mut Context<Self>) {
        let timed_out = self
            .apps
            .get(package)
            .is_some_and(|e| e.generation == generation && e.state == AppState::Loading);
        if !timed_out {
            return;
        }
        tracing::warn!(user = %self.user.email, package, "app did not connect in time; start abandoned");
        self.apps.remove(package);
        self.forget_running(package);
        self.screen_app_stopped(package, ctx);
        self.send_app_state(Some(&format!(
            "App {package} did not connect within {} ms",
            self.config.app_start_timeout.as_millis()
        )));
        self.update_mic(false, ctx);
    }

    /// Binds an authenticated app connection to its app, answering on the
    /// link with `InitAccepted` + the ack, or `InitRejected`.
    pub(super) fn attach_app(
        &mut self,
        record: AppRecord,
        link: ConnectionLink,
        ctx: &mut Context<Self>,
    ) {
        let package = record.package_name.clone();
        if package == self.config.dashboard_package && !self.apps.contains_key(&package) {
            // The system dashboard runs in every session without a start:
            // a dashboard app that connects is taken in as it is.
            tracing::info!(user = %self.user.email, "system dashboard app connected");
            let entry = self.new_entry(record, AppState::Loading);
            self.apps.insert(package.clone(), entry);
        }
        let generation = self.generation();
        let user = self.user.clone();
        let Some(entry) = self.apps.get_mut(&package) else {
            tracing::warn!(user = %user.email, package = %package, "app connected but was not started");
            link.send(Outbound::InitRejected {
                code: "APP_NOT_STARTED",
                message: "App not started for this session".into(),
            });
            return;
        };
        let replaced = entry
            .link
            .replace(link.clone())
            .filter(|old| old.id != link.id);
        if let Some(old) = &replaced {
            old.send(Outbound::Superseded);
        }
        let was = entry.state;
        entry.state = AppState::Running;
        entry.generation = generation;
        entry.connected_at = Some(Instant::now());
        entry.ownership_released = false;
        let ack = outbound::tpa_connection_ack(
            &entry.session_id,
            &serde_json::Value::Array(user.settings_for(&entry.record)),
            &mentraos_settings(&user.mentraos_settings),
            &g1_capabilities(),
            &now_iso(),
        );
        tracing::info!(user = %user.email, package = %package, connection = %link.id, was = was.as_str(), correlation_id = %entry.correlation_id, "app connected");
        link.send(Outbound::InitAccepted);
        link.text(ack);
        if let Some(launched) = entry.launched_at.take() {
            let elapsed = launched.elapsed().as_secs_f64();
            self.health.metrics.app_start.observe(elapsed);
        }
        if was == AppState::Loading {
            entry.resurrections = 0;
            entry.replay_after_subscribe = entry.replay.as_ref().is_some_and(|r| !r.is_empty());
        }
        if let Some(old) = replaced {
            self.unwatch(old.id);
        }
        self.watch(
            ConnectionRole::App {
                package: package.clone(),
            },
            &link,
        );
        if matches!(was, AppState::Reconnecting | AppState::Dormant) {
            self.figures.app_reconnects += 1;
            self.health.figures.app_reconnected();
            self.flush_replay(&package, false);
        }
        self.screen_app_booted(&package, ctx);
        self.send_app_state(None);
        self.update_mic(false, ctx);
    }

    pub(super) fn app_disconnected(
        &mut self,
        package: &str,
        id: ConnectionId,
        code: Option<u16>,
        ctx: &mut Context<Self>,
    ) {
        let generation = self.generation();
        let glasses_here = self.glasses.is_some();
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        if entry.link.as_ref().map(|l| l.id) != Some(id) {
            return; // an old socket of this app: already replaced
        }
        entry.link = None;
        entry.generation = generation;
        entry.state = AppState::Reconnecting;
        let (max_events, max_bytes) = (self.config.replay_max_events, self.config.replay_max_bytes);
        entry
            .replay
            .get_or_insert_with(|| ReplayBuffer::new(max_events, max_bytes));
        tracing::info!(user = %self.user.email, package, ?code, released = entry.ownership_released, glasses_here, "app connection lost; waiting for it to reconnect");
        self.unwatch(id);
        let pkg = package.to_string();
        ctx.run_later(self.config.app_reconnect_grace, move |act, ctx| {
            act.on_app_grace_expired(&pkg, generation, ctx)
        });
    }

    fn on_app_grace_expired(&mut self, package: &str, generation: u64, ctx: &mut Context<Self>) {
        let glasses_here = self.glasses.is_some();
        let max = self.config.max_resurrections;
        let is_dashboard = package == self.config.dashboard_package;
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        if entry.generation != generation || entry.state != AppState::Reconnecting {
            return;
        }
        if entry.ownership_released || is_dashboard || entry.resurrections >= max {
            let why = if entry.ownership_released {
                "it released its session"
            } else if is_dashboard {
                "the system dashboard app is never restarted by Sightline"
            } else {
                "it could not be restarted"
            };
            tracing::warn!(user = %self.user.email, package, "app did not reconnect and {why}; marking it stopped");
            let lost = entry.replay.as_ref().map_or(0, |r| r.len() as u64);
            self.apps.remove(package);
            self.count_dropped(lost);
            self.forget_running(package);
            self.screen_app_stopped(package, ctx);
            self.send_app_state(Some(&format!("App {package} stopped: {why}")));
            self.update_mic(false, ctx);
            return;
        }
        if !glasses_here {
            entry.state = AppState::Dormant;
            tracing::info!(user = %self.user.email, package, "app is dormant until the glasses return");
            return;
        }
        self.resurrect(package, ctx);
    }

    /// Restarts an app that vanished: `stop_request` first, and only once
    /// it has been answered a fresh `session_request` (the SDK looks its
    /// sessions up by id, so a late stop would kill the new session).
    fn resurrect(&mut self, package: &str, ctx: &mut Context<Self>) {
        let generation = self.generation();
        let stop = self.stop_webhook(package, StopReason::Error);
        let Some(entry) = self.apps.get_mut(package) else {
            return;
        };
        entry.resurrections += 1;
        entry.generation = generation;
        entry.state = AppState::Reconnecting;
        self.figures.resurrections += 1;
        self.health.figures.resurrected();
        tracing::warn!(user = %self.user.email, package, attempt = entry.resurrections, "resurrecting app");
        let pkg = package.to_string();
        ctx.spawn(
            async move {
                if let Some(stop) = stop {
                    stop.await;
                }
            }
            .into_actor(self)
            .map(move |_, act, ctx| {
                let waiting = act.apps.get(&pkg).is_some_and(|e| {
                    e.generation == generation && e.state == AppState::Reconnecting
                });
                if waiting {
                    act.launch(&pkg, ctx);
                    act.send_app_state(None);
                }
            }),
        );
    }

    pub(super) fn wake_dormant_apps(&mut self, ctx: &mut Context<Self>) {
        let dormant: Vec<String> = self
            .apps
            .iter()
            .filter(|(_, e)| e.state == AppState::Dormant)
            .map(|(p, _)| p.clone())
            .collect();
        for p in dormant {
            self.resurrect(&p, ctx);
        }
    }

    /// Stops an app: `stop_request` to its server, `app_stopped` and a
    /// 1000 "App stopped" close to its socket.
    ///
    /// A start of the same app that has not reached the app server yet (its
    /// lookup under way, or waiting for an earlier stop) is cancelled: the
    /// later intent wins.
    pub(super) fn stop_app(&mut self, package: &str, reason: StopReason, ctx: &mut Context<Self>) {
        if !self.apps.contains_key(package) {
            let looking_up = self.lookups.remove(package).is_some();
            if looking_up || self.deferred_starts.remove(package) {
                tracing::info!(user = %self.user.email, package, "start cancelled by a stop before the app server was contacted");
                self.forget_running(package);
            }
            self.send_app_state(None);
            return;
        }
        if let Some(stop) = self.stop_webhook(package, reason) {
            // A start of the same app waits for this call to be answered:
            // a stop_request arriving after the new session_request would
            // make the SDK drop the new session.
            self.pending_stops.insert(package.to_string());
            let pkg = package.to_string();
            ctx.spawn(stop.into_actor(self).map(move |_, act, ctx| {
                act.pending_stops.remove(&pkg);
                if act.deferred_starts.remove(&pkg) {
                    act.request_start(pkg, ctx);
                }
            }));
        }
        if let Some(entry) = self.apps.remove(package) {
            tracing::info!(user = %self.user.email, package, reason = reason.as_str(), "app stopped");
            self.count_dropped(entry.replay.as_ref().map_or(0, |r| r.len() as u64));
            if let Some(link) = entry.link {
                self.unwatch(link.id);
                link.text(outbound::app_stopped(reason.as_str(), &now_iso()));
                link.close(close::NORMAL, "App stopped");
            }
        }
        self.forget_running(package);
        self.screen_app_stopped(package, ctx);
        self.send_app_state(None);
        self.update_mic(false, ctx);
    }

    /// One webhook call through the app server's circuit breaker: refused
    /// at once while the breaker is open, and its outcome recorded.
    fn call_webhook(
        &self,
        url: String,
        body: serde_json::Value,
        correlation_id: String,
    ) -> impl std::future::Future<Output = Result<(), webhook::WebhookError>> + 'static {
        let health = self.health.clone();
        let timeout = self.config.webhook_timeout;
        async move { webhook::post_guarded(&health, &url, &body, timeout, &correlation_id).await }
    }

    /// The `stop_request` call for an app, as a future that logs its own
    /// failure (the app is stopped regardless).
    fn stop_webhook(
        &self,
        package: &str,
        reason: StopReason,
    ) -> Option<impl std::future::Future<Output = ()> + 'static> {
        let entry = self.apps.get(package)?;
        let url = endpoint(&entry.record.public_url, "/webhook");
        let body = serde_json::to_value(StopRequest::new(
            &entry.session_id,
            &self.user.email,
            reason,
            now_iso(),
        ))
        .unwrap_or_default();
        let call = self.call_webhook(url, body, entry.correlation_id.clone());
        let pkg = package.to_string();
        Some(async move {
            if let Err(e) = call.await {
                tracing::info!(package = %pkg, error = %e, "stop webhook failed (the app is stopped regardless)");
            }
        })
    }

    /// Ends the session: every app hears "User session ended" (no stop
    /// webhooks: the apps restart when the user returns).
    pub(super) fn dispose(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(user = %self.user.email, apps = self.apps.len(), "user session ending");
        self.probe.set_state("ending");
        for entry in std::mem::take(&mut self.apps).into_values() {
            if let Some(link) = entry.link {
                link.text(outbound::app_stopped("user_session_ended", &now_iso()));
                link.close(close::NORMAL, "User session ended");
            }
        }
        if let Some(g) = self.glasses.take() {
            g.close(close::GOING_AWAY, "User session ended");
        }
        actix::ActorContext::stop(ctx);
    }

    fn remember_running(&mut self, package: &str) {
        if !self.user.running_apps.iter().any(|p| p == package) {
            self.user.running_apps.push(package.to_string());
        }
        self.running_writer.set(package, true);
    }

    fn forget_running(&mut self, package: &str) {
        self.user.running_apps.retain(|p| p != package);
        self.running_writer.set(package, false);
    }
}
