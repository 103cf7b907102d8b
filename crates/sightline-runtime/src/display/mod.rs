//! Display arbitration: which app's display request reaches the glasses'
//! main view, and when.
//!
//! Several apps share one small screen. [`DisplayManager`] applies the
//! MentraOS rules (protocol reference §7.2): the system dashboard bypasses
//! everything; a boot screen shows while apps start and their requests wait
//! in a queue; the core app (the latest standard app) normally owns the
//! screen while background apps need a short-lived lock; main-view sends are
//! throttled to one per 300 ms; timed displays run out and hand the screen
//! on ("show next"). The rules themselves are in `rules.rs`.
//!
//! It is pure logic with an injected clock: no actor, no timer, no
//! `Instant::now()`. The user session owns one manager and feeds it:
//!
//! - [`DisplayManager::app_started`] when it starts an app,
//!   [`DisplayManager::app_booted`] when the app's connection init arrives,
//!   [`DisplayManager::app_stopped`] when the app stops for good;
//! - [`DisplayManager::request`] for every display request of an app;
//! - [`DisplayManager::tick`] when a timer it scheduled fires.
//!
//! Every call returns the effects to carry out, in order:
//! [`DisplayOutput::Show`] is a `display_event` to send to the glasses
//! (`outbound::display_event(&d.package_name, &d.to_request(), ts)`), and
//! [`DisplayOutput::Wake`] asks for a `tick` at that instant or later. Timers
//! never need cancelling: `tick` works out from the clock alone what is due,
//! so a stale one does nothing. [`DisplayManager::current`] is what the main view shows
//! now, to re-send when the glasses reconnect.

mod rules;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sightline_protocol::app::DisplayRequest;

/// Upper bound on due items handled in one call; each one moves the state
/// forward, so this only guards against a logic error looping forever.
const MAX_DUE_STEPS: usize = 32;

/// The timings and the dashboard package arbitration works with. The
/// defaults are the values the protocol documents.
#[derive(Debug, Clone)]
pub struct DisplayConfig {
    /// Package of the system dashboard. Its requests skip arbitration; the
    /// boot screen and the clear screen are sent in its name.
    pub dashboard_package: String,
    /// Minimum gap between two main-view sends (unless `forceDisplay`).
    pub throttle: Duration,
    /// How long the boot screen shows, at least, after an app starts.
    pub boot_screen: Duration,
    /// How long a background app's lock lasts once taken.
    pub lock_duration: Duration,
    /// "Show next" drops the lock when its holder displayed nothing for
    /// longer than this.
    pub lock_idle_release: Duration,
    /// How long a display without a duration still counts as valid (worth
    /// keeping or restoring).
    pub undated_validity: Duration,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            dashboard_package: "system.augmentos.dashboard".into(),
            throttle: Duration::from_millis(300),
            boot_screen: Duration::from_millis(1_500),
            lock_duration: Duration::from_millis(10_000),
            lock_idle_release: Duration::from_millis(2_000),
            undated_validity: Duration::from_millis(1_000),
        }
    }
}

/// The app type that decides how an app competes for the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// The most recently started standard app is the core app.
    Standard,
    /// Needs the background lock to display.
    Background,
}

/// A display as it goes to the glasses (`display_event`): whose it is, the
/// view, the layout unchanged, and the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct GlassesDisplay {
    pub package_name: String,
    pub view: String,
    pub layout: Map<String, Value>,
    pub duration_ms: Option<u64>,
    pub force_display: bool,
}

impl GlassesDisplay {
    /// An app's request, attributed to the app.
    pub fn from_request(package_name: &str, request: DisplayRequest) -> Self {
        GlassesDisplay {
            package_name: package_name.to_string(),
            view: request.view,
            layout: request.layout,
            duration_ms: request.duration_ms,
            force_display: request.force_display,
        }
    }

    /// The request part, as `outbound::display_event` takes it.
    pub fn to_request(&self) -> DisplayRequest {
        DisplayRequest {
            view: self.view.clone(),
            layout: self.layout.clone(),
            duration_ms: self.duration_ms,
            force_display: self.force_display,
        }
    }
}

/// What put a display on the main view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplaySource {
    /// An app's request.
    App,
    /// The "Starting App" card shown while apps boot.
    BootScreen,
    /// The empty text wall shown when nothing else is left.
    Clear,
}

/// A display that is (or was) on the main view, with the instant its
/// lifetime started.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveDisplay {
    pub display: GlassesDisplay,
    pub source: DisplaySource,
    /// When it was first shown (for a core-app request that was blocked:
    /// when it was requested). `durationMs` counts from here, and showing
    /// it again does not restart it.
    pub since: Instant,
    /// Tells two displays with the same content apart.
    serial: u64,
}

impl ActiveDisplay {
    /// The package it is attributed to.
    pub fn owner(&self) -> &str {
        &self.display.package_name
    }

    /// When it runs out: only displays with a non-zero `durationMs` do.
    pub fn expires_at(&self) -> Option<Instant> {
        match self.display.duration_ms {
            Some(ms) if ms > 0 => self.since.checked_add(Duration::from_millis(ms)),
            _ => None,
        }
    }

    /// Whether it is still worth keeping or restoring at `now`: it has an
    /// unexpired duration, or no duration and is younger than
    /// `undated_validity`. `durationMs: 0` never counts as valid.
    pub fn is_valid(&self, now: Instant, undated_validity: Duration) -> bool {
        match self.display.duration_ms {
            Some(0) => false,
            // A duration too long to add to an Instant never runs out.
            Some(_) => match self.expires_at() {
                Some(at) => now < at,
                None => true,
            },
            None => now.saturating_duration_since(self.since) < undated_validity,
        }
    }
}

/// Why the manager asks to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// The boot screen's minimum time is over and no app is booting.
    BootComplete,
    /// The throttle window is over and a throttled request waits.
    ThrottleWindow,
    /// The display on screen runs out.
    DisplayExpiry,
}

/// An effect the caller carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum DisplayOutput {
    /// Send this `display_event` to the glasses.
    Show(GlassesDisplay),
    /// Call [`DisplayManager::tick`] at `at` or later (never earlier: the
    /// next wake-up is asked for once that tick ran). Extra ticks, such as
    /// timers scheduled for a display that has since been replaced, are
    /// harmless and ask for nothing new.
    Wake { at: Instant, reason: WakeReason },
}

/// Decides what the glasses' main view shows. See the module docs.
#[derive(Debug)]
pub struct DisplayManager {
    config: DisplayConfig,
    /// Apps started and not stopped (booting ones included).
    running: HashSet<String>,
    /// The most recently started standard app, while it runs.
    core_app: Option<String>,
    /// The core app's latest request, shown or not.
    core_display: Option<ActiveDisplay>,
    /// What the main view shows. `None` before anything was sent, and
    /// briefly while a stopped app's display is being replaced.
    current: Option<ActiveDisplay>,
    lock: Option<BackgroundLock>,
    /// Present from the first app start until the boot screen is taken down.
    boot: Option<BootPhase>,
    /// The app display that was on screen when the boot phase began.
    saved_before_boot: Option<ActiveDisplay>,
    /// One slot per app, oldest first: requests waiting for the throttle
    /// window to pass.
    throttled: Vec<PendingDisplay>,
    /// When the main view was last sent anything (app display, boot screen,
    /// clear); the throttle window runs from here.
    last_main_send: Option<Instant>,
    /// The latest wake-up handed to the caller, so the same one is not
    /// asked for again on every call.
    announced_wake: Option<Instant>,
    next_serial: u64,
    /// Names the boot screen shows for packages, where known.
    app_names: HashMap<String, String>,
    /// Effects of the call in progress.
    effects: Vec<DisplayOutput>,
}

/// The lock a background app needs to display.
#[derive(Debug, Clone)]
struct BackgroundLock {
    holder: String,
    expires_at: Instant,
    /// When the holder last put something on screen.
    last_active: Instant,
}

/// Apps are starting: the boot screen shows and app requests are queued.
#[derive(Debug)]
struct BootPhase {
    /// Started and not yet connected, in start order.
    booting: Vec<String>,
    /// The boot screen stays at least until then.
    not_before: Instant,
    /// One slot per app in order of first request; a later request of the
    /// same app replaces its slot's content.
    queue: Vec<PendingDisplay>,
}

/// An app's request that has passed arbitration but is not shown yet.
#[derive(Debug, Clone)]
struct PendingDisplay {
    display: GlassesDisplay,
    queued_at: Instant,
}

impl DisplayManager {
    pub fn new(config: DisplayConfig) -> Self {
        DisplayManager {
            config,
            running: HashSet::new(),
            core_app: None,
            core_display: None,
            current: None,
            lock: None,
            boot: None,
            saved_before_boot: None,
            throttled: Vec::new(),
            last_main_send: None,
            announced_wake: None,
            next_serial: 0,
            app_names: HashMap::new(),
            effects: Vec::new(),
        }
    }

    /// The name the boot screen shows for a package (the package name is
    /// shown for apps without one).
    pub fn set_app_name(&mut self, package: &str, name: &str) {
        if name.trim().is_empty() {
            self.app_names.remove(package);
        } else {
            self.app_names
                .insert(package.to_string(), name.trim().to_string());
        }
    }

    /// An app is being started. Any app but the dashboard goes on the boot
    /// screen; a standard app becomes the core app.
    pub fn app_started(
        &mut self,
        package: &str,
        kind: AppKind,
        now: Instant,
    ) -> Vec<DisplayOutput> {
        self.process_due(now);
        self.running.insert(package.to_string());
        if package != self.config.dashboard_package {
            if kind == AppKind::Standard && !self.is_core(package) {
                self.core_app = Some(package.to_string());
                self.core_display = None;
            }
            self.begin_boot(package, now);
        }
        self.settle(now)
    }

    /// The app has connected: it is no longer booting. The boot screen goes
    /// once no app is booting and its minimum time is over.
    pub fn app_booted(&mut self, package: &str, now: Instant) -> Vec<DisplayOutput> {
        self.process_due(now);
        self.finish_booting(package, now);
        self.settle(now)
    }

    /// The app has stopped: everything it had pending or on screen goes,
    /// then the next display is shown.
    pub fn app_stopped(&mut self, package: &str, now: Instant) -> Vec<DisplayOutput> {
        self.process_due(now);
        self.app_names.remove(package);
        if self.forget_app(package) {
            self.show_next(now);
        }
        self.settle(now)
    }

    /// An app asks to display something.
    pub fn request(
        &mut self,
        package: &str,
        request: DisplayRequest,
        now: Instant,
    ) -> Vec<DisplayOutput> {
        self.process_due(now);
        let display = GlassesDisplay::from_request(package, request);
        if package == self.config.dashboard_package {
            self.effects.push(DisplayOutput::Show(display));
        } else {
            self.arbitrate(display, now);
        }
        self.settle(now)
    }

    /// Does whatever is due at `now`, then asks for the next wake-up unless
    /// a timer asked for earlier still covers it.
    pub fn tick(&mut self, now: Instant) -> Vec<DisplayOutput> {
        self.process_due(now);
        self.finish(now)
    }

    /// What the main view shows now (dashboard-package requests, which
    /// bypass arbitration, are not tracked).
    pub fn current(&self) -> Option<&ActiveDisplay> {
        self.current.as_ref()
    }

    /// The next instant something is due, and why.
    pub fn next_wake(&self) -> Option<(Instant, WakeReason)> {
        if let Some(boot) = &self.boot {
            // While apps are still booting, only their connect or stop can
            // end the phase; nothing else is due.
            return boot
                .booting
                .is_empty()
                .then_some((boot.not_before, WakeReason::BootComplete));
        }
        let throttle = self.throttled.first().map(|oldest| {
            let opens_at = self
                .last_main_send
                .map_or(oldest.queued_at, |sent| sent + self.config.throttle);
            (opens_at, WakeReason::ThrottleWindow)
        });
        let expiry = self
            .current
            .as_ref()
            .and_then(ActiveDisplay::expires_at)
            .map(|at| (at, WakeReason::DisplayExpiry));
        [throttle, expiry]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }

    /// Whether a request of `package` waits for the throttle window.
    pub fn is_throttled(&self, package: &str) -> bool {
        self.throttled
            .iter()
            .any(|p| p.display.package_name == package)
    }

    /// The core app, if one runs.
    pub fn core_app(&self) -> Option<&str> {
        self.core_app.as_deref()
    }

    /// The app holding the background lock, if any.
    pub fn lock_holder(&self) -> Option<&str> {
        self.lock.as_ref().map(|lock| lock.holder.as_str())
    }

    /// Whether the boot phase (boot screen, queued requests) is on.
    pub fn is_booting(&self) -> bool {
        self.boot.is_some()
    }

    fn is_core(&self, package: &str) -> bool {
        self.core_app.as_deref() == Some(package)
    }

    /// Handles, in time order, everything due at or before `now`.
    fn process_due(&mut self, now: Instant) {
        self.drop_expired_lock(now);
        for _ in 0..MAX_DUE_STEPS {
            let Some((at, reason)) = self.next_wake() else {
                return;
            };
            if at > now {
                return;
            }
            match reason {
                WakeReason::BootComplete => self.complete_boot(now),
                WakeReason::ThrottleWindow => self.flush_oldest_throttled(now),
                WakeReason::DisplayExpiry => self.show_next(now),
            }
        }
    }

    /// Ends an input call: handles what the input made due at once, then
    /// hands back the effects.
    fn settle(&mut self, now: Instant) -> Vec<DisplayOutput> {
        self.process_due(now);
        self.finish(now)
    }

    /// Appends the wake-up for the next due item unless a pending one
    /// already covers it, and hands back the effects.
    fn finish(&mut self, now: Instant) -> Vec<DisplayOutput> {
        if let Some((at, reason)) = self.next_wake() {
            let covered = self
                .announced_wake
                .is_some_and(|pending| pending > now && pending <= at);
            if !covered {
                self.announced_wake = Some(at);
                self.effects.push(DisplayOutput::Wake { at, reason });
            }
        }
        std::mem::take(&mut self.effects)
    }
}
