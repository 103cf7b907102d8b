//! One test per rule of §7.2 (named `ruleN_…`), then whole scenarios. The
//! clock is a fixed `Instant` moved forward by hand; nothing sleeps.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sightline_protocol::app::DisplayRequest;

use super::{
    AppKind, DisplayConfig, DisplayManager, DisplayOutput, DisplaySource, GlassesDisplay,
    WakeReason,
};

const DASHBOARD: &str = "system.augmentos.dashboard";
const CORE: &str = "com.example.captions";
const OLD_CORE: &str = "com.example.notes";
const BG: &str = "com.example.notify";
const BG2: &str = "com.example.weather";
const EXTRA: &str = "com.example.translate";
const EXTRA2: &str = "com.example.timer";
/// How [`describe`] shows the clear screen.
const CLEAR: &str = "system.augmentos.dashboard: ";

use AppKind::{Background, Standard};

fn at(t: Instant, ms: u64) -> Instant {
    t + Duration::from_millis(ms)
}

fn text(t: &str) -> DisplayRequest {
    let mut layout = Map::new();
    layout.insert("layoutType".into(), "text_wall".into());
    layout.insert("text".into(), t.into());
    DisplayRequest {
        view: "main".into(),
        layout,
        duration_ms: None,
        force_display: false,
    }
}

fn timed(t: &str, ms: u64) -> DisplayRequest {
    DisplayRequest {
        duration_ms: Some(ms),
        ..text(t)
    }
}

fn forced(t: &str) -> DisplayRequest {
    DisplayRequest {
        force_display: true,
        ..text(t)
    }
}

fn dashboard_view(t: &str) -> DisplayRequest {
    DisplayRequest {
        view: "dashboard".into(),
        ..text(t)
    }
}

/// `package: text`, or `package: title | text` for a reference card.
fn describe(d: &GlassesDisplay) -> String {
    let field = |k: &str| d.layout.get(k).and_then(Value::as_str).unwrap_or_default();
    match field("layoutType") {
        "reference_card" => format!("{}: {} | {}", d.package_name, field("title"), field("text")),
        _ => format!("{}: {}", d.package_name, field("text")),
    }
}

fn shows(out: &[DisplayOutput]) -> Vec<&GlassesDisplay> {
    out.iter()
        .filter_map(|o| match o {
            DisplayOutput::Show(d) => Some(d),
            DisplayOutput::Wake { .. } => None,
        })
        .collect()
}

fn shown(out: &[DisplayOutput]) -> Vec<String> {
    shows(out).into_iter().map(describe).collect()
}

fn wakes(out: &[DisplayOutput]) -> Vec<(Instant, WakeReason)> {
    out.iter()
        .filter_map(|o| match o {
            DisplayOutput::Wake { at, reason } => Some((*at, *reason)),
            DisplayOutput::Show(_) => None,
        })
        .collect()
}

fn on_screen(m: &DisplayManager) -> String {
    m.current()
        .map(|d| describe(&d.display))
        .unwrap_or_default()
}

/// A manager with these apps started at `t0`, connected at once and the
/// boot screen gone, and an instant (`t0` + 3 s) past every window.
fn with_apps(apps: &[(&str, AppKind)]) -> (DisplayManager, Instant) {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());
    for (package, kind) in apps {
        m.app_started(package, *kind, t0);
    }
    for (package, _) in apps {
        m.app_booted(package, t0);
    }
    assert_eq!(shown(&m.tick(at(t0, 1_500))), [CLEAR]);
    (m, at(t0, 3_000))
}

// ------------------------------------------------------------ rule 1 --

#[test]
fn rule1_dashboard_package_skips_arbitration_and_throttle() {
    let (mut m, t) = with_apps(&[(CORE, Standard)]);
    assert_eq!(
        shown(&m.request(CORE, text("c1"), t)),
        ["com.example.captions: c1"]
    );

    // Inside the throttle window an app would wait; the dashboard does not.
    let out = m.request(DASHBOARD, dashboard_view("21°C"), at(t, 10));
    assert_eq!(shown(&out), ["system.augmentos.dashboard: 21°C"]);
    assert_eq!(shows(&out)[0].view, "dashboard");

    // Nor during boot, and it does not replace the boot screen as current.
    assert!(m.app_started(DASHBOARD, Standard, at(t, 15)).is_empty());
    assert!(!m.is_booting());
    assert_eq!(m.core_app(), Some(CORE));
    m.app_started(BG, Background, at(t, 20));
    let out = m.request(DASHBOARD, text("menu"), at(t, 30));
    assert_eq!(shown(&out), ["system.augmentos.dashboard: menu"]);
    assert_eq!(
        m.current().map(|d| d.source),
        Some(DisplaySource::BootScreen)
    );
}

#[test]
fn rule1_app_request_for_dashboard_view_is_arbitrated_like_main() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background), (BG2, Background)]);
    m.request(CORE, text("c1"), t);

    let out = m.request(BG, dashboard_view("b1"), at(t, 100));
    assert!(shown(&out).is_empty(), "throttled");
    assert_eq!(wakes(&out), [(at(t, 300), WakeReason::ThrottleWindow)]);
    assert_eq!(m.lock_holder(), Some(BG));

    let out = m.tick(at(t, 300));
    assert_eq!(shown(&out), ["com.example.notify: b1"]);
    assert_eq!(shows(&out)[0].view, "dashboard");

    // Another background app is refused the lock, dashboard view or not.
    assert!(m
        .request(BG2, dashboard_view("w1"), at(t, 1_000))
        .is_empty());
}

// ------------------------------------------------------------ rule 2 --

#[test]
fn rule2_boot_screen_shows_app_names_where_known() {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());
    m.set_app_name(CORE, "Live Captions");
    m.app_started(CORE, Standard, t0);
    assert_eq!(
        shown(&m.app_started(BG, Background, at(t0, 10))),
        ["system.augmentos.dashboard: // MentraOS - Starting Apps | Live Captions, com.example.notify"]
    );
}

#[test]
fn rule2_boot_screen_names_the_starting_apps() {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());

    let out = m.app_started(CORE, Standard, t0);
    let boot = shows(&out);
    assert_eq!(boot.len(), 1);
    assert_eq!(boot[0].package_name, DASHBOARD);
    assert_eq!(boot[0].view, "main");
    assert_eq!(boot[0].layout["layoutType"], "reference_card");
    assert_eq!(
        describe(boot[0]),
        "system.augmentos.dashboard: // MentraOS - Starting App | com.example.captions"
    );
    assert!(wakes(&out).is_empty(), "nothing is due while an app boots");

    assert_eq!(
        shown(&m.app_started(BG, Background, at(t0, 100))),
        ["system.augmentos.dashboard: // MentraOS - Starting Apps | com.example.captions, com.example.notify"]
    );
    assert_eq!(
        shown(&m.app_booted(CORE, at(t0, 200))),
        ["system.augmentos.dashboard: // MentraOS - Starting App | com.example.notify"]
    );
    let out = m.app_booted(BG, at(t0, 300));
    assert!(shown(&out).is_empty());
    // 1.5 s from the latest start.
    assert_eq!(wakes(&out), [(at(t0, 1_600), WakeReason::BootComplete)]);

    assert!(shown(&m.tick(at(t0, 1_599))).is_empty());
    assert!(m.is_booting());
    assert_eq!(shown(&m.tick(at(t0, 1_600))), [CLEAR]);
    assert!(!m.is_booting());
}

#[test]
fn rule2_boot_screen_stays_until_every_app_connected() {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());
    m.app_started(CORE, Standard, t0);

    assert!(m.tick(at(t0, 1_500)).is_empty());
    assert!(m.is_booting());
    assert!(
        m.request(CORE, text("hello"), at(t0, 2_000)).is_empty(),
        "queued"
    );

    // Past the minimum time, the connect itself ends the boot phase.
    assert_eq!(
        shown(&m.app_booted(CORE, at(t0, 2_500))),
        ["com.example.captions: hello"]
    );
    assert!(!m.is_booting());
}

// ------------------------------------------------------------ rule 3 --

#[test]
fn rule3_first_queued_request_shows_when_the_core_app_queued_none() {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());
    m.app_started(BG, Background, t0);
    m.app_started(BG2, Background, t0);
    m.request(BG2, text("w1"), at(t0, 100));
    m.request(BG, text("b1"), at(t0, 200));
    m.app_booted(BG, at(t0, 200));
    m.app_booted(BG2, at(t0, 200));

    let out = m.tick(at(t0, 1_500));
    assert_eq!(shown(&out), ["com.example.weather: w1"]);
    // The shown app took the lock, so the other queued request is refused.
    assert_eq!(m.lock_holder(), Some(BG2));
    assert!(wakes(&out).is_empty());
    assert!(m.tick(at(t0, 2_000)).is_empty());
}

#[test]
fn rule3_display_saved_before_boot_is_restored() {
    let (mut m, t) = with_apps(&[(CORE, Standard)]);
    m.request(CORE, timed("c1", 5_000), t);

    m.app_started(BG, Background, at(t, 500));
    m.app_booted(BG, at(t, 600));
    let out = m.tick(at(t, 2_000));
    assert_eq!(
        shown(&out),
        ["com.example.captions: c1"],
        "no clear before it"
    );
    // Its lifetime still counts from when it was first shown.
    assert_eq!(m.current().map(|d| d.since), Some(t));
    assert_eq!(wakes(&out), [(at(t, 5_000), WakeReason::DisplayExpiry)]);

    assert_eq!(shown(&m.tick(at(t, 5_000))), [CLEAR]);
}

#[test]
fn rule3_saved_display_no_longer_valid_is_not_restored() {
    let (mut m, t) = with_apps(&[(CORE, Standard)]);
    m.request(CORE, text("c1"), t);
    m.app_started(BG, Background, at(t, 500));
    m.app_booted(BG, at(t, 500));
    // Undated, so valid for 1 s only: long gone when boot ends.
    assert_eq!(shown(&m.tick(at(t, 2_000))), [CLEAR]);
}

// ------------------------------------------------------------ rule 4 --

#[test]
fn rule4_core_request_is_dropped_while_background_holder_is_on_screen() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    assert_eq!(
        shown(&m.request(BG, timed("alert", 3_000), t)),
        ["com.example.notify: alert"]
    );

    // Dropped, not throttled: nothing at all comes back.
    assert!(m.request(CORE, timed("c1", 5_000), at(t, 500)).is_empty());

    // But remembered: when the alert runs out, it is what shows.
    assert_eq!(shown(&m.tick(at(t, 3_000))), ["com.example.captions: c1"]);
    assert_eq!(m.lock_holder(), None);
}

#[test]
fn rule4_core_display_releases_the_lock_of_a_holder_off_screen() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background), (BG2, Background)]);
    m.request(BG, timed("alert", 8_000), t);
    assert_eq!(m.lock_holder(), Some(BG));

    // A boot takes the alert off screen; the core app's queued display
    // comes first after it and the holder is not on screen.
    m.app_started(EXTRA, Background, at(t, 100));
    m.request(CORE, text("c1"), at(t, 200));
    m.app_booted(EXTRA, at(t, 300));
    assert_eq!(shown(&m.tick(at(t, 1_600))), ["com.example.captions: c1"]);
    assert_eq!(m.lock_holder(), None);

    assert_eq!(
        shown(&m.request(BG2, text("w1"), at(t, 2_000))),
        ["com.example.weather: w1"]
    );
    assert_eq!(m.lock_holder(), Some(BG2));
}

// ------------------------------------------------------------ rule 5 --

#[test]
fn rule5_background_apps_need_the_lock() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background), (BG2, Background)]);
    assert!(m
        .request("com.example.never-started", text("x"), t)
        .is_empty());

    assert_eq!(
        shown(&m.request(BG, text("b1"), t)),
        ["com.example.notify: b1"]
    );
    assert_eq!(m.lock_holder(), Some(BG));
    assert!(
        m.request(BG2, text("w1"), at(t, 400)).is_empty(),
        "rejected, not queued"
    );
    assert_eq!(
        shown(&m.request(BG, text("b2"), at(t, 800))),
        ["com.example.notify: b2"]
    );

    // The holder stops: the lock is free for the next app.
    assert_eq!(shown(&m.app_stopped(BG, at(t, 1_200))), [CLEAR]);
    assert_eq!(m.lock_holder(), None);
    assert_eq!(
        shown(&m.request(BG2, text("w2"), at(t, 1_600))),
        ["com.example.weather: w2"]
    );
    assert_eq!(m.lock_holder(), Some(BG2));
    assert!(m.tick(at(t, 5_000)).is_empty(), "no queued retry of w1");
}

#[test]
fn rule5_background_app_takes_the_lock_from_the_core_app() {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());
    for package in [OLD_CORE, CORE] {
        m.app_started(package, Standard, t0);
        m.app_booted(package, t0);
    }
    m.app_started(BG, Background, t0);
    m.app_booted(BG, t0);
    m.tick(at(t0, 1_500));
    let t = at(t0, 3_000);
    assert_eq!(m.core_app(), Some(CORE));

    // A standard app that is not the core app competes like a background app.
    m.request(OLD_CORE, text("o1"), t);
    assert_eq!(m.lock_holder(), Some(OLD_CORE));
    // Restarted, it is the core app again, still holding the lock.
    m.app_started(OLD_CORE, Standard, at(t, 100));
    assert_eq!(m.core_app(), Some(OLD_CORE));
    assert_eq!(m.lock_holder(), Some(OLD_CORE));

    m.request(BG, text("b1"), at(t, 200));
    m.app_booted(OLD_CORE, at(t, 200));
    assert_eq!(shown(&m.tick(at(t, 1_600))), ["com.example.notify: b1"]);
    assert_eq!(m.lock_holder(), Some(BG));
}

// ------------------------------------------------------------ rule 6 --

#[test]
fn rule6_throttle_keeps_the_latest_request_per_app() {
    let (mut m, t) = with_apps(&[(CORE, Standard)]);
    let out = m.request(CORE, text("c1"), t);
    assert_eq!(shown(&out), ["com.example.captions: c1"]);
    assert!(wakes(&out).is_empty());

    let out = m.request(CORE, text("c2"), at(t, 100));
    assert!(shown(&out).is_empty());
    assert_eq!(wakes(&out), [(at(t, 300), WakeReason::ThrottleWindow)]);
    assert!(
        m.request(CORE, text("c3"), at(t, 200)).is_empty(),
        "same wake-up"
    );

    assert!(shown(&m.tick(at(t, 299))).is_empty());
    assert_eq!(shown(&m.tick(at(t, 300))), ["com.example.captions: c3"]);

    assert_eq!(
        shown(&m.request(CORE, forced("c4"), at(t, 350))),
        ["com.example.captions: c4"]
    );
    assert!(shows(&m.request(CORE, text("c5"), at(t, 649))).is_empty());
    assert_eq!(shown(&m.tick(at(t, 650))), ["com.example.captions: c5"]);
}

// ------------------------------------------------------------ rule 7 --

#[test]
fn rule7_expiry_shows_next_only_while_still_on_screen() {
    let (mut m, t) = with_apps(&[(CORE, Standard)]);
    let out = m.request(CORE, timed("c1", 1_000), t);
    assert_eq!(wakes(&out), [(at(t, 1_000), WakeReason::DisplayExpiry)]);
    assert!(m
        .tick(at(t, 999))
        .iter()
        .all(|o| !matches!(o, DisplayOutput::Show(_))));
    assert_eq!(shown(&m.tick(at(t, 1_000))), [CLEAR]);

    m.request(CORE, timed("c2", 1_000), at(t, 2_000));
    assert_eq!(
        shown(&m.request(CORE, text("c3"), at(t, 2_500))),
        ["com.example.captions: c3"]
    );
    // c2's timer fires, but c2 is no longer on screen.
    assert!(m.tick(at(t, 3_000)).is_empty());
    assert_eq!(on_screen(&m), "com.example.captions: c3");
}

// ------------------------------------------------------------ rule 8 --

#[test]
fn rule8_show_next_during_boot_shows_the_boot_screen() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    m.app_started(EXTRA, Background, t);
    m.app_started(EXTRA2, Background, at(t, 100));
    assert_eq!(
        shown(&m.app_stopped(EXTRA2, at(t, 200))),
        ["system.augmentos.dashboard: // MentraOS - Starting App | com.example.translate"]
    );
}

#[test]
fn rule8_show_next_sends_the_oldest_throttled_request_first() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    m.request(CORE, timed("c1", 250), t);
    assert!(shows(&m.request(BG, text("b1"), at(t, 100))).is_empty());

    // c1 runs out before the throttle window ends: b1 goes out at once.
    assert_eq!(shown(&m.tick(at(t, 250))), ["com.example.notify: b1"]);
    assert!(m.tick(at(t, 300)).is_empty());
}

#[test]
fn rule8_show_next_keeps_the_lock_holder_until_it_idles() {
    let apps = [
        (CORE, Standard),
        (BG, Background),
        (EXTRA, Background),
        (EXTRA2, Background),
    ];
    let (mut m, t) = with_apps(&apps);
    m.request(CORE, timed("c1", 60_000), t);
    assert_eq!(
        shown(&m.request(BG, timed("b1", 5_000), at(t, 500))),
        ["com.example.notify: b1"]
    );

    // Another app stops: the holder displayed 500 ms ago and keeps the screen.
    assert!(m.app_stopped(EXTRA, at(t, 1_000)).is_empty());
    assert_eq!(m.lock_holder(), Some(BG));

    // 2.1 s without a display from the holder: the lock goes, the core app is back.
    assert_eq!(
        shown(&m.app_stopped(EXTRA2, at(t, 2_600))),
        ["com.example.captions: c1"]
    );
    assert_eq!(m.lock_holder(), None);
}

#[test]
fn rule8_show_next_falls_back_to_the_core_display_then_clears() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    m.request(CORE, timed("c1", 5_000), t);
    assert_eq!(
        shown(&m.request(BG, timed("b1", 1_000), at(t, 300))),
        ["com.example.notify: b1"]
    );

    assert_eq!(shown(&m.tick(at(t, 1_300))), ["com.example.captions: c1"]);
    assert_eq!(m.lock_holder(), None);
    assert_eq!(shown(&m.tick(at(t, 5_000))), [CLEAR]);
    assert!(m.next_wake().is_none());
}

// ------------------------------------------------------------ rule 9 --

#[test]
fn rule9_app_stop_drops_everything_of_the_app() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    m.request(CORE, text("c1"), t);
    m.request(BG, text("b1"), at(t, 100));
    assert_eq!(m.lock_holder(), Some(BG));

    // BG's throttled request and lock go; c1 is still on screen and valid.
    assert!(m.app_stopped(BG, at(t, 200)).is_empty());
    assert_eq!(m.lock_holder(), None);
    assert!(m.next_wake().is_none());
    assert!(m.tick(at(t, 300)).is_empty());

    // The core app stops while showing: the screen is cleared.
    assert_eq!(shown(&m.app_stopped(CORE, at(t, 400))), [CLEAR]);
    assert_eq!(m.core_app(), None);
    assert!(m.request(CORE, text("late"), at(t, 800)).is_empty());
    assert!(
        m.app_stopped(CORE, at(t, 900)).is_empty(),
        "a second stop is a no-op"
    );
}

// --------------------------------------------------------- scenarios --

#[test]
fn boot_with_displays_queued_from_several_apps() {
    let t0 = Instant::now();
    let mut m = DisplayManager::new(DisplayConfig::default());
    m.app_started(CORE, Standard, t0);
    m.app_started(BG, Background, t0);
    m.app_started(BG2, Background, t0);
    for (package, request, ms) in [
        (BG, text("b-1"), 100),
        (BG2, text("w-1"), 150),
        (CORE, text("c-1"), 200),
        (CORE, text("c-2"), 250),
        (BG, text("b-2"), 300),
    ] {
        assert!(m.request(package, request, at(t0, ms)).is_empty(), "queued");
    }
    for package in [CORE, BG, BG2] {
        m.app_booted(package, at(t0, 300));
    }

    // The core app's latest request first, without a clear before it.
    let out = m.tick(at(t0, 1_500));
    assert_eq!(shown(&out), ["com.example.captions: c-2"]);
    // The rest is arbitrated as if it arrived now: BG takes the lock and
    // waits for the throttle window; BG2 is refused.
    assert_eq!(wakes(&out), [(at(t0, 1_800), WakeReason::ThrottleWindow)]);
    assert_eq!(m.lock_holder(), Some(BG));
    assert_eq!(shown(&m.tick(at(t0, 1_800))), ["com.example.notify: b-2"]);
    assert!(m.tick(at(t0, 2_100)).is_empty());
    assert!(m.next_wake().is_none());
}

#[test]
fn throttled_display_of_an_app_that_stops_never_appears() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    let mut all = m.request(CORE, text("c1"), t);
    all.extend(m.request(BG, timed("b1", 5_000), at(t, 100)));
    all.extend(m.app_stopped(BG, at(t, 150)));
    for ms in [300, 600, 2_000] {
        all.extend(m.tick(at(t, ms)));
    }

    // The same while queued during boot.
    all.extend(m.app_started(BG, Background, at(t, 3_000)));
    all.extend(m.request(BG, text("b2"), at(t, 3_100)));
    all.extend(m.app_stopped(BG, at(t, 3_200)));
    all.extend(m.tick(at(t, 4_500)));

    assert!(
        shows(&all).iter().all(|d| d.package_name != BG),
        "{:?}",
        shown(&all)
    );
    assert_eq!(on_screen(&m), CLEAR);
}

#[test]
fn stopped_app_display_is_removed_and_the_previous_one_restored() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    m.request(CORE, timed("c1", 10_000), t);
    assert_eq!(
        shown(&m.request(BG, text("b1"), at(t, 500))),
        ["com.example.notify: b1"]
    );

    assert_eq!(
        shown(&m.app_stopped(BG, at(t, 1_000))),
        ["com.example.captions: c1"]
    );
    assert_eq!(m.current().map(|d| d.since), Some(t));
}

#[test]
fn stopped_app_display_is_removed_and_the_screen_cleared() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    m.request(CORE, text("c1"), t);
    m.request(BG, text("b1"), at(t, 500));
    // c1 had no duration and is 2 s old: nothing to restore.
    assert_eq!(shown(&m.app_stopped(BG, at(t, 2_000))), [CLEAR]);
}

#[test]
fn background_lock_contention_and_expiry() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background), (BG2, Background)]);
    assert_eq!(
        shown(&m.request(BG, timed("b1", 15_000), t)),
        ["com.example.notify: b1"]
    );

    assert!(m.request(BG2, text("w1"), at(t, 1_000)).is_empty());
    assert!(m.request(BG2, text("w2"), at(t, 9_999)).is_empty());
    assert!(
        m.request(CORE, text("c1"), at(t, 9_999)).is_empty(),
        "holder on screen"
    );

    // The lock lasts 10 s from when it was taken, however active the holder.
    assert_eq!(
        shown(&m.request(BG2, text("w3"), at(t, 10_000))),
        ["com.example.weather: w3"]
    );
    assert_eq!(m.lock_holder(), Some(BG2));
    assert!(m.request(BG, text("b2"), at(t, 10_500)).is_empty());
}

#[test]
fn stale_early_and_late_ticks_are_harmless() {
    let (mut m, t) = with_apps(&[(CORE, Standard), (BG, Background)]);
    for ms in [0, 1, 299, 5_000] {
        assert!(m.tick(at(t, ms)).is_empty());
    }

    let t = at(t, 6_000);
    m.request(CORE, timed("c1", 1_000), t);
    // A stale timer firing before the deadline does nothing and asks for
    // nothing: the timer for the deadline is still pending.
    assert!(m.tick(at(t, 500)).is_empty());
    assert_eq!(shown(&m.tick(at(t, 1_000))), [CLEAR]);
    assert!(m.tick(at(t, 1_000)).is_empty(), "duplicate");

    // Late: everything overdue is handled in time order.
    m.request(CORE, timed("c2", 200), at(t, 2_000));
    m.request(BG, text("b1"), at(t, 2_100));
    assert_eq!(shown(&m.tick(at(t, 9_000))), ["com.example.notify: b1"]);
    assert!(m.next_wake().is_none());
}
