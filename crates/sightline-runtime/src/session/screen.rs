//! The session's side of the glasses' screen: feeds the [`DisplayManager`]
//! (who may show what, and when) and the [`Dashboard`] (the system
//! dashboard the session runs for every user), and carries out what they
//! decide.
//!
//! The manager and the dashboard are plain logic with the clock passed in;
//! this file is where the real clock, the timers and the glasses
//! connection come in. A timer asked for by the manager calls
//! [`UserSession::display_tick`]; the manager works out from the clock what
//! is due, so a timer that is no longer needed does nothing.

use std::time::Instant;

use actix::{AsyncContext, Context};
use chrono::Utc;
use sightline_protocol::app::DisplayRequest;
use sightline_protocol::glasses::GlassesEvent;
use sightline_protocol::outbound;
use sightline_store::AppType;

use super::UserSession;
use crate::dashboard::DashboardMode;
use crate::display::{AppKind, DisplayOutput, GlassesDisplay};
use crate::metrics::DisplayOutcome;
use crate::now_iso;

impl UserSession {
    /// Carries out the manager's decisions: display events to the glasses,
    /// and a timer for each wake-up it asks for.
    fn apply_display(&mut self, outputs: Vec<DisplayOutput>, ctx: &mut Context<Self>) {
        for output in outputs {
            match output {
                DisplayOutput::Show(display) => self.send_display(&display),
                DisplayOutput::Wake { at, .. } => {
                    let delay = at.saturating_duration_since(Instant::now());
                    ctx.run_later(delay, |act, ctx| act.display_tick(ctx));
                }
            }
        }
    }

    fn send_display(&mut self, display: &GlassesDisplay) {
        self.health.metrics.display(DisplayOutcome::Sent);
        self.send_to_glasses(outbound::display_event(
            &display.package_name,
            &display.to_request(),
            &now_iso(),
        ));
    }

    /// A timer the manager asked for has fired.
    fn display_tick(&mut self, ctx: &mut Context<Self>) {
        let out = self.screen.tick(Instant::now());
        self.apply_display(out, ctx);
    }

    /// An app is being started: it goes on the boot screen.
    pub(super) fn screen_app_started(
        &mut self,
        package: &str,
        name: &str,
        app_type: AppType,
        ctx: &mut Context<Self>,
    ) {
        self.screen.set_app_name(package, name);
        let kind = match app_type {
            AppType::Standard => AppKind::Standard,
            AppType::Background => AppKind::Background,
        };
        let out = self.screen.app_started(package, kind, Instant::now());
        self.apply_display(out, ctx);
    }

    /// An app's connection was accepted: it is no longer booting.
    pub(super) fn screen_app_booted(&mut self, package: &str, ctx: &mut Context<Self>) {
        let out = self.screen.app_booted(package, Instant::now());
        self.apply_display(out, ctx);
    }

    /// An app stopped for good: its displays and its dashboard content go.
    pub(super) fn screen_app_stopped(&mut self, package: &str, ctx: &mut Context<Self>) {
        let out = self.screen.app_stopped(package, Instant::now());
        self.apply_display(out, ctx);
        if self.dashboard.remove_app(package) {
            self.render_dashboard();
        }
    }

    /// An app asks to display something.
    pub(super) fn screen_request(
        &mut self,
        package: &str,
        request: DisplayRequest,
        ctx: &mut Context<Self>,
    ) {
        let out = self.screen.request(package, request, Instant::now());
        if self.screen.is_throttled(package) {
            self.health.metrics.display(DisplayOutcome::Throttled);
        }
        self.apply_display(out, ctx);
    }

    /// The glasses (re)connected: they get what the main view shows and the
    /// dashboard.
    pub(super) fn screen_restore(&mut self) {
        if let Some(current) = self.screen.current().map(|c| c.display.clone()) {
            self.send_display(&current);
        }
        self.render_dashboard();
    }

    // ------------------------------------------------------- dashboard --

    /// Sends the dashboard as it should look now.
    pub(super) fn render_dashboard(&mut self) {
        if self.glasses.is_none() {
            return;
        }
        let display = self.dashboard.render(Utc::now());
        self.send_display(&display);
    }

    /// Lets the dashboard see a glasses event (battery, notifications,
    /// calendar, head position) and re-renders when it changed.
    pub(super) fn dashboard_observe(&mut self, event: &GlassesEvent) {
        if self.dashboard.observe(event, Utc::now()) {
            self.render_dashboard();
        }
    }

    /// An app wrote its dashboard content.
    pub(super) fn dashboard_content(&mut self, package: &str, content: String, modes: &[String]) {
        if self
            .dashboard
            .set_content(package, content, modes, Utc::now())
        {
            self.render_dashboard();
        }
    }

    /// The dashboard package set a system section.
    pub(super) fn dashboard_system(&mut self, section: &str, content: String) -> bool {
        let known = self.dashboard.set_system_section(section, content);
        if known {
            self.render_dashboard();
        }
        known
    }

    /// The dashboard package switched modes: every app hears of it.
    pub(super) fn dashboard_mode(&mut self, mode: DashboardMode) {
        self.dashboard.set_mode(mode);
        let ts = now_iso();
        for e in self.apps.values() {
            if let Some(l) = &e.link {
                l.text(outbound::dashboard_mode_changed(
                    mode.as_str(),
                    &e.session_id,
                    &ts,
                ));
            }
        }
        self.render_dashboard();
    }
}

/// A minute boundary has passed: the dashboard's clock is re-rendered.
/// Sent to every session by the supervisor's one minute ticker (a timer in
/// each session would be polled on every message the session handles).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct DashboardClockTick;

impl actix::Handler<DashboardClockTick> for UserSession {
    type Result = ();
    fn handle(&mut self, _: DashboardClockTick, _: &mut Context<Self>) {
        self.render_dashboard();
    }
}
