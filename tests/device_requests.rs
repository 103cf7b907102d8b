//! Device requests end to end: a real `@mentra/sdk@2.1.29` app calls the
//! camera, speaker, location, LED, Wi-Fi and streaming APIs against
//! Sightline, and the test plays the phone — answering like the real one,
//! or wrongly, late, twice, or not at all. Each test asserts what the app's
//! promise settles with and how fast, and what the glasses receive.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sightline::server::ServerConfig;
use sightline::store::{AppType, MemoryStore};

const JPEG: &[u8] = include_bytes!("fixtures/photo.jpg");

/// Quick enough to be Sightline's answer, not an SDK timeout.
fn quick(v: &Value) -> bool {
    v["ms"].as_u64().is_some_and(|ms| ms < 2_000)
}

/// A server with short device deadlines, a driven SDK app with `perms`,
/// and the phone connected with `model`.
async fn setup_devices(
    user: &str,
    package: &str,
    perms: &[&str],
    model: &str,
    tweak: impl FnOnce(&mut ServerConfig),
) -> (TestServer, SdkApp, Client) {
    let server = TestServer::start_with(
        |c| {
            c.runtime.devices.photo_deadline = Duration::from_millis(1500);
            c.runtime.devices.audio_deadline = Duration::from_millis(1500);
            c.runtime.devices.location_deadline = Duration::from_millis(1500);
            tweak(c);
        },
        std::sync::Arc::new(MemoryStore::new()),
    );
    let mut sdk = SdkApp::start("device_calls_app.mjs", package, &[]).await;
    server
        .register_with(package, &sdk.url, SDK_KEY, AppType::Standard, perms)
        .await;
    let mut g = Client::glasses(&server, user).await;
    g.send(
        json!({"type": "glasses_connection_state", "status": "CONNECTED", "modelName": model,
        "wifi": {"connected": true, "ssid": "home"}}),
    )
    .await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    (server, sdk, g)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_reaches_the_app_straight_from_the_glasses_and_through_sightline() {
    let package = "com.sightline.camera";
    let (server, mut sdk, mut g) = setup_devices(
        "camera@example.com",
        package,
        &["CAMERA"],
        "Mentra Live",
        |_| {},
    )
    .await;

    // Straight to the app's own /photo-upload.
    sdk.call("photo", json!({"size": "large"}), "direct").await;
    let req = g.expect_type("photo_request").await;
    assert_eq!(req["appId"], package);
    assert_eq!(req["size"], "large");
    assert_eq!(req["compress"], "none");
    let webhook = req["webhookUrl"].as_str().expect("webhookUrl").to_string();
    assert_eq!(webhook, format!("{}/photo-upload", sdk.url));
    // The token is one the app's SDK accepts as the user's.
    assert!(req["authToken"]
        .as_str()
        .is_some_and(|t| t.starts_with("camera@example.com:")));
    let id = req["requestId"].as_str().expect("requestId").to_string();
    let (status, body) = post_multipart(
        &webhook,
        req["authToken"].as_str(),
        &[("requestId", &id)],
        &[("photo", "photo.jpg", "image/jpeg", JPEG)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let done = sdk.wait_event("direct").await;
    assert_eq!(done["outcome"], "resolved", "{done}");
    assert_eq!(done["value"]["sha256"], sha256_hex(JPEG));
    assert_eq!(done["value"]["size"], JPEG.len());
    assert_eq!(done["value"]["mimeType"], "image/jpeg");

    // Through Sightline's upload route, for a phone that cannot reach the app.
    sdk.call("photo", json!({}), "relayed").await;
    let req = g.expect_type("photo_request").await;
    let upload = req["uploadUrl"].as_str().expect("uploadUrl").to_string();
    let token = req["uploadToken"]
        .as_str()
        .expect("uploadToken")
        .to_string();
    assert!(upload.starts_with(&format!("http://{}/api/photos/", server.addr)));
    // A wrong token, or something that is not an image, is refused and
    // leaves the request waiting.
    let (status, _) = post_multipart(
        &upload,
        Some("not-the-token"),
        &[],
        &[("photo", "p.jpg", "image/jpeg", JPEG)],
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post_multipart(
        &upload,
        Some(&token),
        &[],
        &[("photo", "p.jpg", "image/jpeg", b"<html>no</html>")],
    )
    .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = post_multipart(
        &upload,
        Some(&token),
        &[],
        &[("photo", "p.jpg", "image/jpeg", JPEG)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let done = sdk.wait_event("relayed").await;
    assert_eq!(done["outcome"], "resolved", "{done}");
    assert_eq!(done["value"]["sha256"], sha256_hex(JPEG));
    // The request is settled: the same upload again is not taken.
    let (status, _) = post_multipart(
        &upload,
        Some(&token),
        &[],
        &[("photo", "p.jpg", "image/jpeg", JPEG)],
    )
    .await;
    assert_eq!(status, 404);

    let page = scrape(&server).await;
    assert!(
        metric_sample(
            &page,
            r#"sightline_device_requests_total{kind="photo",outcome="ok"}"#
        ) >= 1.0,
        "{page}"
    );
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_that_cannot_be_taken_rejects_at_once_with_the_reason() {
    let package = "com.sightline.nocamera";
    let (server, mut sdk, mut g) = setup_devices(
        "nocam@example.com",
        package,
        &["CAMERA"],
        "Even Realities G1",
        |_| {},
    )
    .await;
    sdk.call("photo", json!({}), "g1").await;
    let done = sdk.wait_event("g1").await;
    assert_eq!(done["outcome"], "rejected", "{done}");
    assert_eq!(
        done["error"],
        "Photo capture failed: Connected glasses (Even Realities G1) have no camera (code: NO_CAMERA)"
    );
    assert!(quick(&done), "{done}");

    // Camera glasses that fail the capture: the phone's reason reaches the app.
    g.send(json!({"type": "glasses_connection_state", "status": "CONNECTED", "modelName": "Mentra Live"}))
        .await;
    sdk.wait_event("capabilities").await;
    sdk.call("photo", json!({}), "busy").await;
    let req = g.expect_type("photo_request").await;
    let failure = json!({"type": "photo_response", "requestId": req["requestId"], "success": false,
        "error": {"code": "CAMERA_BUSY", "message": "The camera is recording"}});
    g.send(failure.clone()).await;
    let done = sdk.wait_event("busy").await;
    assert_eq!(
        done["error"],
        "Photo capture failed: The camera is recording (code: CAMERA_BUSY)"
    );
    assert!(quick(&done), "{done}");
    // The same answer again is dropped and counted.
    g.send(failure).await;

    // No answer at all: Sightline's deadline (1.5 s here), not the SDK's 30 s.
    sdk.call("photo", json!({}), "silent").await;
    g.expect_type("photo_request").await;
    let done = sdk
        .wait_for("silent", Duration::from_secs(10), |_| true)
        .await;
    assert_eq!(done["outcome"], "rejected", "{done}");
    assert!(
        done["error"]
            .as_str()
            .is_some_and(|e| e.contains("PHONE_TIMEOUT")),
        "{done}"
    );
    assert!(
        done["ms"]
            .as_u64()
            .is_some_and(|ms| (1_400..5_000).contains(&ms)),
        "{done}"
    );

    // The glasses drop while a photo is being taken: it fails now.
    sdk.call("photo", json!({}), "dropped").await;
    g.expect_type("photo_request").await;
    g.close(1000).await;
    let done = sdk.wait_event("dropped").await;
    assert!(
        done["error"]
            .as_str()
            .is_some_and(|e| e.contains("PHONE_GLASSES_NOT_CONNECTED")),
        "{done}"
    );
    assert!(quick(&done), "{done}");

    let page = scrape(&server).await;
    assert!(
        metric_sample(
            &page,
            r#"sightline_device_answers_dropped_total{kind="photo",reason="unknown_request"}"#
        ) >= 1.0,
        "{page}"
    );
    assert!(
        metric_sample(
            &page,
            r#"sightline_device_requests_total{kind="photo",outcome="timeout"}"#
        ) >= 1.0,
        "{page}"
    );
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_settles_with_the_glasses_answer_or_sightlines_reason() {
    let package = "com.sightline.speaker";
    let (server, mut sdk, mut g) =
        setup_devices("speaker@example.com", package, &[], "Mentra Live", |_| {}).await;

    sdk.call(
        "play",
        json!({"audioUrl": "https://media.example/chime.mp3", "volume": 0.5}),
        "played",
    )
    .await;
    let req = g.expect_type("audio_play_request").await;
    assert_eq!(req["audioUrl"], "https://media.example/chime.mp3");
    assert_eq!(req["volume"], 0.5);
    assert_eq!(req["appId"], package);
    let answer = json!({"type": "audio_play_response", "requestId": req["requestId"], "success": true, "duration": 1234});
    g.send(answer.clone()).await;
    let done = sdk.wait_event("played").await;
    assert_eq!(
        done["value"],
        json!({"success": true, "duration": 1234}),
        "{done}"
    );
    // Twice, and for a request no one made: dropped, counted.
    g.send(answer).await;
    g.send(
        json!({"type": "audio_play_response", "requestId": "audio_req_nobody", "success": true}),
    )
    .await;

    // The glasses never finish: Sightline's deadline, not the SDK's 60 s.
    sdk.call(
        "play",
        json!({"audioUrl": "https://media.example/long.mp3"}),
        "late",
    )
    .await;
    g.expect_type("audio_play_request").await;
    let done = sdk
        .wait_for("late", Duration::from_secs(10), |_| true)
        .await;
    assert_eq!(done["value"]["success"], false, "{done}");
    assert!(
        done["ms"]
            .as_u64()
            .is_some_and(|ms| (1_400..5_000).contains(&ms)),
        "{done}"
    );

    // stopAudio reaches the glasses.
    sdk.call("stopAudio", json!({"trackId": 1}), "stop").await;
    let stop = g.expect_type("audio_stop_request").await;
    assert_eq!(
        (stop["appId"].as_str(), stop["trackId"].as_u64()),
        (Some(package), Some(1))
    );

    // The glasses drop mid-play: it settles now.
    sdk.call(
        "play",
        json!({"audioUrl": "https://media.example/a.mp3"}),
        "gone",
    )
    .await;
    g.expect_type("audio_play_request").await;
    g.close(1000).await;
    let done = sdk.wait_event("gone").await;
    assert_eq!(
        done["value"],
        json!({"success": false, "error": "Glasses disconnected"}),
        "{done}"
    );
    assert!(quick(&done), "{done}");
    // And with no glasses at all, at once.
    sdk.call(
        "play",
        json!({"audioUrl": "https://media.example/a.mp3"}),
        "none",
    )
    .await;
    let done = sdk.wait_event("none").await;
    assert_eq!(done["value"]["success"], false, "{done}");
    assert!(quick(&done), "{done}");

    let page = scrape(&server).await;
    assert!(
        metric_sample(
            &page,
            r#"sightline_device_answers_dropped_total{kind="audio",reason="unknown_request"}"#
        ) >= 2.0,
        "{page}"
    );
    assert!(
        metric_sample(
            &page,
            r#"sightline_device_requests_total{kind="audio",outcome="ok"}"#
        ) >= 1.0,
        "{page}"
    );
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_polls_streams_tiers_and_the_last_fix() {
    let package = "com.sightline.navigation";
    let (server, mut sdk, mut g) = setup_devices(
        "walker@example.com",
        package,
        &["LOCATION"],
        "Even Realities G1",
        |_| {},
    )
    .await;
    // A fix before anyone listens is kept…
    g.send(json!({"type": "location_update", "lat": 52.52, "lng": 13.405, "accuracy": 8}))
        .await;
    // …and replayed to the first subscriber; the glasses learn the tier.
    sdk.call("subscribeLocation", json!({"accuracy": "high"}), "sub")
        .await;
    let replay = sdk.wait_event("location_event").await;
    assert_eq!(replay["update"]["lat"], 52.52, "{replay}");
    let tier = g.expect_type("set_location_tier").await;
    assert!(tier["tier"].is_string(), "{tier}");
    // A broadcast fix reaches the subscriber.
    g.send(json!({"type": "location_update", "lat": 48.85, "lng": 2.35, "accuracy": 5}))
        .await;
    sdk.wait_for("location_event", WAIT, |v| v["update"]["lat"] == 48.85)
        .await;

    // A poll at realtime accuracy (a fix at most 1 s old) asks the phone,
    // and its answer settles it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sdk.call("location", json!({"accuracy": "realtime"}), "poll")
        .await;
    let ask = g.expect_type("request_single_location").await;
    assert_eq!(ask["accuracy"], "realtime");
    let id = ask["correlationId"]
        .as_str()
        .expect("correlationId")
        .to_string();
    g.send(json!({"type": "location_update", "lat": 40.71, "lng": -74.0, "accuracy": 3, "correlationId": id}))
        .await;
    let done = sdk.wait_event("poll").await;
    assert_eq!(done["outcome"], "resolved", "{done}");
    assert_eq!(done["value"]["lat"], 40.71);
    assert_eq!(done["value"]["correlationId"], id.as_str());
    assert!(quick(&done), "{done}");
    // A standard poll right after is answered from that fix.
    sdk.call("location", json!({"accuracy": "standard"}), "cached")
        .await;
    let done = sdk.wait_event("cached").await;
    assert_eq!(done["value"]["lat"], 40.71, "{done}");
    assert!(quick(&done), "{done}");
    // The phone says nothing: the last fix at Sightline's deadline, not a
    // 15 s SDK timeout.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sdk.call("location", json!({"accuracy": "realtime"}), "stale")
        .await;
    g.expect_type("request_single_location").await;
    let done = sdk
        .wait_for("stale", Duration::from_secs(10), |_| true)
        .await;
    assert_eq!(done["outcome"], "resolved", "{done}");
    assert_eq!(done["value"]["lat"], 40.71);
    assert!(done["ms"].as_u64().is_some_and(|ms| ms < 5_000), "{done}");
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn led_and_wifi_setup_reach_the_glasses() {
    let package = "com.sightline.lights";
    let (server, mut sdk, mut g) =
        setup_devices("lights@example.com", package, &[], "Mentra Live", |_| {}).await;
    sdk.call(
        "led",
        json!({"color": "green", "ontime": 500, "count": 3}),
        "led",
    )
    .await;
    let led = g.expect_type("rgb_led_control").await;
    assert_eq!(led["appId"], package);
    assert_eq!(led["action"], "on");
    assert_eq!(led["color"], "green");
    assert_eq!(led["ontime"], 500);
    assert_eq!(led["count"], 3);
    assert_eq!(sdk.wait_event("led").await["outcome"], "resolved");
    g.send(
        json!({"type": "rgb_led_control_response", "requestId": led["requestId"], "success": true}),
    )
    .await;
    sdk.call("wifi", json!({"reason": "Streaming needs Wi-Fi"}), "wifi")
        .await;
    let wifi = g.expect_type("show_wifi_setup").await;
    assert_eq!(wifi["reason"], "Streaming needs Wi-Fi");
    assert_eq!(wifi["appPackageName"], package);
    eventually_async("the LED answer is counted", || async {
        let page = scrape(&server).await;
        metric_sample(
            &page,
            r#"sightline_device_requests_total{kind="led",outcome="ok"}"#,
        ) >= 1.0
    })
    .await;
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_per_glasses_kept_alive_and_always_ended() {
    let package = "com.sightline.streamer";
    let other = "com.sightline.second";
    let (server, mut sdk, mut g) = setup_devices(
        "streamer@example.com",
        package,
        &["CAMERA"],
        "Mentra Live",
        |c| {
            c.runtime.devices.keepalive_interval = Duration::from_millis(300);
            c.runtime.devices.ack_deadline = Duration::from_millis(200);
        },
    )
    .await;
    let mut second = SdkApp::start("device_calls_app.mjs", other, &[]).await;
    server
        // A background app: a second standard app would replace the first.
        .register_with(
            other,
            &second.url,
            SDK_KEY,
            AppType::Background,
            &["CAMERA"],
        )
        .await;
    g.send(json!({"type": "start_app", "packageName": other}))
        .await;
    second.wait_event("session").await;
    sdk.call(
        "startStream",
        json!({"rtmpUrl": "rtmp://live.example/app/key", "video": {"width": 1280}}),
        "start",
    )
    .await;
    let start = g.expect_type("start_rtmp_stream").await;
    assert_eq!(start["rtmpUrl"], "rtmp://live.example/app/key");
    assert_eq!(start["video"]["width"], 1280);
    let stream_id = start["streamId"].as_str().expect("streamId").to_string();
    sdk.wait_for("stream_status", WAIT, |v| {
        v["status"]["status"] == "initializing"
    })
    .await;
    g.send(json!({"type": "rtmp_stream_status", "streamId": stream_id, "status": "streaming"}))
        .await;
    sdk.wait_for("stream_status", WAIT, |v| v["status"]["status"] == "active")
        .await;
    let view = session_view(&server, "streamer@example.com").await;
    assert_eq!(view["stream"]["streamId"], stream_id.as_str(), "{view}");
    assert_eq!(view["stream"]["status"], "active", "{view}");
    sdk.call("checkStream", json!({}), "check").await;
    let check = sdk.wait_event("check").await;
    assert_eq!(check["value"]["hasActiveStream"], true, "{check}");
    assert_eq!(check["value"]["streamInfo"]["streamId"], stream_id.as_str());
    // Keep-alives come, and are acknowledged.
    for _ in 0..2 {
        let ka = g.expect_type("keep_rtmp_stream_alive").await;
        assert_eq!(ka["streamId"], stream_id.as_str());
        g.send(json!({"type": "keep_alive_ack", "streamId": stream_id, "ackId": ka["ackId"]}))
            .await;
    }

    // A second app is refused while the stream runs.
    second
        .call(
            "startStream",
            json!({"rtmpUrl": "rtmp://live.example/other"}),
            "start",
        )
        .await;
    let refused = second
        .wait_for("stream_status", WAIT, |v| v["status"]["status"] == "error")
        .await;
    assert!(
        refused["status"]["errorDetails"]
            .as_str()
            .is_some_and(|d| d.contains(package)),
        "{refused}"
    );

    // Its app stops it: the glasses are told and the app hears `stopped`.
    sdk.call("stopStream", json!({}), "stop").await;
    let stop = g.expect_type("stop_rtmp_stream").await;
    assert_eq!(stop["streamId"], stream_id.as_str());
    sdk.wait_for("stream_status", WAIT, |v| {
        v["status"]["status"] == "stopped"
    })
    .await;

    // A stream whose glasses fall silent ends in `timeout`, and the SDK can
    // start again.
    sdk.call(
        "startStream",
        json!({"rtmpUrl": "rtmp://live.example/app/key"}),
        "again",
    )
    .await;
    assert_eq!(sdk.wait_event("again").await["outcome"], "resolved");
    g.expect_type("start_rtmp_stream").await;
    let timeout = sdk
        .wait_for("stream_status", WAIT, |v| {
            v["status"]["status"] == "timeout"
        })
        .await;
    assert!(
        timeout["status"]["errorDetails"]
            .as_str()
            .is_some_and(|d| d.contains("keep-alive")),
        "{timeout}"
    );
    sdk.call(
        "startStream",
        json!({"rtmpUrl": "rtmp://live.example/app/key"}),
        "third",
    )
    .await;
    assert_eq!(sdk.wait_event("third").await["outcome"], "resolved");

    // Managed streams are refused at once with the reason.
    sdk.call("managed", json!({}), "managed").await;
    let managed = sdk.wait_event("managed").await;
    assert_eq!(managed["outcome"], "rejected", "{managed}");
    assert!(
        managed["error"]
            .as_str()
            .is_some_and(|e| e.contains("not available")),
        "{managed}"
    );
    assert!(quick(&managed), "{managed}");
    second.stop().await;
    sdk.stop().await;
    server.stop().await;
}
