//! Failure modes of the original cloud, each provoked on purpose over real
//! sockets with short timings: four of the five integration scenarios of
//! the design documents (reconnection cascade, app failure recovery,
//! malformed input, store outage; high-load churn is in tests/churn.rs), a
//! ghost client, and a failing app server behind its circuit breaker.
//! docs/reliability.md maps each failure mode to the test that proves
//! Sightline handles it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::outage::OutageStore;
use common::*;
use serde_json::{json, Value};
use sightline::server::ServerConfig;
use sightline::store::{AppType, MemoryStore};
use tokio_tungstenite::tungstenite::Message;

/// Heartbeat timings short enough for tests.
fn fast_health(c: &mut ServerConfig) {
    c.runtime.heartbeat_interval = Duration::from_millis(100);
    c.runtime.connection_timeout = Duration::from_millis(400);
}

async fn stats(server: &TestServer) -> Value {
    let (status, body) = http(server.addr, "GET", "/stats", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("stats json")
}

fn data_of(v: &Value) -> Option<&str> {
    (v["type"] == "data_stream").then(|| v["data"]["buttonId"].as_str().unwrap_or(""))
}

async fn subscribe(app: &mut Client, g: &mut Client, package: &str, streams: Value) {
    app.send(json!({"type": "subscription_update", "subscriptions": streams.clone()}))
        .await;
    g.expect("subscriptions applied", |v| {
        v["type"] == "app_state_change" && v["userSession"]["appSubscriptions"][package] == streams
    })
    .await;
}

async fn press(g: &mut Client, id: &str) {
    g.send(json!({"type": "button_press", "buttonId": id, "pressType": "short"}))
        .await;
}

/// Scenario 1: the glasses drop; apps stay up and hear DISCONNECTED; the
/// glasses return; the apps, subscriptions and display are restored, and
/// the apps hear CONNECTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_cascade_restores_the_session() {
    let email = "cascade@example.com";
    let (server, mut fake, mut g) = setup(email).await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    subscribe(
        &mut app,
        &mut g,
        PKG,
        json!(["button_press", "glasses_connection_state"]),
    )
    .await;
    app.send(
        json!({"type": "display_event", "view": "main", "durationMs": 60000,
                    "layout": {"layoutType": "text_wall", "text": "Turn left"}}),
    )
    .await;
    g.expect_display_from(PKG).await;

    g.close(1006).await;
    let down = app.expect_type("data_stream").await;
    assert_eq!(down["streamType"], "glasses_connection_state");
    assert_eq!(down["data"]["status"], "DISCONNECTED");

    let mut g = Client::connect(&server.ws_url("/glasses-ws"), Some(&token(email)))
        .await
        .expect("reconnect");
    g.expect_type("connection_ack").await;
    let state = g
        .expect("app state", |v| v["type"] == "app_state_change")
        .await;
    assert_eq!(state["userSession"]["activeAppSessions"], json!([PKG]));
    assert_eq!(
        state["userSession"]["appSubscriptions"][PKG],
        json!(["button_press", "glasses_connection_state"])
    );
    assert_eq!(
        g.expect_display_from(PKG).await["layout"]["text"],
        "Turn left"
    );
    let up = app.expect_type("data_stream").await;
    assert_eq!(up["data"]["status"], "CONNECTED");
    press(&mut g, "after").await;
    assert_eq!(
        data_of(&app.expect_type("data_stream").await),
        Some("after")
    );
    assert_eq!(fake.webhook_types(), vec!["session_request"]);
    server.stop().await;
}

/// Scenario 2a: the app's connection is killed mid-session; events sent
/// while it is away are kept and delivered, in order, before new ones when
/// it re-inits with the same session id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_while_an_app_reconnects_are_replayed_in_order() {
    let email = "replay@example.com";
    let (server, mut fake, mut g) = setup(email).await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    subscribe(&mut app, &mut g, PKG, json!(["button_press"])).await;

    app.close(1006).await;
    wait_app_state(&server, email, PKG, "reconnecting").await;
    for id in ["b1", "b2", "b3"] {
        press(&mut g, id).await;
    }
    eventually_async("three events kept", || async {
        let view = session_view(&server, email).await;
        view["apps"][0]["keptEvents"] == 3
    })
    .await;

    let mut again = Client::connect(&server.ws_url("/app-ws"), None)
        .await
        .expect("reconnect");
    again
        .send(
            json!({"type": "tpa_connection_init", "sessionId": format!("{email}-{PKG}"),
                     "packageName": PKG, "apiKey": KEY}),
        )
        .await;
    again.expect_type("tpa_connection_ack").await;
    press(&mut g, "b4").await;
    let mut got = Vec::new();
    while got.len() < 4 {
        let v = again.expect_type("data_stream").await;
        got.push(data_of(&v).unwrap_or_default().to_string());
    }
    assert_eq!(got, ["b1", "b2", "b3", "b4"]);

    let figures = stats(&server).await;
    assert_eq!(figures["health"]["replayedEvents"], 3);
    assert_eq!(figures["health"]["appReconnects"], 1);
    let (status, body) = http(
        server.addr,
        "GET",
        &format!("/stats?user={email}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mine: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(mine["session"]["figures"]["replayedEvents"], 3);
    assert_eq!(mine["session"]["figures"]["appReconnects"], 1);
    let watched = mine["session"]["monitor"]["connections"]
        .as_array()
        .expect("connections");
    assert_eq!(watched.len(), 2, "the glasses and the app: {mine}");
    assert!(watched
        .iter()
        .any(|c| c["kind"] == "app" && c["package"] == PKG));
    server.stop().await;
}

/// Scenario 2b: the app's whole server process dies mid-session and comes
/// back on the same port. The grace period runs out, Sightline restarts the
/// app (stop_request, then a fresh session_request), the new SDK session
/// subscribes again and receives every event sent during the gap, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_server_that_dies_and_returns_gets_the_events_of_the_gap() {
    let server = TestServer::start_with(
        |c| c.runtime.app_reconnect_grace = Duration::from_millis(1_500),
        Arc::new(MemoryStore::new()),
    );
    let package = "com.sightline.phoenix";
    let mut sdk = SdkApp::conformance(package, "early").await;
    let port: u16 = sdk
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Standard)
        .await;
    let mut g = Client::glasses(&server, "phoenix@example.com").await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][package]
                .as_array()
                .is_some_and(|a| a.len() == 3)
    })
    .await;

    sdk.child.kill().await.expect("kill the app server");
    wait_app_state(&server, "phoenix@example.com", package, "reconnecting").await;
    for id in ["g1", "g2", "g3"] {
        press(&mut g, id).await;
    }
    let mut sdk = SdkApp::start_on("app.mjs", package, port, &[("HANDLERS", "early")]).await;
    sdk.wait_event("session").await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let v = sdk.wait_event("button_press").await;
        got.push(
            v["data"]["buttonId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(got, ["g1", "g2", "g3"]);
    press(&mut g, "g4").await;
    assert_eq!(
        sdk.wait_event("button_press").await["data"]["buttonId"],
        "g4"
    );

    let figures = stats(&server).await;
    assert_eq!(figures["health"]["resurrections"], 1);
    assert_eq!(figures["health"]["replayedEvents"], 3);
    let _ = sdk.child.kill().await;
    server.stop().await;
}

/// Scenario 3: garbage text and binary frames in one session; that session
/// keeps working and another user's session sees nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_stays_in_its_session() {
    let server = TestServer::start();
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let mut bad = Client::glasses(&server, "noisy@example.com").await;
    let mut good = Client::glasses(&server, "calm@example.com").await;
    let mut bad_app = start_app(&mut bad, &mut fake, PKG).await;
    let mut good_app = start_app(&mut good, &mut fake, PKG).await;
    subscribe(&mut bad_app, &mut bad, PKG, json!(["button_press"])).await;
    subscribe(&mut good_app, &mut good, PKG, json!(["button_press"])).await;

    let junk = [
        Message::text("{not json"),
        Message::text("[1,2,3]"),
        Message::text(json!({"type": 42}).to_string()),
        Message::text(json!({"type": "start_app"}).to_string()),
        Message::text("\u{0}\u{1}\u{2}"),
        Message::binary(vec![0xff; 3]),
        Message::binary(vec![0u8; 64 * 1024]),
    ];
    for m in junk {
        bad.send_raw(m).await;
    }
    let errors = bad
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|v| v["type"] == "connection_error")
        .count();
    assert!(errors >= 4, "each bad text frame is answered: {errors}");

    press(&mut bad, "still-works").await;
    assert_eq!(
        data_of(&bad_app.expect_type("data_stream").await),
        Some("still-works")
    );
    let leaked: Vec<Value> = good_app.drain(Duration::from_millis(300)).await;
    assert!(leaked.is_empty(), "another session saw: {leaked:?}");
    let leaked: Vec<Value> = good
        .drain(Duration::from_millis(100))
        .await
        .into_iter()
        .filter(|v| v["type"] != "display_event")
        .collect();
    assert!(leaked.is_empty(), "another user's glasses saw: {leaked:?}");
    press(&mut good, "calm").await;
    assert_eq!(
        data_of(&good_app.expect_type("data_stream").await),
        Some("calm")
    );
    server.stop().await;
}

/// Scenario 5: the store becomes unavailable. Running sessions go on (and
/// their glasses can reconnect); new logins and registrations fail with a
/// clear error; everything works again, without a restart, when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_spares_running_sessions_and_heals() {
    let store = Arc::new(OutageStore::default());
    let server = TestServer::start_with(|_| {}, store.clone());
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let email = "steady@example.com";
    let mut g = Client::glasses(&server, email).await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    subscribe(&mut app, &mut g, PKG, json!(["button_press"])).await;

    store.set_down(true);
    press(&mut g, "during").await;
    assert_eq!(
        data_of(&app.expect_type("data_stream").await),
        Some("during")
    );
    // The running user's glasses drop and come back: same session.
    g.close(1006).await;
    let mut g = Client::glasses(&server, email).await;
    press(&mut g, "back").await;
    assert_eq!(data_of(&app.expect_type("data_stream").await), Some("back"));

    match Client::connect(
        &server.ws_url("/glasses-ws"),
        Some(&token("newcomer@example.com")),
    )
    .await
    {
        Err((status, body)) => {
            assert_eq!(status, 503);
            assert!(body.contains("STORE_UNAVAILABLE"), "{body}");
        }
        Ok(_) => panic!("a new login cannot succeed while the store is down"),
    }
    let app_json = json!({"packageName": "com.example.later", "publicUrl": "http://127.0.0.1:9",
                          "apiKey": "later-api-key"});
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(app_json.clone()),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let err: Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(err["error"]["code"], "STORE_UNAVAILABLE");
    assert_eq!(http(server.addr, "GET", "/ready", None, None).await.0, 503);

    store.set_down(false);
    assert_eq!(http(server.addr, "GET", "/ready", None, None).await.0, 200);
    Client::glasses(&server, "newcomer@example.com").await;
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(app_json),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    press(&mut g, "healed").await;
    assert_eq!(
        data_of(&app.expect_type("data_stream").await),
        Some("healed")
    );
    server.stop().await;
}

/// A ghost client: the TCP connection stays open but nothing answers the
/// pings. It is closed 1001 "Connection timeout detected" within the
/// timeout plus one heartbeat interval, and the session learns it in the
/// same step (its app hears DISCONNECTED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_glasses_client_is_closed_within_timeout_and_one_interval() {
    let email = "ghost@example.com";
    let (server, mut fake, mut g) = setup_with(fast_health, email).await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    subscribe(&mut app, &mut g, PKG, json!(["glasses_connection_state"])).await;
    // From here on the glasses client is never read: it answers no ping.
    let silent_since = Instant::now();
    let down = app.expect_type("data_stream").await;
    let after = silent_since.elapsed();
    assert_eq!(down["data"]["status"], "DISCONNECTED");
    let limit = Duration::from_millis(400 + 100 + 150);
    assert!(
        after <= limit,
        "the ghost was noticed after {after:?}; limit {limit:?}"
    );
    let closed = g.expect_close().await;
    assert_eq!(closed.code, 1001);
    assert_eq!(closed.reason, "Connection timeout detected");
    let figures = stats(&server).await;
    assert_eq!(figures["health"]["glassesTimeouts"], 1);
    server.stop().await;
}

/// A live but quiet client is not a ghost: it answers pings, so it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_client_that_answers_pings_stays_connected() {
    let (server, _fake, mut g) = setup_with(fast_health, "quiet@example.com").await;
    // Reading answers the pings; nothing else is sent for 3 timeouts.
    let seen = g.drain(Duration::from_millis(1_200)).await;
    assert!(seen.iter().all(|v| v["type"] != "connection_error"));
    g.send(json!({"type": "request_settings"})).await;
    g.expect_type("settings_update").await;
    server.stop().await;
}

/// An app server that keeps failing opens its circuit breaker: further
/// webhook calls fail at once (counted), visible in the stats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_app_server_opens_its_circuit_breaker() {
    let server = TestServer::start_with(
        |c| {
            c.runtime.webhook_initial_backoff = Duration::from_millis(20);
            c.runtime.app_start_timeout = Duration::from_millis(1_500);
            c.runtime.webhook_breaker.failure_threshold = 3;
            c.runtime.webhook_breaker.cooldown = Duration::from_secs(30);
        },
        Arc::new(MemoryStore::new()),
    );
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{closed_port}");
    server
        .register("com.example.down", &url, KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, "breaker@example.com").await;
    g.send(json!({"type": "start_app", "packageName": "com.example.down"}))
        .await;
    g.expect("start abandoned", |v| {
        v["type"] == "app_state_change" && v["error"].is_string()
    })
    .await;
    let s = stats(&server).await;
    assert!(
        s["health"]["webhookFastFailures"].as_u64().unwrap_or(0) >= 1,
        "{s}"
    );
    let breaker = &s["webhookBreakers"][0];
    assert_eq!(breaker["origin"], url);
    assert!(breaker["openForMs"].as_u64().unwrap_or(0) > 0, "{s}");
    server.stop().await;
}
