//! The shared screen and the dashboard on live sessions, over real sockets.
//!
//! The arbitration rules themselves are unit-tested with a hand-moved clock
//! (crates/sightline-runtime/src/display/tests.rs); these tests show that
//! sessions apply them with real timers: two real SDK apps (one standard,
//! one background) compete for the screen and the glasses see exactly the
//! expected `display_event`s at the expected times.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sightline::store::{AppType, MemoryStore};
use std::sync::Arc;

const DASHBOARD: &str = "system.augmentos.dashboard";
const NAV: &str = "com.sightline.navigator";
const NOTE: &str = "com.sightline.notifier";

/// How late a display may arrive after the instant the rules give: the SDK
/// apps are separate Node processes on a loaded test machine.
const LATE: Duration = Duration::from_millis(450);
/// How early it may arrive (timers never fire early; this covers only the
/// distance between the test's clock and the server's).
const EARLY: Duration = Duration::from_millis(60);

/// A main-view display as the glasses saw it.
#[derive(Debug)]
struct Seen {
    at: Instant,
    package: String,
    /// The text of a text wall, or "title | text" of a reference card.
    text: String,
    duration_ms: Option<u64>,
}

/// Waits for the next main-view `display_event`, skipping everything else
/// (app states, dashboard renders).
async fn next_main(g: &mut Client, within: Duration) -> Option<Seen> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = g.next_within(left).await.ok()?;
        if v["type"] != "display_event" || v["view"] != "main" {
            continue;
        }
        let layout = &v["layout"];
        let text = match layout["layoutType"].as_str() {
            Some("reference_card") => format!(
                "{} | {}",
                layout["title"].as_str().unwrap_or_default(),
                layout["text"].as_str().unwrap_or_default()
            ),
            _ => layout["text"].as_str().unwrap_or_default().to_string(),
        };
        return Some(Seen {
            at: Instant::now(),
            package: v["packageName"].as_str().unwrap_or_default().to_string(),
            text,
            duration_ms: v["durationMs"].as_u64(),
        });
    }
}

async fn expect_main(g: &mut Client, what: &str) -> Seen {
    next_main(g, Duration::from_secs(8))
        .await
        .unwrap_or_else(|| panic!("the glasses never showed {what}"))
}

/// Asserts `seen` arrived `offset` after `from`, within the tolerance.
fn assert_timing(seen: &Seen, from: Instant, offset: Duration, what: &str) {
    let at = seen.at.duration_since(from);
    assert!(
        at + EARLY >= offset && at <= offset + LATE,
        "{what} arrived {at:?} after its anchor; the rules say {offset:?}"
    );
}

fn command(to: &str, show: Value) -> Value {
    json!({"type": "button_press", "pressType": "short",
           "buttonId": json!({"to": to, "show": show}).to_string()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_and_a_background_sdk_app_share_the_screen() {
    let server = TestServer::start();
    let mut nav = SdkApp::start(
        "display_app.mjs",
        NAV,
        &[(
            "ON_SESSION",
            r#"[{"text": "Turn left in 200 m", "durationMs": 60000}]"#,
        )],
    )
    .await;
    let mut note = SdkApp::start(
        "display_app.mjs",
        NOTE,
        &[(
            "ON_SESSION",
            r#"[{"text": "Ana: lunch at 1?", "durationMs": 2500}]"#,
        )],
    )
    .await;
    server
        .register(NAV, &nav.url, SDK_KEY, AppType::Standard)
        .await;
    server
        .register(NOTE, &note.url, SDK_KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, "screen@example.com").await;

    // 1. Starting the navigator shows the boot screen at once; its first
    //    display waits in the boot queue and shows when the 1.5 s are up.
    let t0 = Instant::now();
    g.send(json!({"type": "start_app", "packageName": NAV}))
        .await;
    let boot = expect_main(&mut g, "the boot screen").await;
    assert_eq!(boot.package, DASHBOARD);
    assert_eq!(boot.text, format!("// MentraOS - Starting App | {NAV}"));
    assert_timing(&boot, t0, Duration::ZERO, "the boot screen");
    let first = expect_main(&mut g, "the navigator's first display").await;
    assert_eq!(
        (first.package.as_str(), first.text.as_str()),
        (NAV, "Turn left in 200 m")
    );
    assert_eq!(first.duration_ms, Some(60_000));
    assert_timing(
        &first,
        t0,
        Duration::from_millis(1_500),
        "the queued display",
    );

    // 2. The background app starts: boot screen again, then its queued
    //    notification, which takes the background lock.
    let t1 = Instant::now();
    g.send(json!({"type": "start_app", "packageName": NOTE}))
        .await;
    let boot2 = expect_main(&mut g, "the second boot screen").await;
    assert_eq!(boot2.text, format!("// MentraOS - Starting App | {NOTE}"));
    assert_timing(&boot2, t1, Duration::ZERO, "the second boot screen");
    let notice = expect_main(&mut g, "the notification").await;
    assert_eq!(
        (notice.package.as_str(), notice.text.as_str()),
        (NOTE, "Ana: lunch at 1?")
    );
    assert_timing(
        &notice,
        t1,
        Duration::from_millis(1_500),
        "the notification",
    );

    // 3. While the notifier holds the lock and is on screen, the core app's
    //    display is dropped (but remembered as its latest)...
    g.send(command(
        NAV,
        json!([{"text": "Reroute: turn right", "durationMs": 60000}]),
    ))
    .await;
    nav.wait_event("shown").await;
    let blocked = next_main(&mut g, Duration::from_millis(800)).await;
    assert!(
        blocked.is_none(),
        "nothing may replace the lock holder's display: {blocked:?}"
    );

    // 4. ...and when the notification runs out (2.5 s), "show next" drops
    //    the lock and gives the screen back to the core app's latest.
    let back = expect_main(&mut g, "the core app's display after expiry").await;
    assert_eq!(
        (back.package.as_str(), back.text.as_str()),
        (NAV, "Reroute: turn right")
    );
    assert_timing(
        &back,
        notice.at,
        Duration::from_millis(2_500),
        "the core app after the notification expired",
    );

    // 5. Throttle: three displays sent back to back once the window is
    //    open. The first shows at once; the other two share the app's one
    //    throttle slot, where the latest wins, 300 ms after the first.
    tokio::time::sleep(Duration::from_millis(400)).await;
    g.send(command(
        NAV,
        json!([{"text": "In 50 m", "durationMs": 60000},
               {"text": "In 20 m", "durationMs": 60000},
               {"text": "Now", "durationMs": 60000}]),
    ))
    .await;
    let a = expect_main(&mut g, "the first of three quick displays").await;
    assert_eq!(a.text, "In 50 m");
    let c = expect_main(&mut g, "the throttled display").await;
    assert_eq!(c.text, "Now", "the latest request of the slot wins");
    assert_timing(
        &c,
        a.at,
        Duration::from_millis(300),
        "the throttled display",
    );
    let more = next_main(&mut g, Duration::from_millis(500)).await;
    assert!(more.is_none(), "a replaced request was shown: {more:?}");

    // 6. The core app stops: its display is forgotten and, with nothing
    //    else valid, the screen is cleared.
    g.send(json!({"type": "stop_app", "packageName": NAV}))
        .await;
    let clear = expect_main(&mut g, "the clear screen").await;
    assert_eq!(
        (clear.package.as_str(), clear.text.as_str()),
        (DASHBOARD, "")
    );
    assert_eq!(clear.duration_ms, Some(0));

    let _ = nav.child.kill().await;
    let _ = note.child.kill().await;
    server.stop().await;
}

/// The latest `dashboard` view render, skipping everything else.
async fn expect_dashboard(g: &mut Client, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    g.expect(what, |v| {
        v["type"] == "display_event"
            && v["view"] == "dashboard"
            && v["packageName"] == DASHBOARD
            && pred(&v["layout"])
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_system_sections_and_app_content() {
    let (server, mut fake, mut g) = setup("dash@example.com").await;
    // Every session has a dashboard, sent when the glasses connect.
    let first = expect_dashboard(&mut g, "the first dashboard", |l| {
        l["layoutType"] == "double_text_wall"
    })
    .await;
    assert!(first["layout"]["topText"].as_str().is_some());

    g.send(json!({"type": "glasses_battery_update", "level": 73, "charging": true}))
        .await;
    expect_dashboard(&mut g, "the battery", |l| {
        l["bottomText"]
            .as_str()
            .is_some_and(|t| t.starts_with("73% charging"))
    })
    .await;
    g.send(
        json!({"type": "phone_notification", "notificationId": "n1", "app": "Chat",
                  "title": "Ana", "content": "lunch?", "priority": "normal"}),
    )
    .await;
    expect_dashboard(&mut g, "the unread count", |l| {
        l["topText"]
            .as_str()
            .is_some_and(|t| t.ends_with("\n1 notification"))
    })
    .await;

    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(
        json!({"type": "dashboard_content_update", "packageName": PKG, "sessionId": "x",
                    "content": "3 tasks due", "modes": ["main"]}),
    )
    .await;
    expect_dashboard(&mut g, "the app's content", |l| {
        l["bottomText"]
            .as_str()
            .is_some_and(|t| t.ends_with("3 tasks due"))
    })
    .await;

    // Only the dashboard package may change modes or system sections.
    app.send(json!({"type": "dashboard_mode_change", "mode": "expanded"}))
        .await;
    assert_eq!(
        app.expect_type("tpa_connection_error").await["code"],
        "FORBIDDEN"
    );

    // Stopping the app takes its content off the dashboard.
    g.send(json!({"type": "stop_app", "packageName": PKG}))
        .await;
    expect_dashboard(&mut g, "the dashboard without the app", |l| {
        l["bottomText"]
            .as_str()
            .is_some_and(|t| !t.contains("3 tasks due"))
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_app_connects_without_a_webhook_and_drives_the_dashboard() {
    let server = TestServer::start_with(|_| {}, Arc::new(MemoryStore::new()));
    let fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    server
        .register(
            DASHBOARD,
            "http://127.0.0.1:9",
            "dash-key",
            AppType::Background,
        )
        .await;
    let email = "dash-app@example.com";
    let mut g = Client::glasses(&server, email).await;
    let mut fake = fake;
    let mut other = start_app(&mut g, &mut fake, PKG).await;

    let mut dash = Client::connect(&server.ws_url("/app-ws"), None)
        .await
        .expect("connect");
    dash.send(
        json!({"type": "tpa_connection_init", "packageName": DASHBOARD,
                     "sessionId": format!("{email}-{DASHBOARD}"), "apiKey": "dash-key"}),
    )
    .await;
    dash.expect_type("tpa_connection_ack").await;

    dash.send(json!({"type": "dashboard_system_update", "section": "topLeft", "content": "Hello"}))
        .await;
    expect_dashboard(&mut g, "the custom section", |l| l["topText"] == "Hello").await;
    dash.send(json!({"type": "dashboard_system_update", "section": "middle", "content": "x"}))
        .await;
    assert_eq!(
        dash.expect_type("tpa_connection_error").await["code"],
        "INVALID_DASHBOARD_SECTION"
    );

    dash.send(json!({"type": "dashboard_mode_change", "mode": "expanded"}))
        .await;
    let changed = other.expect_type("dashboard_mode_changed").await;
    assert_eq!(changed["mode"], "expanded");
    expect_dashboard(&mut g, "the expanded dashboard", |l| {
        l["layoutType"] == "text_wall"
            && l["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("No expanded content available"))
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_glasses_get_the_current_display_and_invalid_requests_change_nothing() {
    let (server, mut fake, mut g) = setup("return@example.com").await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(
        json!({"type": "display_event", "view": "main", "durationMs": 60000,
                    "layout": {"layoutType": "text_wall", "text": "Keep me"}}),
    )
    .await;
    assert_eq!(
        g.expect_display_from(PKG).await["layout"]["text"],
        "Keep me"
    );

    // Bad requests get an error; the screen keeps what it shows.
    for bad in [
        json!({"type": "display_event", "view": "main", "layout": {"layoutType": "reference_card", "title": "t"}}),
        json!({"type": "display_event", "view": "main", "durationMs": -5, "layout": {"layoutType": "text_wall", "text": "x"}}),
        json!({"type": "display_event", "view": "main", "layout": {"layoutType": "bitmap_view", "data": "A".repeat(1_100_000)}}),
    ] {
        app.send(bad).await;
        let err = app.expect_type("tpa_connection_error").await;
        assert_eq!(err["code"], "MALFORMED_MESSAGE", "{err}");
    }
    let after = next_main(&mut g, Duration::from_millis(500)).await;
    assert!(
        after.is_none(),
        "an invalid request reached the glasses: {after:?}"
    );

    // The glasses drop and return within the grace period: they get the
    // display that is still on screen.
    g.close(1006).await;
    let mut g = Client::glasses(&server, "return@example.com").await;
    let restored = g.expect_display_from(PKG).await;
    assert_eq!(restored["layout"]["text"], "Keep me");
    server.stop().await;
}
