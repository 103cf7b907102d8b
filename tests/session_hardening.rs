//! What a hostile app or a quick user must not be able to do to a session:
//! multiply one event into thousands of frames (the stall test is in
//! `hostile_subscriptions.rs`, alone in its binary so that no other test
//! competes for the two cores while it measures), lose a stop sent right after a start, leave
//! the store saying a stopped app runs, or make the microphone flap when
//! an app re-subscribes.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::outage::OutageStore;
use common::*;
use serde_json::{json, Value};
use sightline::store::AppType;

/// 20 000 subscriptions that differ only in a query suffix: one press
/// becomes at most the per-app limit of frames, not 20 000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_not_multiplied_past_the_subscription_limit() {
    let (server, mut fake, mut g) = setup_with(
        |c| c.runtime.max_subscriptions_per_app = 40,
        "suffix@example.com",
    )
    .await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    let list: Vec<Value> = (0..20_000)
        .map(|n| json!(format!("button_press?{n}")))
        .collect();
    app.send(json!({"type": "subscription_update", "subscriptions": list}))
        .await;
    app.expect_type("tpa_connection_error").await;
    g.send(json!({"type": "button_press", "buttonId": "one", "pressType": "short"}))
        .await;
    let frames = app.drain(Duration::from_millis(500)).await;
    let presses = frames
        .iter()
        .filter(|v| v["type"] == "data_stream" && v["data"]["buttonId"] == "one")
        .count();
    assert_eq!(presses, 40);
    server.stop().await;
}

/// A server whose store takes `lookup` to find an app and `add_running`
/// to record a running one, with [`PKG`] registered and glasses connected.
async fn slow_store_setup(
    email: &str,
    lookup: Duration,
    add_running: Duration,
) -> (TestServer, Arc<OutageStore>, FakeApp, Client) {
    let store = Arc::new(OutageStore::default());
    let server = TestServer::start_with(|_| {}, store.clone());
    let fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    store.set_lookup_delay(lookup);
    store.set_add_running_delay(add_running);
    let glasses = Client::glasses(&server, email).await;
    (server, store, fake, glasses)
}

async fn running_in_store(server: &TestServer, email: &str) -> Vec<String> {
    server
        .store
        .get_user(email)
        .await
        .expect("store")
        .map(|u| u.running_apps)
        .unwrap_or_default()
}

/// `start_app` then `stop_app` in one tick, while the app's lookup is
/// still under way: the stop wins. The app server is never asked to start
/// a session (or, had it been, it would get its `stop_request`), no app
/// socket is accepted, and nothing says the app runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_sent_right_after_a_start_wins() {
    let email = "quick@example.com";
    let (server, _store, fake, mut g) =
        slow_store_setup(email, Duration::from_millis(300), Duration::ZERO).await;
    g.send(json!({"type": "start_app", "packageName": PKG}))
        .await;
    g.send(json!({"type": "stop_app", "packageName": PKG}))
        .await;
    // Everything the glasses hear until the session has been quiet for
    // longer than the lookup takes.
    let heard = g.drain(Duration::from_millis(800)).await;
    let last_state = heard
        .iter()
        .rev()
        .find(|v| v["type"] == "app_state_change")
        .expect("an app state");
    let session = &last_state["userSession"];
    for list in ["activeAppSessions", "loadingApps"] {
        assert!(
            session[list]
                .as_array()
                .is_none_or(|a| a.iter().all(|p| p != PKG)),
            "{list}: {session}"
        );
    }
    let hooks = fake.webhook_types();
    let starts = hooks.iter().filter(|t| *t == "session_request").count();
    let stops = hooks.iter().filter(|t| *t == "stop_request").count();
    assert!(
        starts == stops,
        "every session_request is followed by its stop: {hooks:?}"
    );
    assert!(running_in_store(&server, email).await.is_empty());
    server.stop().await;
}

/// Start, stop, start in one tick: the last intent wins, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_start_in_one_tick_runs_the_app_once() {
    let email = "thrice@example.com";
    let (server, _store, mut fake, mut g) =
        slow_store_setup(email, Duration::from_millis(200), Duration::ZERO).await;
    for kind in ["start_app", "stop_app", "start_app"] {
        g.send(json!({"type": kind, "packageName": PKG})).await;
    }
    let (_app, ack) = fake.next_socket().await;
    assert_eq!(ack["type"], "tpa_connection_ack");
    g.expect("app running", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["activeAppSessions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p == PKG))
    })
    .await;
    let hooks = fake.webhook_types();
    assert_eq!(
        hooks.iter().filter(|t| *t == "session_request").count(),
        1,
        "{hooks:?}"
    );
    server.stop().await;
}

/// A stop right after the app connected, while the store is still slowly
/// recording that it runs: the store ends up saying it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_apps_are_persisted_in_the_order_they_happened() {
    let email = "order@example.com";
    let (server, store, mut fake, mut g) =
        slow_store_setup(email, Duration::ZERO, Duration::from_millis(400)).await;
    let _app = start_app(&mut g, &mut fake, PKG).await;
    g.send(json!({"type": "stop_app", "packageName": PKG}))
        .await;
    eventually("both writes landed", || {
        store.running_writes.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(running_in_store(&server, email).await.is_empty());
    server.stop().await;
}

/// An app re-subscribing (the SDK sends `[]`, then its list) does not
/// switch the microphone off and on; when no app wants audio any more the
/// microphone goes off once, after the off delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubscribe_does_not_make_the_microphone_flap() {
    let (server, mut fake, mut g) = setup("mic@example.com").await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update", "subscriptions": ["audio_chunk"]}))
        .await;
    g.expect("mic on", |v| {
        v["type"] == "microphone_state_change" && v["isMicrophoneEnabled"] == true
    })
    .await;
    app.send(json!({"type": "subscription_update", "subscriptions": []}))
        .await;
    app.send(
        json!({"type": "subscription_update", "subscriptions": ["audio_chunk", "button_press"]}),
    )
    .await;
    let heard = g.drain(Duration::from_millis(1_500)).await;
    let mic: Vec<&Value> = heard
        .iter()
        .filter(|v| v["type"] == "microphone_state_change")
        .collect();
    assert!(mic.is_empty(), "the microphone flapped: {mic:?}");

    let asked_off = Instant::now();
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    let off = g
        .expect("mic off", |v| v["type"] == "microphone_state_change")
        .await;
    assert_eq!(off["isMicrophoneEnabled"], false);
    assert!(
        asked_off.elapsed() >= Duration::from_millis(900),
        "off after the delay, not at once ({:?})",
        asked_off.elapsed()
    );
    server.stop().await;
}
