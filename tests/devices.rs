//! What a running SDK app learns of the user's glasses: the capability
//! profile of the model the phone reports (in `tpa_connection_ack`, then
//! `capabilities_update` when the model changes) and the glasses' state
//! (`device_state_update`), with the real `@mentra/sdk@2.1.29`.

mod common;

use common::*;
use serde_json::json;
use sightline::store::AppType;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_switch_changes_the_capabilities_of_a_running_app() {
    let server = TestServer::start();
    let package = "com.sightline.device";
    let mut sdk = SdkApp::start("device_app.mjs", package, &[]).await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, "wearer@example.com").await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    let session = sdk.wait_event("session").await;
    // Before the phone names the glasses: MentraOS's default wearable.
    assert_eq!(
        session["capabilities"]["modelName"], "Even Realities G1",
        "{session}"
    );
    assert_eq!(session["capabilities"]["hasCamera"], false);

    g.send(
        json!({"type": "glasses_connection_state", "status": "CONNECTED",
        "modelName": "Mentra Live", "wifi": {"connected": true, "ssid": "home"}}),
    )
    .await;
    let update = sdk.wait_event("capabilities").await;
    assert_eq!(update["modelName"], "Mentra Live");
    assert_eq!(update["capabilities"]["hasCamera"], true);
    assert_eq!(update["capabilities"]["hasDisplay"], false);
    assert_eq!(update["capabilities"]["hasSpeaker"], true);
    sdk.wait_for("device_state", WAIT, |v| {
        v["field"] == "modelName" && v["value"] == "Mentra Live"
    })
    .await;
    sdk.wait_for("device_state", WAIT, |v| {
        v["field"] == "wifiConnected" && v["value"] == true
    })
    .await;

    g.send(json!({"type": "glasses_battery_update", "level": 42, "charging": false}))
        .await;
    sdk.wait_for("device_state", WAIT, |v| {
        v["field"] == "batteryLevel" && v["value"] == 42
    })
    .await;

    // An unknown model: nothing assumed.
    g.send(
        json!({"type": "glasses_connection_state", "status": "CONNECTED",
        "modelName": "Prototype Frames"}),
    )
    .await;
    let update = sdk
        .wait_for("capabilities", WAIT, |v| {
            v["modelName"] == "Prototype Frames"
        })
        .await;
    assert_eq!(update["capabilities"]["hasDisplay"], false);
    assert_eq!(update["capabilities"]["hasCamera"], false);

    // The glasses drop: the app's device state says so.
    g.close(1000).await;
    sdk.wait_for("device_state", WAIT, |v| {
        v["field"] == "connected" && v["value"] == false
    })
    .await;
    sdk.stop().await;
    server.stop().await;
}

/// An app that starts after the phone named the glasses gets their
/// profile in its ack and their state right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_started_later_gets_the_reported_model_and_state() {
    let server = TestServer::start();
    let package = "com.sightline.device.late";
    let mut sdk = SdkApp::start("device_app.mjs", package, &[]).await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, "later@example.com").await;
    g.send(
        json!({"type": "glasses_connection_state", "status": "CONNECTED",
        "modelName": "Vuzix Z100"}),
    )
    .await;
    g.send(json!({"type": "glasses_battery_update", "level": 77, "charging": true}))
        .await;
    // The session has taken both reports in before the start.
    g.send(json!({"type": "request_settings"})).await;
    g.expect_type("settings_update").await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    let session = sdk.wait_event("session").await;
    assert_eq!(
        session["capabilities"]["modelName"], "Vuzix Z100",
        "{session}"
    );
    assert_eq!(session["capabilities"]["hasMicrophone"], false);
    sdk.wait_for("device_state", WAIT, |v| {
        v["field"] == "batteryLevel" && v["value"] == 77
    })
    .await;
    sdk.stop().await;
    server.stop().await;
}

/// What the phone says about the user reaches apps and the store: a
/// MentraOS setting changed on the phone (`core_status_update`), a
/// `custom_message`, the location and the time zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phones_settings_messages_location_and_time_zone_are_kept_and_told() {
    let server = TestServer::start();
    let package = "com.sightline.phone";
    let user = "phone@example.com";
    let mut sdk = SdkApp::start("device_calls_app.mjs", package, &[]).await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Background)
        .await;
    let mut g = Client::glasses(&server, user).await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    g.send(json!({"type": "core_status_update", "status": {"status": {
        "core_info": {"metric_system_enabled": true},
        "connected_glasses": {"model_name": "Even Realities G1", "glasses_settings": {"brightness": 80}}}}}))
        .await;
    let changed = sdk.wait_event("mentraos_setting").await;
    assert_eq!(changed["value"], true, "{changed}");
    // The phone's settings screen changes it back through the REST API.
    let t = token(user);
    let (status, text) = http(
        server.addr,
        "POST",
        "/augmentos-settings",
        Some(&t),
        Some(json!({"metricSystemEnabled": false, "notASetting": 1})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    sdk.wait_for("mentraos_setting", WAIT, |v| v["value"] == false)
        .await;
    let (status, text) = http(server.addr, "GET", "/augmentos-settings", Some(&t), None).await;
    assert_eq!(status, 200, "{text}");
    let read: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(read["settings"]["metricSystemEnabled"], false, "{read}");
    assert!(read["settings"].get("notASetting").is_none(), "{read}");
    let (status, _) = http(server.addr, "GET", "/augmentos-settings", None, None).await;
    assert_eq!(status, 401);
    g.send(json!({"type": "custom_message", "action": "greet", "payload": {"hello": "app"}}))
        .await;
    let custom = sdk.wait_event("custom_message").await;
    assert_eq!(custom["payload"]["hello"], "app", "{custom}");
    g.send(json!({"type": "location_update", "lat": 59.33, "lng": 18.06, "accuracy": 4}))
        .await;
    g.send(json!({"type": "calendar_event", "title": "Stand-up", "eventId": "e1",
        "dtStart": "2026-12-01T09:00:00Z", "dtEnd": "2026-12-01T09:15:00Z", "timezone": "Europe/Stockholm"}))
        .await;
    eventually_async("the store has what the phone said", || async {
        let Ok(Some(u)) = server.store.get_user(user).await else {
            return false;
        };
        u.mentraos_settings.get("metricSystemEnabled") == Some(&json!(false))
            && u.mentraos_settings.get("brightness") == Some(&json!(80))
            && u.timezone.as_deref() == Some("Europe/Stockholm")
            && u.location.as_ref().is_some_and(|l| l["lat"] == 59.33)
    })
    .await;
    sdk.stop().await;
    server.stop().await;
}
