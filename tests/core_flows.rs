//! Core runtime flows over real sockets on loopback: glasses auth and acks,
//! app start through webhooks, init checks, subscriptions and the exact-match
//! stream rule, display, stop, session end, and bad input.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sightline::store::AppType;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glasses_without_or_with_bad_token_get_401_json() {
    let server = TestServer::start();
    let url = server.ws_url("/glasses-ws");
    let (status, body) = Client::connect(&url, None).await.err().expect("refused");
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(v["type"], "connection_error");
    assert_eq!(v["message"], "No core token provided");

    let forged = token_with(json!({"email": "a@b.c"}), "not-the-secret");
    let (status, body) = Client::connect(&url, Some(&forged))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 401);
    assert!(body.contains("Invalid core token"), "{body}");
    assert!(!body.contains(&forged), "token must not be echoed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ack_on_open_and_every_init() {
    let server = TestServer::start();
    let mut g = Client::glasses(&server, "mary-jane@ex-ample.com").await;
    for _ in 0..2 {
        g.send(json!({"type": "connection_init", "coreToken": "ignored"}))
            .await;
        let ack = g.expect_type("connection_ack").await;
        assert_eq!(ack["sessionId"], "mary-jane@ex-ample.com");
        assert!(ack["userSession"]["activeAppSessions"].is_array());
    }
    g.send(json!({"type": "request_settings", "sessionId": "x"}))
        .await;
    let s = g.expect_type("settings_update").await;
    assert_eq!(s["settings"]["headUpAngle"], 20);
    g.send(json!({"type": "settings_update_request"})).await;
    let s = g.expect_type("settings_update").await;
    assert_eq!(s["success"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_glasses_frames_get_errors_and_the_session_stays_up() {
    let server = TestServer::start();
    let mut g = Client::glasses(&server, "a@b.c").await;
    g.send_raw(Message::text("{not json")).await;
    let e = g.expect_type("connection_error").await;
    assert_eq!(e["code"], "MALFORMED_MESSAGE");
    g.send_raw(Message::text("[1,2,3]")).await;
    assert_eq!(
        g.expect_type("connection_error").await["code"],
        "MALFORMED_MESSAGE"
    );
    g.send(json!({"type": "start_app"})).await;
    let e = g.expect_type("connection_error").await;
    assert!(e["message"]
        .as_str()
        .unwrap_or_default()
        .contains("packageName"));
    g.send(json!({"type": "connection_init"})).await;
    g.expect_type("connection_ack").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_app_lifecycle_with_events_display_and_stop() {
    let (server, mut fake, mut g) = setup("alice@example.com").await;
    g.send(json!({"type": "start_app", "packageName": PKG}))
        .await;
    let loading = g
        .expect("loading state", |v| v["type"] == "app_state_change")
        .await;
    assert_eq!(loading["userSession"]["loadingApps"], json!([PKG]));
    let (mut app, ack) = fake.next_socket().await;
    assert_eq!(ack["sessionId"], format!("alice@example.com-{PKG}"));
    assert_eq!(ack["settings"][0]["key"], "color");
    assert_eq!(ack["mentraosSettings"]["brightness"], 50);
    assert_eq!(ack["capabilities"]["hasDisplay"], true);
    let hook = fake.webhooks.lock().unwrap()[0].clone();
    assert_eq!(hook["type"], "session_request");
    assert_eq!(hook["userId"], "alice@example.com");
    assert_eq!(hook["mentraOSWebsocketUrl"], hook["augmentOSWebsocketUrl"]);
    assert!(hook["mentraOSWebsocketUrl"]
        .as_str()
        .unwrap()
        .ends_with("/app-ws"));
    g.expect("running", |v| {
        v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([PKG])
    })
    .await;

    // Subscriptions arrive as full lists: first empty, then growing.
    let sid = format!("alice@example.com-{PKG}");
    app.send(json!({"type": "subscription_update", "packageName": PKG, "sessionId": sid, "subscriptions": []})).await;
    app.send(json!({"type": "subscription_update", "packageName": PKG, "sessionId": sid,
        "subscriptions": ["button_press", "touch_event", "touch_event:double_tap", "future_event", "not a real stream"]})).await;
    g.expect("subscriptions visible", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][PKG]
                .as_array()
                .map_or(0, |a| a.len())
                == 5
    })
    .await;

    g.send(json!({"type": "head_position", "position": "up", "timestamp": 1751044118000i64}))
        .await;
    g.send(json!({"type": "button_press", "buttonId": "power", "pressType": "short", "timestamp": "2025-01-01T00:00:00.000Z"})).await;
    let ev = app.expect_type("data_stream").await;
    assert_eq!(
        ev["streamType"], "button_press",
        "head_position must not be delivered"
    );
    assert_eq!(ev["sessionId"], sid);
    assert_eq!(ev["data"]["buttonId"], "power");
    assert_eq!(ev["data"]["type"], "button_press");

    g.send(json!({"type": "touch_event", "gesture_name": "double_tap", "device_model": "g1"}))
        .await;
    let a = app.expect_type("data_stream").await;
    let b = app.expect_type("data_stream").await;
    let mut types = vec![
        a["streamType"].as_str().unwrap().to_string(),
        b["streamType"].as_str().unwrap().to_string(),
    ];
    types.sort();
    assert_eq!(types, vec!["touch_event", "touch_event:double_tap"]);

    g.send(json!({"type": "future_event", "x": 1})).await;
    let f = app.expect_type("data_stream").await;
    assert_eq!(f["streamType"], "future_event");
    assert_eq!(f["data"]["x"], 1);

    // Display: the SDK sends an empty sessionId; identity comes from the socket.
    app.send(json!({"type": "display_event", "packageName": "com.someone.else", "sessionId": "",
        "view": "main", "layout": {"layoutType": "text_wall", "text": "Hello"}, "durationMs": 3000})).await;
    let d = g.expect_display_from(PKG).await;
    assert_eq!(d["layout"]["text"], "Hello");
    assert_eq!(d["durationMs"], 3000);

    // Stop: stop_request webhook, app_stopped, close 1000 "App stopped".
    g.send(json!({"type": "stop_app", "packageName": PKG}))
        .await;
    let stopped = app.expect_type("app_stopped").await;
    assert_eq!(stopped["reason"], "user_disabled");
    let closed = app.expect_close().await;
    assert_eq!((closed.code, closed.reason.as_str()), (1000, "App stopped"));
    g.expect("app gone", |v| {
        v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([])
    })
    .await;
    eventually("stop_request sent", || fake.webhook_types().len() == 2).await;
    assert_eq!(
        fake.webhook_types(),
        vec!["session_request", "stop_request"]
    );
    let u = server
        .store
        .get_user("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(u.running_apps.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_init_failures_get_clear_errors_and_1008() {
    let (server, mut fake, mut g) = setup("bob@example.com").await;
    let url = server.ws_url("/app-ws");
    let init = |sid: &str, pkg: &str, key: &str| json!({"type": "tpa_connection_init", "sessionId": sid, "packageName": pkg, "apiKey": key});

    // Wrong key.
    let mut a = Client::connect(&url, None).await.unwrap();
    a.send(init(&format!("bob@example.com-{PKG}"), PKG, "wrong"))
        .await;
    let e = a.expect_type("tpa_connection_error").await;
    assert_eq!(e["code"], "INVALID_API_KEY");
    assert_eq!(a.expect_close().await.code, 1008);

    // Right key, app not started.
    let mut a = Client::connect(&url, None).await.unwrap();
    a.send(init(&format!("bob@example.com-{PKG}"), PKG, KEY))
        .await;
    assert_eq!(
        a.expect_type("tpa_connection_error").await["code"],
        "APP_NOT_STARTED"
    );
    assert_eq!(a.expect_close().await.code, 1008);

    // Right key, no such user session.
    let mut a = Client::connect(&url, None).await.unwrap();
    a.send(init(&format!("nobody@example.com-{PKG}"), PKG, KEY))
        .await;
    assert_eq!(
        a.expect_type("tpa_connection_error").await["code"],
        "SESSION_NOT_FOUND"
    );
    assert_eq!(a.expect_close().await.code, 1008);

    // Session id that does not end in the package.
    let mut a = Client::connect(&url, None).await.unwrap();
    a.send(init("bob@example.com-com.other", PKG, KEY)).await;
    let c = a.expect_close().await;
    assert_eq!(
        (c.code, c.reason.as_str()),
        (1008, "Invalid session ID format")
    );

    // Anything before init is refused without closing.
    let mut a = Client::connect(&url, None).await.unwrap();
    a.send(json!({"type": "subscription_update", "subscriptions": []}))
        .await;
    assert_eq!(
        a.expect_type("tpa_connection_error").await["code"],
        "NOT_INITIALISED"
    );

    // The real app still starts fine afterwards.
    let _app = start_app(&mut g, &mut fake, PKG).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_app_frames_get_errors_and_the_app_keeps_receiving() {
    let (server, mut fake, mut g) = setup("carol@example.com").await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
    })
    .await;
    app.send_raw(Message::text("garbage{")).await;
    assert_eq!(
        app.expect_type("tpa_connection_error").await["code"],
        "MALFORMED_MESSAGE"
    );
    app.send(json!({"type": "teleport"})).await;
    let e = app.expect_type("tpa_connection_error").await;
    assert_eq!(e["code"], "UNKNOWN_MESSAGE_TYPE");
    app.send(json!({"type": "display_event", "layout": {"layoutType": "text_wall"}}))
        .await;
    assert_eq!(
        app.expect_type("tpa_connection_error").await["code"],
        "MALFORMED_MESSAGE"
    );
    // A device request with a wrong field is answered, not dropped.
    app.send(json!({"type": "rgb_led_control", "requestId": "r", "color": "purple"}))
        .await;
    let e = app.expect_type("tpa_connection_error").await;
    assert_eq!(e["code"], "INVALID_REQUEST");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("purple")),
        "{e}"
    );
    app.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(
        app.expect_type("tpa_connection_error").await["code"],
        "MALFORMED_MESSAGE"
    );
    app.send(json!({"type": "dashboard_mode_change", "mode": "expanded"}))
        .await;
    assert_eq!(
        app.expect_type("tpa_connection_error").await["code"],
        "FORBIDDEN"
    );
    g.send(json!({"type": "button_press", "buttonId": "power", "pressType": "long"}))
        .await;
    let ev = app.expect_type("data_stream").await;
    assert_eq!(ev["data"]["pressType"], "long");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microphone_follows_audio_subscriptions_and_audio_is_relayed() {
    let (server, mut fake, mut g) = setup("dan@example.com").await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update",
        "subscriptions": ["transcription:en-US", "audio_chunk", "button_press"]}))
        .await;
    let on = g
        .expect("mic on", |v| {
            v["type"] == "microphone_state_change" && v["isMicrophoneEnabled"] == true
        })
        .await;
    assert_eq!(on["requiredData"], json!(["pcm"]));
    // Audio is relayed as a binary frame, in order with the events after it.
    g.send_raw(Message::binary(vec![7u8; 320])).await;
    g.send(json!({"type": "button_press", "buttonId": "after-audio", "pressType": "short"}))
        .await;
    app.expect_type("data_stream").await;
    assert_eq!(
        app.binary,
        vec![vec![7u8; 320]],
        "audio arrives before the later event"
    );
    // Once no app wants audio, the mic goes off and audio is no longer relayed.
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    let off = g
        .expect("mic off", |v| v["type"] == "microphone_state_change")
        .await;
    assert_eq!(off["isMicrophoneEnabled"], false);
    g.send_raw(Message::binary(vec![9u8; 320])).await;
    g.send(json!({"type": "button_press", "buttonId": "after-off", "pressType": "short"}))
        .await;
    app.expect_type("data_stream").await;
    assert_eq!(app.binary, vec![vec![7u8; 320]]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_that_never_connects_times_out() {
    let server = TestServer::start_with(
        |c| c.runtime.app_start_timeout = Duration::from_millis(800),
        std::sync::Arc::new(sightline::store::MemoryStore::new()),
    );
    let fake = FakeApp::start(PKG, KEY, AppBehaviour::Ignore).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let mut g = Client::glasses(&server, "erin@example.com").await;
    g.send(json!({"type": "start_app", "packageName": PKG}))
        .await;
    let err = g
        .expect("timeout error", |v| {
            v["type"] == "app_state_change" && v["error"].is_string()
        })
        .await;
    assert!(err["error"].as_str().unwrap().contains("did not connect"));
    assert_eq!(err["userSession"]["loadingApps"], json!([]));
    g.send(json!({"type": "start_app", "packageName": "com.not.registered"}))
        .await;
    let err = g
        .expect("unknown app", |v| {
            v["type"] == "app_state_change" && v["error"].is_string()
        })
        .await;
    assert!(err["error"].as_str().unwrap().contains("not registered"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_webhooks_are_retried_until_the_app_connects() {
    let server = TestServer::start();
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::FailFirst(2)).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let mut g = Client::glasses(&server, "fay@example.com").await;
    let _app = start_app(&mut g, &mut fake, PKG).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.webhook_types(),
        vec!["session_request"; 3],
        "two failures, one success, no more"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_standard_app_runs() {
    let server = TestServer::start();
    let mut one = FakeApp::start("com.one", KEY, AppBehaviour::Connect).await;
    let mut two = FakeApp::start("com.two", KEY, AppBehaviour::Connect).await;
    let mut bg = FakeApp::start("com.bg", KEY, AppBehaviour::Connect).await;
    server
        .register("com.one", &one.url, KEY, AppType::Standard)
        .await;
    server
        .register("com.two", &two.url, KEY, AppType::Standard)
        .await;
    server
        .register("com.bg", &bg.url, KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, "gus@example.com").await;
    let mut a1 = start_app(&mut g, &mut one, "com.one").await;
    let _b = start_app(&mut g, &mut bg, "com.bg").await;
    let _a2 = start_app(&mut g, &mut two, "com.two").await;
    let closed = a1.expect_close().await;
    assert_eq!((closed.code, closed.reason.as_str()), (1000, "App stopped"));
    g.send(json!({"type": "connection_init"})).await;
    let state = g.expect_type("connection_ack").await;
    assert_eq!(
        state["userSession"]["activeAppSessions"],
        json!(["com.bg", "com.two"])
    );
    assert_eq!(state["userSession"]["loadingApps"], json!([]));
    eventually("stop_request sent to the replaced app", || {
        one.webhook_types().contains(&"stop_request".to_string())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_end_after_glasses_grace_tells_apps() {
    let (server, mut fake, mut g) = setup_with(
        |c| c.runtime.glasses_grace = Duration::from_millis(600),
        "hal@example.com",
    )
    .await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update", "subscriptions": ["glasses_connection_state"]}))
        .await;
    wait_subscribed(
        &server,
        "hal@example.com",
        PKG,
        &["glasses_connection_state"],
    )
    .await;
    g.close(1000).await;
    let dis = app.expect_type("data_stream").await;
    assert_eq!(dis["data"]["status"], "DISCONNECTED");
    app.expect_type("app_stopped").await;
    let closed = app.expect_close().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (1000, "User session ended")
    );
    // The apps were running at session end, so they are kept for the next connect.
    let u = server
        .store
        .get_user("hal@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.running_apps, vec![PKG.to_string()]);
    let fresh = fake.webhook_types().len();
    // A new connection gets a fresh session that restarts the app.
    let mut g = Client::glasses(&server, "hal@example.com").await;
    let (_app, _) = fake.next_socket().await;
    g.expect("restarted", |v| {
        v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([PKG])
    })
    .await;
    assert_eq!(fake.webhook_types().len(), fresh + 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_isolated() {
    let server = TestServer::start();
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let mut g1 = Client::glasses(&server, "u1@example.com").await;
    let mut g2 = Client::glasses(&server, "u2@example.com").await;
    let mut a1 = start_app(&mut g1, &mut fake, PKG).await;
    let mut a2 = start_app(&mut g2, &mut fake, PKG).await;
    for a in [&mut a1, &mut a2] {
        a.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
            .await;
    }
    for user in ["u1@example.com", "u2@example.com"] {
        wait_subscribed(&server, user, PKG, &["button_press"]).await;
    }
    g1.send(json!({"type": "button_press", "buttonId": "u1", "pressType": "short"}))
        .await;
    let e = a1.expect_type("data_stream").await;
    assert_eq!(e["data"]["buttonId"], "u1");
    assert!(a2
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|v| v["type"] != "data_stream"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_registers_apps() {
    let server = TestServer::start();
    let body = json!({"packageName": "com.reg", "name": "Reg", "publicUrl": "http://127.0.0.1:9", "apiKey": "long-enough-key", "appType": "background", "permissions": ["MICROPHONE"]});
    let (s, b) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["error"]["code"],
        "UNAUTHORIZED"
    );
    let (s, b) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some("wrong"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert!(
        !b.contains("long-enough-key") && !b.contains("hashed"),
        "{b}"
    );
    let (s, _) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(s, 409);
    let (s, b) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(json!({"packageName": "bad name!"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["error"]["code"],
        "BAD_REQUEST"
    );
    let stored = server.store.get_app("com.reg").await.unwrap().unwrap();
    assert_eq!(
        stored.hashed_api_key,
        sightline::store::hash_api_key("long-enough-key")
    );
    assert_eq!(stored.app_type, AppType::Background);
    let (s, b) = http(server.addr, "GET", "/health", None, None).await;
    assert_eq!(s, 200, "{b}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_permission_are_left_out_and_reported() {
    let server = TestServer::start();
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register_with(
            PKG,
            &fake.url,
            KEY,
            AppType::Standard,
            &["LOCATION", "NOTIFICATIONS"],
        )
        .await;
    let mut g = Client::glasses(&server, "pat@example.com").await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update", "subscriptions":
        ["button_press", "transcription:en-US", "location_update", "phone_notification", "calendar_event"]}))
        .await;
    let err = app.expect_type("permission_error").await;
    let details = err["details"].as_array().unwrap();
    let refused: Vec<(&str, &str)> = details
        .iter()
        .map(|d| {
            (
                d["stream"].as_str().unwrap(),
                d["requiredPermission"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            ("transcription:en-US", "MICROPHONE"),
            ("calendar_event", "CALENDAR")
        ]
    );
    let state = g
        .expect("applied", |v| {
            v["type"] == "app_state_change"
                && v["userSession"]["appSubscriptions"][PKG]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(
        state["userSession"]["appSubscriptions"][PKG],
        json!(["button_press", "location_update", "phone_notification"])
    );
    // The refused stream did not turn the microphone on.
    assert!(g
        .drain(Duration::from_millis(200))
        .await
        .iter()
        .all(|v| v["type"] != "microphone_state_change" || v["isMicrophoneEnabled"] == false));
    server.stop().await;
}

/// Uninstalling a running app stops it now, as the user stopping it from
/// the phone would, and it is not restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstalling_a_running_app_stops_it() {
    let email = "uninstaller@example.com";
    let (server, mut fake, mut g) = setup(email).await;
    let t = token(email);
    let (status, _) = http(
        server.addr,
        "POST",
        &format!("/api/apps/install/{PKG}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    let (status, _) = http(
        server.addr,
        "POST",
        &format!("/api/apps/uninstall/{PKG}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let stopped = app.expect_type("app_stopped").await;
    assert_eq!(stopped["reason"], "user_disabled");
    g.expect("app gone", |v| {
        v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([])
    })
    .await;
    let user = server
        .store
        .get_user(email)
        .await
        .ok()
        .flatten()
        .expect("user");
    assert!(!user.running_apps.iter().any(|p| p == PKG));
    server.stop().await;
}
