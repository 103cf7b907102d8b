//! App settings as official MentraOS apps expect them: every declared
//! setting carries a `value` (the user's, else its `defaultValue`) on the
//! phone's GET, in the app's ack, in `settings_update` and on the SDK's
//! fetch; a single-key change keeps the other values; and what a user may
//! store is bounded (undeclared keys refused, sizes answered with 413).

mod common;

use common::*;
use serde_json::{json, Value};
use sightline::server::settings_change::SettingsLimits;

fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A schema shaped like the official apps' `app_config.json`.
fn official_schema() -> Vec<Value> {
    vec![
        json!({"type": "group", "key": "look", "title": "Look"}),
        json!({"key": "speed", "type": "slider", "label": "Speed", "defaultValue": 5, "min": 1, "max": 10}),
        json!({"key": "mode", "type": "select", "label": "Mode", "defaultValue": "a",
               "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]}),
        json!({"key": "show", "type": "toggle", "label": "Show", "defaultValue": true}),
    ]
}

/// `key`'s value in a settings array.
fn value_of<'a>(settings: &'a Value, key: &str) -> &'a Value {
    settings
        .as_array()
        .and_then(|a| a.iter().find(|s| s["key"] == key))
        .map(|s| &s["value"])
        .unwrap_or(&Value::Null)
}

async fn use_schema(server: &TestServer, schema: Vec<Value>) {
    let mut app = server
        .store
        .get_app(PKG)
        .await
        .expect("store")
        .expect("app");
    app.settings_schema = schema;
    server.store.upsert_app(app).await.expect("store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_settings_have_their_defaults_and_one_change_keeps_the_others() {
    let email = "defaults@example.com";
    let (server, mut fake, mut glasses) = setup(email).await;
    use_schema(&server, official_schema()).await;
    let a = server.addr;
    let t = token(email);

    let (status, text) = http(a, "GET", &format!("/appsettings/{PKG}"), Some(&t), None).await;
    assert_eq!(status, 200, "{text}");
    let got = &body(&text)["settings"];
    assert_eq!(value_of(got, "speed"), 5);
    assert_eq!(value_of(got, "mode"), "a");
    assert_eq!(value_of(got, "show"), true);
    assert_eq!(
        got[0]["type"], "group",
        "groups stay for the phone's layout"
    );

    // The app's ack carries the defaults.
    glasses
        .send(json!({"type": "start_app", "packageName": PKG}))
        .await;
    let (mut app, ack) = fake.next_socket().await;
    assert_eq!(ack["type"], "tpa_connection_ack");
    assert_eq!(value_of(&ack["settings"], "speed"), 5, "{ack}");
    assert_eq!(value_of(&ack["settings"], "show"), true, "{ack}");

    // One key changes; the others keep their (default) values everywhere.
    let (status, text) = http(
        a,
        "POST",
        &format!("/appsettings/{PKG}"),
        Some(&t),
        Some(json!({"key": "mode", "value": "b"})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let saved = &body(&text)["settings"];
    assert_eq!(value_of(saved, "mode"), "b");
    assert_eq!(value_of(saved, "speed"), 5);
    let update = app.expect_type("settings_update").await;
    assert_eq!(value_of(&update["settings"], "mode"), "b");
    assert_eq!(value_of(&update["settings"], "speed"), 5);
    assert_eq!(value_of(&update["settings"], "show"), true);
    assert_eq!(update["settings"].as_array().map(Vec::len), Some(4));

    let (status, text) = http(
        a,
        "POST",
        &format!("/appsettings/{PKG}"),
        Some(&t),
        Some(json!({"key": "speed", "value": 9})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (_, text) = http(a, "GET", &format!("/appsettings/{PKG}"), Some(&t), None).await;
    let got = &body(&text)["settings"];
    assert_eq!(value_of(got, "mode"), "b", "the first change is kept");
    assert_eq!(value_of(got, "speed"), 9);
    assert_eq!(value_of(got, "show"), true);

    // The SDK's fetch sees the same.
    let (status, text) = http(
        a,
        "GET",
        &format!("/appsettings/user/{PKG}"),
        Some(&format!("{email}-{PKG}")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let fetched = &body(&text)["settings"];
    assert_eq!(value_of(fetched, "mode"), "b");
    assert_eq!(value_of(fetched, "speed"), 9);
    assert_eq!(value_of(fetched, "show"), true);

    // The store keeps only the user's values, not copies of the schema.
    let user = server.store.get_user(email).await.unwrap().unwrap();
    assert_eq!(
        user.app_settings.get(PKG),
        Some(&json!([{"key": "mode", "value": "b"}, {"key": "speed", "value": 9}]))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_settings_are_bounded() {
    let email = "bounded@example.com";
    let limits = SettingsLimits {
        value_bytes: 1024,
        keys_per_app: 4,
        app_bytes: 2048,
        user_bytes: 2500,
    };
    let (server, _fake, _glasses) = setup_with(|c| c.settings_limits = limits, email).await;
    let a = server.addr;
    let t = token(email);
    let post = |package: String, change: Value| {
        let t = t.clone();
        async move {
            let (status, text) = http(
                a,
                "POST",
                &format!("/appsettings/{package}"),
                Some(&t),
                Some(change),
            )
            .await;
            (status, body(&text))
        }
    };

    // PKG declares `color` only: other keys are refused.
    let (status, err) = post(PKG.into(), json!({"key": "invented", "value": 1})).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "BAD_REQUEST");
    let (status, err) = post(
        PKG.into(),
        json!({"key": "color", "value": "x".repeat(2000)}),
    )
    .await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(err["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("SIGHTLINE_SETTINGS_MAX_VALUE_BYTES")));

    // An app without a schema stores any keys, up to the key count...
    for package in ["com.free.one", "com.free.two"] {
        server
            .register(
                package,
                "http://127.0.0.1:9",
                KEY,
                sightline::store::AppType::Standard,
            )
            .await;
        let mut app = server.store.get_app(package).await.unwrap().unwrap();
        app.settings_schema.clear();
        server.store.upsert_app(app).await.unwrap();
    }
    for i in 0..4 {
        let (status, text) = post(
            "com.free.one".into(),
            json!({"key": format!("k{i}"), "value": i}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }
    let (status, err) = post("com.free.one".into(), json!({"key": "k4", "value": 4})).await;
    assert_eq!(status, 413, "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("SIGHTLINE_SETTINGS_MAX_KEYS_PER_APP")));
    // ...and up to the app's size...
    let big = "y".repeat(900);
    let (status, _) = post("com.free.one".into(), json!({"key": "k0", "value": big})).await;
    assert_eq!(status, 200);
    let (status, _) = post("com.free.one".into(), json!({"key": "k1", "value": big})).await;
    assert_eq!(status, 200);
    let (status, err) = post("com.free.one".into(), json!({"key": "k2", "value": big})).await;
    assert_eq!(status, 413, "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("SIGHTLINE_SETTINGS_MAX_APP_BYTES")));
    // ...and the user's total over all apps.
    let (status, _) = post("com.free.two".into(), json!({"key": "a", "value": big})).await;
    assert_eq!(status, 413, "the user's total would pass 2500 bytes");
    let (status, _) = post("com.free.two".into(), json!({"key": "a", "value": "small"})).await;
    assert_eq!(status, 200);

    // What was refused was not stored.
    let user = server.store.get_user(email).await.unwrap().unwrap();
    let total: usize = user
        .app_settings
        .values()
        .map(|v| v.to_string().len())
        .sum();
    assert!(total <= 2500, "{total} bytes stored");
    assert!(!user.app_settings.contains_key(PKG));
    server.stop().await;
}
