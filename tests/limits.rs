//! Every limit of `crates/sightline-server/src/limits.rs`, hit on purpose
//! over real sockets: oversized frames, a flood of messages, the connection
//! cap, one app socket per (user, package), and an app that stops reading
//! while another app of the same session keeps receiving on time.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sightline::server::limits::Rate;
use sightline::store::AppType;
use tokio_tungstenite::tungstenite::Message;

const OTHER_PKG: &str = "com.example.weather";
const OTHER_KEY: &str = "weather-api-key";

async fn metric(server: &TestServer, key: &str) -> f64 {
    metric_sample(&scrape(server).await, key)
}

async fn subscribe(app: &mut Client, g: &mut Client, package: &str) {
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][package] == json!(["button_press"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_close_the_socket_1009_and_nothing_else() {
    let (server, mut fake, mut g) = setup_with(
        |c| {
            c.limits.glasses_text_bytes = 4 * 1024;
            c.limits.glasses_binary_bytes = 2 * 1024;
            c.limits.app_text_bytes = 8 * 1024;
        },
        "big@example.com",
    )
    .await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    subscribe(&mut app, &mut g, PKG).await;
    let mut bystander = Client::glasses(&server, "bystander@example.com").await;

    // An app message over 8 KiB.
    let huge = "x".repeat(9 * 1024);
    app.send(json!({"type": "display_event", "layout": {"layoutType": "text_wall", "text": huge}}))
        .await;
    assert_eq!(app.expect_close().await.code, 1009);

    // A glasses text message over 4 KiB, then (new socket) audio over 2 KiB.
    g.send(json!({"type": "button_press", "buttonId": "x".repeat(5 * 1024)}))
        .await;
    assert_eq!(g.expect_close().await.code, 1009);
    let mut g = Client::glasses(&server, "big@example.com").await;
    g.send_raw(Message::Binary(vec![0; 3 * 1024])).await;
    assert_eq!(g.expect_close().await.code, 1009);
    // Within the limits all is well, for this user and the other.
    let mut g = Client::glasses(&server, "big@example.com").await;
    g.send(json!({"type": "request_settings"})).await;
    g.expect_type("settings_update").await;
    bystander.send(json!({"type": "request_settings"})).await;
    bystander.expect_type("settings_update").await;
    assert!(metric(&server, r#"sightline_limit_refusals_total{limit="size"}"#).await >= 3.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_then_closed_without_touching_other_users() {
    let (server, mut fake, mut g) = setup_with(
        |c| {
            c.limits.glasses_rate = Rate {
                per_second: 1,
                burst: 20,
            }
        },
        "flood@example.com",
    )
    .await;
    let mut calm = Client::glasses(&server, "calm@example.com").await;
    let mut calm_app = start_app(&mut calm, &mut fake, PKG).await;
    subscribe(&mut calm_app, &mut calm, PKG).await;

    // 20 messages pass (the burst), the 21st is refused with an error.
    for i in 0..21 {
        g.send(
            json!({"type": "head_position", "position": if i % 2 == 0 { "up" } else { "down" }}),
        )
        .await;
    }
    let err = g.expect_type("connection_error").await;
    assert_eq!(err["code"], "RATE_LIMITED", "{err}");
    // Keep flooding: the connection is closed 1008.
    for _ in 0..100 {
        g.send(json!({"type": "head_position", "position": "up"}))
            .await;
    }
    let closed = g.expect_close().await;
    assert_eq!(closed.code, 1008, "{closed:?}");
    assert_eq!(closed.reason, "Message rate limit exceeded");

    // The calm user never noticed.
    calm.send(json!({"type": "button_press", "buttonId": "calm", "pressType": "short"}))
        .await;
    let ev = calm_app.expect_type("data_stream").await;
    assert_eq!(ev["data"]["buttonId"], "calm");
    assert!(metric(&server, r#"sightline_limit_refusals_total{limit="rate"}"#).await >= 1.0);
    assert_eq!(
        metric(
            &server,
            r#"sightline_limit_refusals_total{limit="rate_close"}"#
        )
        .await,
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_refuses_with_503_until_a_slot_frees() {
    let server = TestServer::start_with(
        |c| c.limits.max_connections = 2,
        std::sync::Arc::new(sightline::store::MemoryStore::new()),
    );
    let a = Client::glasses(&server, "a@example.com").await;
    let _b = Client::glasses(&server, "b@example.com").await;
    // An app socket before its init counts against the pre-auth budget
    // (tests/wire_admission.rs), not this cap.
    let _unauthenticated = Client::connect(&server.ws_url("/app-ws"), None)
        .await
        .expect("an unauthenticated app socket");
    let refused = Client::connect(&server.ws_url("/glasses-ws"), Some(&token("c@example.com")))
        .await
        .err()
        .expect("third connection refused");
    assert_eq!(refused.0, 503, "{refused:?}");
    let body: Value = serde_json::from_str(&refused.1).expect("json");
    assert_eq!(body["code"], "SERVER_FULL");
    a.close(1000).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match Client::connect(&server.ws_url("/glasses-ws"), Some(&token("c@example.com"))).await {
            Ok(_) => break,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "slot never freed: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_app_socket_per_user_and_package() {
    let email = "twice@example.com";
    let (server, mut fake, mut g) = setup(email).await;
    let mut first = start_app(&mut g, &mut fake, PKG).await;
    let mut second = Client::connect(&server.ws_url("/app-ws"), None)
        .await
        .expect("connect");
    second
        .send(
            json!({"type": "tpa_connection_init", "sessionId": format!("{email}-{PKG}"),
                     "packageName": PKG, "apiKey": KEY}),
        )
        .await;
    second.expect_type("tpa_connection_ack").await;
    let closed = first.expect_close().await;
    assert_eq!(closed.code, 1008, "{closed:?}");
    assert!(closed.reason.contains("Superseded"), "{closed:?}");
    subscribe(&mut second, &mut g, PKG).await;
    g.send(json!({"type": "button_press", "buttonId": "b", "pressType": "short"}))
        .await;
    second.expect_type("data_stream").await;
    server.stop().await;
}

/// The sent-at time carried in each test event, in microseconds since the
/// test began.
fn latency_us(v: &Value, start: Instant) -> Option<u64> {
    let sent = v["data"]["sentAtUs"].as_u64()?;
    Some((start.elapsed().as_micros() as u64).saturating_sub(sent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_stops_reading_is_closed_while_another_keeps_receiving_on_time() {
    let email = "slow@example.com";
    let (server, mut notes, mut g) = setup_with(
        |c| {
            // Above the replay buffer's 512 KiB, so a reconnect's replay fits.
            c.limits.send_backlog_bytes = 1024 * 1024;
            c.limits.glasses_rate = Rate {
                per_second: 1_000_000,
                burst: 1_000_000,
            };
            c.runtime.app_reconnect_grace = Duration::from_secs(30);
        },
        email,
    )
    .await;
    let mut weather = FakeApp::start(OTHER_PKG, OTHER_KEY, AppBehaviour::Connect).await;
    server
        .register(OTHER_PKG, &weather.url, OTHER_KEY, AppType::Background)
        .await;
    let mut stalled = start_app(&mut g, &mut notes, PKG).await;
    subscribe(&mut stalled, &mut g, PKG).await;
    let mut reader = start_app(&mut g, &mut weather, OTHER_PKG).await;
    subscribe(&mut reader, &mut g, OTHER_PKG).await;

    // `stalled` never reads again. Glasses send 8 KiB events; `reader`
    // takes each one and measures how long it took to arrive.
    let padding = "p".repeat(8 * 1024);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut sent = 0u64;
    let mut closed_after = None;
    while sent < 20_000 {
        for _ in 0..50 {
            sent += 1;
            let at = start.elapsed().as_micros() as u64;
            g.send(
                json!({"type": "button_press", "buttonId": format!("e{sent}"),
                          "pressType": "short", "sentAtUs": at, "padding": padding}),
            )
            .await;
            let v = reader.expect_type("data_stream").await;
            assert_eq!(v["data"]["buttonId"], format!("e{sent}"), "in order");
            latencies.extend(latency_us(&v, start));
        }
        if metric(&server, "sightline_slow_consumer_closes_total").await >= 1.0 {
            closed_after = Some(sent);
            break;
        }
    }
    let closed_after = closed_after.expect("the stalled app was never closed");
    latencies.sort_unstable();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let (p50, p99) = (p(0.50), p(0.99));
    eprintln!(
        "stalled app closed after {closed_after} events ({} MiB each way); \
         reading app latency p50 {p50} us, p99 {p99} us over {} events",
        closed_after * 8 / 1024,
        latencies.len()
    );
    assert!(p99 < 50_000, "reading app delayed: p99 {p99} us");

    // The stalled socket, once drained, ends with 1013; the app's events
    // since then were kept and arrive when it reconnects.
    for i in 0..3 {
        g.send(
            json!({"type": "button_press", "buttonId": format!("kept{i}"), "pressType": "short"}),
        )
        .await;
        reader.expect_type("data_stream").await;
    }
    let closed = loop {
        match stalled.next_within(Duration::from_secs(10)).await {
            Ok(_) => continue,
            Err(c) => break c,
        }
    };
    assert_eq!(closed.code, 1013, "stalled app closed with {closed:?}");
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
    let mut kept = Vec::new();
    while kept.len() < 3 {
        let v = again.expect_type("data_stream").await;
        if let Some(id) = v["data"]["buttonId"]
            .as_str()
            .filter(|id| id.starts_with("kept"))
        {
            kept.push(id.to_string());
        }
    }
    assert_eq!(kept, ["kept0", "kept1", "kept2"]);
    server.stop().await;
}
