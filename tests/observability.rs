//! What operators see: the actor stats endpoint holds exactly the actors
//! that live, and the Prometheus metrics move with the traffic.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sightline::store::{AppType, MemoryStore};

const OTHER_PKG: &str = "com.example.weather";
const OTHER_KEY: &str = "weather-api-key";

async fn get_json(server: &TestServer, path: &str) -> Value {
    let (status, body) = http(server.addr, "GET", path, Some(ADMIN), None).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// Every node of a tree, depth first.
fn flatten(nodes: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for n in nodes.as_array().into_iter().flatten() {
        out.push(n.clone());
        out.extend(flatten(&n["children"]));
    }
    out
}

fn of_kind<'a>(nodes: &'a [Value], kind: &str) -> Vec<&'a Value> {
    nodes.iter().filter(|n| n["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_tree_holds_exactly_the_live_actors() {
    const USERS: usize = 3;
    let server = TestServer::start_with(
        |c| c.runtime.glasses_grace = Duration::from_millis(300),
        Arc::new(MemoryStore::new()),
    );
    let mut notes = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    let mut weather = FakeApp::start(OTHER_PKG, OTHER_KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &notes.url, KEY, AppType::Background)
        .await;
    server
        .register(OTHER_PKG, &weather.url, OTHER_KEY, AppType::Background)
        .await;

    let mut users = Vec::new();
    for i in 0..USERS {
        let email = format!("tree{i}@example.com");
        let mut g = Client::glasses(&server, &email).await;
        let a = start_app(&mut g, &mut notes, PKG).await;
        let b = start_app(&mut g, &mut weather, OTHER_PKG).await;
        users.push((email, g, a, b));
    }

    let view = get_json(&server, "/actors").await;
    let tree = &view["tree"];
    assert_eq!(tree.as_array().map(Vec::len), Some(1), "one root: {view}");
    assert_eq!(tree[0]["kind"], "supervisor");
    let sessions = tree[0]["children"].as_array().expect("sessions");
    assert_eq!(sessions.len(), USERS, "{view}");
    for (email, ..) in &users {
        let s = sessions
            .iter()
            .find(|s| s["user"] == email.as_str())
            .unwrap_or_else(|| panic!("session of {email} in {view}"));
        assert_eq!(s["kind"], "user-session");
        assert_eq!(s["state"], "active");
        let children = s["children"].as_array().expect("children").clone();
        let kinds = |k: &str| children.iter().filter(|c| c["kind"] == k).count();
        assert_eq!(kinds("glasses-connection"), 1, "{s}");
        assert_eq!(kinds("health-monitor"), 1, "{s}");
        assert_eq!(kinds("app-connection"), 2, "{s}");
        assert_eq!(children.len(), 4, "nothing else under {email}: {s}");
        let mut packages: Vec<_> = children
            .iter()
            .filter(|c| c["kind"] == "app-connection")
            .map(|c| {
                assert_eq!(c["state"], "bound");
                assert_eq!(c["user"], email.as_str());
                c["package"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        packages.sort();
        assert_eq!(packages, [PKG, OTHER_PKG]);
        for c in &children {
            for field in ["startedAt", "lastActivity"] {
                assert!(c[field].is_string(), "{field} of {c}");
            }
            for field in [
                "messagesHandled",
                "mailbox",
                "messagesLastMinute",
                "failures",
                "restarts",
            ] {
                assert!(c[field].is_u64(), "{field} of {c}");
            }
        }
        let glasses = children
            .iter()
            .find(|c| c["kind"] == "glasses-connection")
            .expect("glasses");
        assert!(glasses["messagesHandled"].as_u64() > Some(0), "{glasses}");
    }
    let counts = &view["counts"];
    assert_eq!(counts["user-session"], USERS);
    assert_eq!(counts["glasses-connection"], USERS);
    assert_eq!(counts["app-connection"], USERS * 2);
    assert_eq!(counts["health-monitor"], USERS);
    assert_eq!(view["shown"], 1 + USERS * 5);

    // Filters keep the matches and where they live.
    let one = get_json(&server, "/actors?user=tree1@example.com").await;
    let nodes = flatten(&one["tree"]);
    assert_eq!(of_kind(&nodes, "user-session").len(), 1, "{one}");
    assert_eq!(nodes.len(), 1 + 5, "{one}");
    let by_pkg = get_json(&server, &format!("/actors?package={OTHER_PKG}")).await;
    let nodes = flatten(&by_pkg["tree"]);
    let apps = of_kind(&nodes, "app-connection");
    assert_eq!(apps.len(), USERS, "{by_pkg}");
    assert!(apps.iter().all(|a| a["package"] == OTHER_PKG));
    assert_eq!(of_kind(&nodes, "glasses-connection").len(), 0);

    // One actor by id.
    let id = apps[0]["id"].as_u64().expect("id");
    let actor = get_json(&server, &format!("/actors/{id}")).await;
    assert_eq!(actor["package"], OTHER_PKG);
    let (status, _) = http(server.addr, "GET", "/actors/999999", Some(ADMIN), None).await;
    assert_eq!(status, 404);
    let (status, _) = http(server.addr, "GET", "/actors", None, None).await;
    assert_eq!(status, 401);

    // Everyone leaves: the tree is back to the supervisor alone.
    for (_, g, a, b) in users {
        a.close(1000).await;
        b.close(1000).await;
        g.close(1000).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = get_json(&server, "/actors").await;
        let nodes = flatten(&view["tree"]);
        if nodes.len() == 1 {
            assert_eq!(nodes[0]["kind"], "supervisor");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "actors left behind: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_traffic_flows() {
    let email = "metrics@example.com";
    let (server, mut fake, mut g) = setup(email).await;
    let (status, _) = http(server.addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 401, "metrics need the admin token");

    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
    })
    .await;
    // The webhook's duration is counted when its answer arrives, which the
    // app sends only after its socket is up and subscribed (as the SDK
    // does): it may come a moment after the subscription.
    let webhook_ok = r#"sightline_webhook_duration_seconds_count{outcome="ok"}"#;
    eventually_async("the webhook's duration is counted", || async {
        metric_sample(&scrape(&server).await, webhook_ok) >= 1.0
    })
    .await;
    let before = scrape(&server).await;
    assert_eq!(
        metric_sample(&before, "sightline_sessions"),
        1.0,
        "{before}"
    );
    assert_eq!(
        metric_sample(&before, r#"sightline_connections{kind="app"}"#),
        1.0
    );
    assert_eq!(
        metric_sample(&before, r#"sightline_connections{kind="glasses"}"#),
        1.0
    );
    assert!(metric_sample(&before, "sightline_app_start_seconds_count") >= 1.0);
    assert!(
        metric_sample(
            &before,
            r#"sightline_webhook_duration_seconds_count{outcome="ok"}"#
        ) >= 1.0
    );
    assert_eq!(
        metric_sample(&before, r#"sightline_actors{kind="user-session"}"#),
        1.0
    );

    for i in 0..5 {
        g.send(json!({"type": "button_press", "buttonId": format!("b{i}"), "pressType": "short"}))
            .await;
        app.expect_type("data_stream").await;
    }
    app.send(json!({"type": "display_event", "view": "main",
                    "layout": {"layoutType": "text_wall", "text": "hello"}}))
        .await;
    g.expect_display_from(PKG).await;
    app.send(json!({"type": "display_event", "layout": "not a layout"}))
        .await;
    app.expect_type("tpa_connection_error").await;
    let lc3 = Client::connect(
        &format!(
            "{}?audioCodec=lc3&lc3FrameBytes=40",
            server.ws_url("/glasses-ws")
        ),
        Some(&token("metrics-lc3@example.com")),
    )
    .await;
    let mut lc3 = lc3.unwrap_or_else(|e| panic!("lc3 glasses: {e:?}"));
    for _ in 0..4 {
        lc3.send_raw(tokio_tungstenite::tungstenite::Message::Binary(vec![
            0x5a;
            40
        ]))
        .await;
    }
    lc3.send_raw(tokio_tungstenite::tungstenite::Message::Binary(vec![
        1, 2, 3,
    ]))
    .await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let after = loop {
        let page = scrape(&server).await;
        let lc3_frames = metric_sample(&page, "sightline_lc3_frames_decoded_total")
            + metric_sample(&page, "sightline_lc3_frames_concealed_total");
        // Every binary frame counted too: the LC3 figures alone can reach
        // five before the last frame is read.
        let audio = metric_sample(
            &page,
            r#"sightline_messages_in_total{source="glasses",type="audio"}"#,
        ) - metric_sample(
            &before,
            r#"sightline_messages_in_total{source="glasses",type="audio"}"#,
        );
        if (lc3_frames >= 5.0 && audio >= 5.0) || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delta = |key: &str| metric_sample(&after, key) - metric_sample(&before, key);
    assert_eq!(
        delta(r#"sightline_messages_in_total{source="glasses",type="button_press"}"#),
        5.0,
        "{after}"
    );
    assert!(delta(r#"sightline_messages_out_total{target="app",type="data_stream"}"#) >= 5.0);
    assert_eq!(delta("sightline_fanout_latency_seconds_count"), 5.0);
    assert!(
        metric_sample(&after, "sightline_fanout_latency_seconds_sum") < 5.0,
        "five local relays took seconds: {after}"
    );
    assert!(delta(r#"sightline_messages_in_total{source="app",type="display_event"}"#) >= 1.0);
    assert!(delta(r#"sightline_display_events_total{outcome="sent"}"#) >= 1.0);
    assert_eq!(
        delta(r#"sightline_display_events_total{outcome="rejected"}"#),
        1.0
    );
    assert!(delta(r#"sightline_messages_in_total{source="glasses",type="audio"}"#) >= 5.0);
    assert_eq!(
        metric_sample(&after, "sightline_lc3_frames_decoded_total")
            + metric_sample(&after, "sightline_lc3_frames_concealed_total"),
        5.0,
        "{after}"
    );
    assert!(
        metric_sample(&after, "sightline_lc3_frames_concealed_total") >= 1.0,
        "the 3-byte frame"
    );

    // Events for an app whose connection is away are kept, then replayed.
    app.close(1006).await;
    wait_app_state(&server, email, PKG, "reconnecting").await;
    g.send(json!({"type": "button_press", "buttonId": "kept", "pressType": "short"}))
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
    again.expect_type("data_stream").await;
    let last = scrape(&server).await;
    assert_eq!(
        metric_sample(&last, "sightline_replay_buffered_total"),
        1.0,
        "{last}"
    );
    assert_eq!(
        metric_sample(&last, "sightline_replay_delivered_total"),
        1.0
    );
    assert_eq!(
        metric_sample(&last, r#"sightline_reconnects_total{kind="app"}"#),
        1.0
    );
    server.stop().await;
}
