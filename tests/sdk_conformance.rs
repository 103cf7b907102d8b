//! Conformance with the published `@mentra/sdk@2.1.29`: an unmodified SDK
//! app (tests/sdk/app.mjs) runs a whole session against Sightline over real
//! sockets: webhook → connect → ack → subscribe → glasses events reach the
//! SDK handlers → `showTextWall` reaches the glasses → stop → `onStop` runs
//! and the SDK does not reconnect. A second app registers its handlers late.
//! The whole session also runs with the MongoDB store (against nx-27017, a
//! MongoDB wire-protocol server), which is how a cloud deployment runs.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use std::sync::Arc;

use sightline::store::testing::Nx27017;
use sightline::store::{AppType, MongoConfig, MongoStore};

fn subscriptions_of(v: &Value, package: &str) -> Vec<String> {
    v["userSession"]["appSubscriptions"][package]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_app_runs_a_whole_session() {
    whole_session(TestServer::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_app_runs_a_whole_session_on_mongodb() {
    let nx = Nx27017::start();
    let store = MongoStore::connect(MongoConfig::new(nx.uri()))
        .await
        .expect("connect to nx-27017");
    let server = TestServer::start_with(|_| {}, Arc::new(store));
    assert_eq!(server.store.backend(), "mongodb");
    whole_session(server).await;
    drop(nx);
}

async fn whole_session(server: TestServer) {
    let package = "com.sightline.conformance";
    let mut sdk = SdkApp::conformance(package, "early").await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Standard)
        .await;
    let email = "sdk-user@example.com";
    let mut g = Client::glasses(&server, email).await;

    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    let session = sdk.wait_event("session").await;
    assert_eq!(session["sessionId"], format!("{email}-{package}"));
    assert_eq!(session["userId"], email);

    let subscribed = g
        .expect("the SDK's subscriptions", |v| {
            v["type"] == "app_state_change" && subscriptions_of(v, package).len() == 3
        })
        .await;
    let mut subs = subscriptions_of(&subscribed, package);
    subs.sort();
    assert_eq!(
        subs,
        vec!["button_press", "head_position", "transcription:en-US"]
    );
    let mic = g.expect_type("microphone_state_change").await;
    assert_eq!(mic["isMicrophoneEnabled"], true);

    g.send(json!({"type": "button_press", "buttonId": "power", "pressType": "short", "timestamp": "2025-06-27T17:08:38.000Z"})).await;
    let pressed = sdk.wait_event("button_press").await;
    assert_eq!(pressed["data"]["buttonId"], "power");
    let shown = g.expect_display_from(package).await;
    assert_eq!(shown["layout"]["layoutType"], "text_wall");
    assert_eq!(shown["layout"]["text"], "Pressed power (short)");

    g.send(json!({"type": "head_position", "position": "down", "timestamp": 1751044118000i64}))
        .await;
    let head = sdk.wait_event("head_position").await;
    assert_eq!(head["data"]["position"], "down");

    g.send(json!({"type": "stop_app", "packageName": package}))
        .await;
    let stop = sdk.wait_event("stop").await;
    assert_eq!(stop["sessionId"], format!("{email}-{package}"));
    // The SDK's first reconnect attempt would come after 1 s: wait longer.
    let inits = sdk
        .count_within("init_sent", Duration::from_millis(2500))
        .await;
    assert_eq!(
        inits, 1,
        "the SDK must not reconnect after a stop: {:?}",
        sdk.seen
    );
    let state = g
        .expect("stopped", |v| {
            v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([])
        })
        .await;
    assert_eq!(state["userSession"]["loadingApps"], json!([]));
    let _ = sdk.child.kill().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_app_with_late_handlers_gets_events_after_its_list_grows() {
    let server = TestServer::start();
    let package = "com.sightline.late";
    let mut sdk = SdkApp::conformance(package, "late").await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, "late@example.com").await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;

    // The first list the SDK sends (right after the ack, before onSession)
    // is empty; then it grows one handler at a time.
    g.expect("button_press subscribed", |v| {
        v["type"] == "app_state_change" && subscriptions_of(v, package) == vec!["button_press"]
    })
    .await;
    g.expect("head_position subscribed", |v| {
        v["type"] == "app_state_change" && subscriptions_of(v, package).len() == 2
    })
    .await;

    sdk.count_within("", Duration::from_millis(100)).await;
    let lists: Vec<&Value> = sdk
        .seen
        .iter()
        .filter(|v| v["event"] == "subscriptions_sent")
        .map(|v| &v["subscriptions"])
        .collect();
    assert_eq!(lists.first(), Some(&&json!([])), "first list: {lists:?}");
    assert_eq!(
        lists.last().and_then(|l| l.as_array()).map(|a| a.len()),
        Some(2)
    );
    g.send(json!({"type": "button_press", "buttonId": "camera", "pressType": "long"}))
        .await;
    assert_eq!(
        sdk.wait_event("button_press").await["data"]["buttonId"],
        "camera"
    );
    let shown = g.expect_display_from(package).await;
    assert_eq!(shown["layout"]["text"], "Late camera");
    g.send(json!({"type": "head_position", "position": "up"}))
        .await;
    assert_eq!(
        sdk.wait_event("head_position").await["data"]["position"],
        "up"
    );
    let _ = sdk.child.kill().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_settings_get_answers_defaults_and_keeps_them_after_one_change() {
    let server = TestServer::start();
    let package = "com.sightline.settings";
    let mut sdk = SdkApp::start(
        "settings_app.mjs",
        package,
        &[("KEYS", "scrollSpeed,showTimer,mode")],
    )
    .await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Standard)
        .await;
    // Declared the way official apps (Teleprompter, AdvancedTimer) declare
    // their settings: a defaultValue, no value.
    let mut app = server.store.get_app(package).await.unwrap().unwrap();
    app.settings_schema = vec![
        json!({"type": "group", "key": "general", "title": "General"}),
        json!({"key": "scrollSpeed", "type": "slider", "label": "Speed", "defaultValue": 120, "min": 10, "max": 500}),
        json!({"key": "showTimer", "type": "toggle", "label": "Timer", "defaultValue": true}),
        json!({"key": "mode", "type": "select", "label": "Mode", "defaultValue": "auto",
               "options": [{"label": "Auto", "value": "auto"}, {"label": "Manual", "value": "manual"}]}),
    ];
    server.store.upsert_app(app).await.unwrap();
    let email = "sdk-settings@example.com";
    let mut g = Client::glasses(&server, email).await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    let defaults = json!({"scrollSpeed": 120, "showTimer": true, "mode": "auto"});
    let session = sdk.wait_event("session").await;
    assert_eq!(session["values"], defaults, "from the ack");
    let fetched = sdk.wait_event("fetched").await;
    assert_eq!(fetched["values"], defaults, "from settings.fetch()");

    // The phone changes one key; the app sees it and keeps the others.
    let (status, text) = http(
        server.addr,
        "POST",
        &format!("/appsettings/{package}"),
        Some(&token(email)),
        Some(json!({"key": "mode", "value": "manual"})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let changed = sdk.wait_event("changed").await;
    assert_eq!(
        changed["values"],
        json!({"scrollSpeed": 120, "showTimer": true, "mode": "manual"})
    );
    sdk.stop().await;
    server.stop().await;
}
