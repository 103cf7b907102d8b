//! Hostile input over real sockets: no frame or body, however malformed or
//! large, may crash a session or a handler.
//!
//! - Glasses and a running app send a few hundred generated frames each
//!   (random text, almost-valid messages with fields of the wrong type,
//!   deep nesting, arrays, a megabyte string, random binary audio); after
//!   them both sockets are still open and the session still answers and
//!   relays.
//! - The REST handlers that take a body answer generated bodies (random
//!   bytes, almost-valid JSON, deep nesting, a body over the size limit)
//!   with a 2xx or a 4xx in Sightline's error shape, never a 5xx.
//!
//! The parsers themselves are covered case by case in each crate's
//! `tests/hostile_input.rs` and by the fuzz targets in `fuzz/`.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// `n` values of `strategy`, the same on every run.
fn generate<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("generate a value")
                .current()
        })
        .collect()
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A message of one of `types` whose other fields are anything.
fn almost_message(types: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(types),
        prop::collection::btree_map(
            prop::sample::select(
                &[
                    "packageName",
                    "sessionId",
                    "apiKey",
                    "subscriptions",
                    "layout",
                    "durationMs",
                    "view",
                    "content",
                    "mode",
                    "gesture_name",
                    "timestamp",
                    "audioCodec",
                    "lc3FrameBytes",
                ][..],
            ),
            any_json(),
            0..5,
        ),
    )
        .prop_map(|(kind, fields)| {
            let mut m: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            m.insert("type".into(), kind.into());
            Value::Object(m).to_string()
        })
}

fn deep(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Text frames no client should send.
fn hostile_texts(types: &'static [&'static str], n: usize) -> Vec<String> {
    let mut texts = generate(
        prop_oneof![
            3 => almost_message(types),
            1 => any::<String>(),
            1 => any_json().prop_map(|v| v.to_string()),
        ],
        n,
    );
    texts.extend([
        deep(100_000),
        format!("{{\"type\":\"x\",\"a\":{}", deep(50_000)),
        r#"["start_app","com.example.notes"]"#.to_string(),
        json!({"type": "display_event", "layout": {"layoutType": "text_wall", "text": "x".repeat(1 << 20)}})
            .to_string(),
        json!({"type": "subscription_update", "subscriptions": vec!["é".repeat(300); 2000]})
            .to_string(),
        String::new(),
    ]);
    texts
}

const GLASSES_TYPES: &[&str] = &[
    "connection_init",
    "start_app",
    "request_settings",
    "settings_update_request",
    "button_press",
    "touch_event",
    "head_position",
    "vad",
    "location_update",
    "",
];

const APP_TYPES: &[&str] = &[
    "subscription_update",
    "display_event",
    "dashboard_content_update",
    "dashboard_mode_change",
    "dashboard_system_update",
    "stream_status_check",
    "photo_request",
    "no_such_type",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_hostile_frames_from_glasses_and_apps() {
    // Content, not volume, is under test here: the size and rate limits
    // (tests/limits.rs) are raised so that every hostile frame is parsed.
    let (server, mut fake, mut glasses) = setup_with(
        |c| {
            c.limits.glasses_text_bytes = 4 * 1024 * 1024;
            c.limits.app_text_bytes = 4 * 1024 * 1024;
            let flood = sightline::server::limits::Rate {
                per_second: 100_000,
                burst: 100_000,
            };
            c.limits.glasses_rate = flood;
            c.limits.app_rate = flood;
        },
        "hostile@example.com",
    )
    .await;
    let mut app = start_app(&mut glasses, &mut fake, PKG).await;

    for text in hostile_texts(GLASSES_TYPES, 300) {
        glasses.send_raw(Message::text(text)).await;
    }
    for bytes in generate(prop::collection::vec(any::<u8>(), 0..2000), 50) {
        glasses.send_raw(Message::binary(bytes)).await;
    }
    for text in hostile_texts(APP_TYPES, 300) {
        app.send_raw(Message::text(text)).await;
    }

    // The session still answers the glasses...
    glasses.send(json!({"type": "request_settings"})).await;
    glasses
        .expect("settings after the garbage", |v| {
            v["type"] == "settings_update" && v["sessionId"] == "hostile@example.com"
        })
        .await;
    // ...and still relays the app's display to them.
    app.send(json!({
        "type": "display_event", "packageName": PKG, "sessionId": "",
        "view": "main", "layout": {"layoutType": "text_wall", "text": "still here"},
    }))
    .await;
    glasses
        .expect("the app's display after the garbage", |v| {
            v["type"] == "display_event" && v["layout"]["text"] == "still here"
        })
        .await;
    app.send(json!({"type": "stream_status_check"})).await;
    app.expect_type("stream_status_check_response").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_handlers_answer_hostile_bodies_with_a_clear_4xx() {
    let server = TestServer::start();
    server
        .register(
            PKG,
            "http://127.0.0.1:9",
            KEY,
            sightline::store::AppType::Standard,
        )
        .await;
    let user = token("hostile@example.com");
    let mut bodies: Vec<Vec<u8>> = generate(prop::collection::vec(any::<u8>(), 0..400), 20);
    bodies.extend(
        generate(
            prop_oneof![
                any_json(),
                prop::collection::vec(any_json(), 0..4).prop_map(Value::Array),
                (
                    prop::sample::select(&["packageName", "publicUrl", "key", "appType"][..]),
                    any_json()
                )
                    .prop_map(|(k, v)| {
                        let mut m = serde_json::Map::new();
                        m.insert(k.to_string(), v.clone());
                        m.insert("value".into(), v);
                        Value::Object(m)
                    }),
            ],
            40,
        )
        .into_iter()
        .map(|v| v.to_string().into_bytes()),
    );
    bodies.push(deep(100_000).into_bytes());
    bodies.push(vec![b' '; 3 << 20]);
    bodies.push(
        json!({"packageName": "com.x", "publicUrl": "http://"})
            .to_string()
            .into_bytes(),
    );

    let routes = [
        ("POST", "/api/admin/apps".to_string(), ADMIN.to_string()),
        ("PUT", format!("/api/admin/apps/{PKG}"), ADMIN.to_string()),
        ("POST", format!("/appsettings/{PKG}"), user.clone()),
    ];
    for body in &bodies {
        for (method, path, bearer) in &routes {
            let (status, text) = http_raw(server.addr, method, path, Some(bearer), body).await;
            let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
            assert!(
                (200..300).contains(&status) || (400..500).contains(&status),
                "{method} {path} answered {status} to {shown:?}: {text}"
            );
            if status >= 400 {
                let err: Value = serde_json::from_str(&text).unwrap_or_default();
                assert!(
                    err["error"]["code"].is_string() && err["error"]["message"].is_string(),
                    "{method} {path} answered {status} without the error shape to {shown:?}: {text}"
                );
            }
        }
    }
    // The server is still up and the app unharmed by whatever was accepted.
    let (status, _) = http(
        server.addr,
        "GET",
        &format!("/api/admin/apps/{PKG}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
}
