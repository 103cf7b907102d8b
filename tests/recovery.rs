//! Recovery paths of the core runtime: an app socket that drops and comes
//! back within its grace period, an app that released its session, a
//! replaced glasses connection, and running apps surviving a server restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sightline::store::{AppType, EmbeddedStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_reconnect_within_grace_keeps_subscriptions() {
    let (server, mut fake, mut g) = setup("ivy@example.com").await;
    let app = start_app(&mut g, &mut fake, PKG).await;
    let mut app = app;
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
    })
    .await;

    // Abnormal drop (the SDK would now retry with the same sessionId).
    app.close(1006).await;
    wait_app_state(&server, "ivy@example.com", PKG, "reconnecting").await;
    let mut again = Client::connect(&server.ws_url("/app-ws"), None)
        .await
        .unwrap();
    again
        .send(json!({"type": "tpa_connection_init", "sessionId": format!("ivy@example.com-{PKG}"), "packageName": PKG, "apiKey": KEY}))
        .await;
    again.expect_type("tpa_connection_ack").await;
    // The SDK resends its list after the ack; an empty one right after a
    // reconnect must not wipe the subscriptions.
    again
        .send(json!({"type": "subscription_update", "subscriptions": []}))
        .await;
    settled(&mut again).await;
    g.send(json!({"type": "button_press", "buttonId": "power", "pressType": "short"}))
        .await;
    let ev = again.expect_type("data_stream").await;
    assert_eq!(ev["streamType"], "button_press");
    assert_eq!(
        fake.webhook_types(),
        vec!["session_request"],
        "no resurrection needed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_app_is_not_resurrected() {
    let (server, mut fake, mut g) = setup_with(
        |c| c.runtime.app_reconnect_grace = Duration::from_millis(400),
        "jo@example.com",
    )
    .await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "ownership_release", "reason": "clean_shutdown"}))
        .await;
    settled(&mut app).await;
    app.close(1000).await;
    let state = g
        .expect("app marked stopped", |v| {
            v["type"] == "app_state_change" && v["error"].is_string()
        })
        .await;
    assert_eq!(state["userSession"]["activeAppSessions"], json!([]));
    assert_eq!(fake.webhook_types(), vec!["session_request"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_app_is_resurrected_with_a_fresh_webhook() {
    let (server, mut fake, mut g) = setup_with(
        |c| c.runtime.app_reconnect_grace = Duration::from_millis(400),
        "kim@example.com",
    )
    .await;
    let app = start_app(&mut g, &mut fake, PKG).await;
    app.close(1011).await;
    let (_fresh, ack) = fake.next_socket().await;
    assert_eq!(ack["type"], "tpa_connection_ack");
    eventually("stop_request then session_request", || {
        fake.webhook_types() == vec!["session_request", "stop_request", "session_request"]
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_glasses_connection_replaces_the_old_one() {
    let server = TestServer::start();
    let mut first = Client::glasses(&server, "lee@example.com").await;
    let _second = Client::glasses(&server, "lee@example.com").await;
    let closed = first.expect_close().await;
    assert_eq!(closed.code, 4001);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_apps_restart_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    {
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let server = TestServer::start_with(|_| {}, store);
        server
            .register(PKG, &fake.url, KEY, AppType::Standard)
            .await;
        let mut g = Client::glasses(&server, "max@example.com").await;
        let _app = start_app(&mut g, &mut fake, PKG).await;
        server.stop().await;
    }
    // The first server's actors let go of the store file as they wind down
    // (slower on a loaded machine): reopen it once they have.
    let deadline = tokio::time::Instant::now() + WAIT;
    let store = loop {
        match EmbeddedStore::open(dir.path()) {
            Ok(s) => break Arc::new(s),
            Err(e) if tokio::time::Instant::now() > deadline => panic!("store still held: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let server = TestServer::start_with(|_| {}, store);
    let mut g = Client::glasses(&server, "max@example.com").await;
    let (_app, ack) = fake.next_socket().await;
    assert_eq!(ack["sessionId"], format!("max@example.com-{PKG}"));
    g.expect("restarted", |v| {
        v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([PKG])
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_restart_waits_for_the_stop_webhook() {
    let server = TestServer::start();
    let mut fake =
        FakeApp::start_with(PKG, KEY, AppBehaviour::Connect, Duration::from_millis(400)).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let mut g = Client::glasses(&server, "ned@example.com").await;
    let _app = start_app(&mut g, &mut fake, PKG).await;
    g.send(json!({"type": "stop_app", "packageName": PKG}))
        .await;
    g.send(json!({"type": "start_app", "packageName": PKG}))
        .await;
    let (_again, _) = fake.next_socket().await;
    assert_eq!(
        fake.webhook_types(),
        vec![
            "session_request",
            "stop_request",
            "stop_answered",
            "session_request"
        ]
    );
    server.stop().await;
}
