//! The device request rules, driven with an injected clock: no sockets,
//! no sleeping.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use sightline_protocol::capabilities::profile_for;
use sightline_protocol::device::{
    AudioPlay, DeviceAnswer, DeviceRequest, LedControl, PhotoRequest, RequestKind, StreamStart,
};

use super::*;

const CAMERA: &[&str] = &["CAMERA", "LOCATION"];

fn perms(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

struct World {
    t0: Instant,
    table: DeviceRequests,
    caps: Value,
    perms: Vec<String>,
    phone: bool,
}

impl World {
    fn new(model: &str) -> World {
        let mut table = DeviceRequests::new(DeviceConfig::default());
        table.set_urls(
            "https://cloud.example".into(),
            "http://cloud.example".into(),
            "http://cloud.example/api/photos/u%40x".into(),
        );
        World {
            t0: Instant::now(),
            table,
            caps: profile_for(model),
            perms: perms(CAMERA),
            phone: true,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn ask_as(&mut self, ms: u64, package: &str, req: DeviceRequest) -> DeviceEffects {
        let now = self.at(ms);
        let glasses = Readiness {
            phone: self.phone,
            glasses: self.phone,
            model: "Test Glasses",
            capabilities: &self.caps,
            wifi_connected: None,
        };
        let app = Asker {
            package,
            permissions: &self.perms,
            public_url: "http://app.example/",
            user_token: "u@x:hash",
        };
        self.table.ask(now, app, glasses, req, "stream-1")
    }

    fn ask(&mut self, ms: u64, req: DeviceRequest) -> DeviceEffects {
        self.ask_as(ms, "com.a", req)
    }
}

fn photo(id: &str) -> DeviceRequest {
    DeviceRequest::Photo(PhotoRequest {
        request_id: id.into(),
        save_to_gallery: false,
        size: "medium".into(),
        compress: "none".into(),
        custom_webhook_url: None,
        auth_token: None,
    })
}

fn audio(id: &str, blocking: bool) -> DeviceRequest {
    DeviceRequest::AudioPlay(AudioPlay {
        request_id: id.into(),
        audio_url: "https://cloud.example/api/tts?text=hi".into(),
        volume: 1.0,
        stop_other_audio: blocking,
        track_id: 2,
    })
}

fn to_glasses(fx: &DeviceEffects) -> Vec<Value> {
    fx.iter()
        .filter_map(|e| match e {
            DeviceEffect::ToGlasses(t) => serde_json::from_str(t).ok(),
            _ => None,
        })
        .collect()
}

fn to_app(fx: &DeviceEffects, package: &str) -> Vec<Value> {
    fx.iter()
        .filter_map(|e| match e {
            DeviceEffect::ToApp { package: p, text } if p == package => {
                serde_json::from_str(text).ok()
            }
            _ => None,
        })
        .collect()
}

fn outcomes(fx: &DeviceEffects) -> Vec<Outcome> {
    fx.iter()
        .filter_map(|e| match e {
            DeviceEffect::Settled(s) => Some(s.outcome),
            DeviceEffect::PhotoFailed(f) => Some(f.settled.outcome),
            _ => None,
        })
        .collect()
}

fn photo_failures(fx: &DeviceEffects) -> Vec<&PhotoFailure> {
    fx.iter()
        .filter_map(|e| match e {
            DeviceEffect::PhotoFailed(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn a_photo_goes_to_the_glasses_with_where_to_upload_it() {
    let mut w = World::new("Mentra Live");
    let fx = w.ask(0, photo("photo_req_1"));
    let g = to_glasses(&fx);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["type"], "photo_request");
    assert_eq!(g[0]["requestId"], "photo_req_1");
    assert_eq!(g[0]["appId"], "com.a");
    assert_eq!(g[0]["webhookUrl"], "http://app.example/photo-upload");
    assert_eq!(g[0]["authToken"], "u@x:hash");
    assert_eq!(
        g[0]["uploadUrl"],
        "http://cloud.example/api/photos/u%40x/photo%5Freq%5F1"
    );
    assert!(fx.contains(&DeviceEffect::Wake(w.at(25_000))));
    // The phone never confirms; at Sightline's deadline the app is told.
    assert!(outcomes(&w.table.tick(w.at(24_999))).is_empty());
    let fx = w.table.tick(w.at(25_000));
    let f = photo_failures(&fx);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].url, "http://app.example/photo-upload");
    assert_eq!(f[0].body["type"], "photo_error");
    assert_eq!(f[0].body["errorCode"], "PHONE_TIMEOUT");
    assert_eq!(f[0].settled.outcome, Outcome::Timeout);
}

#[test]
fn a_photo_that_cannot_be_taken_fails_at_once_with_its_reason() {
    let mut w = World::new("Even Realities G1");
    let fx = w.ask(0, photo("p1"));
    assert!(to_glasses(&fx).is_empty());
    assert_eq!(photo_failures(&fx)[0].body["errorCode"], "NO_CAMERA");

    let mut w = World::new("Mentra Live");
    w.perms = perms(&["MICROPHONE"]);
    let fx = w.ask(0, photo("p1"));
    assert_eq!(
        photo_failures(&fx)[0].body["errorCode"],
        "PERMISSION_DENIED"
    );

    let mut w = World::new("Mentra Live");
    w.phone = false;
    let fx = w.ask(0, photo("p1"));
    assert_eq!(
        photo_failures(&fx)[0].body["errorCode"],
        "PHONE_GLASSES_NOT_CONNECTED"
    );
    // A photo for the app's own URL: the SDK resolved it already, so the
    // failure is only counted.
    let fx = w.ask(
        0,
        DeviceRequest::Photo(PhotoRequest {
            custom_webhook_url: Some("https://elsewhere/x".into()),
            ..match photo("p2") {
                DeviceRequest::Photo(p) => p,
                _ => unreachable!(),
            }
        }),
    );
    assert!(photo_failures(&fx).is_empty());
    assert_eq!(outcomes(&fx), vec![Outcome::NotConnected]);
}

#[test]
fn a_photo_failure_the_phone_reports_reaches_the_app_and_a_second_answer_is_dropped() {
    let mut w = World::new("Mentra Live");
    w.ask(0, photo("p1"));
    let answer = DeviceAnswer::Photo {
        request_id: "p1".into(),
        success: false,
        code: Some("CAMERA_BUSY".into()),
        message: Some("The camera is busy".into()),
    };
    let fx = w.table.answered(w.at(800), answer.clone(), None);
    let f = photo_failures(&fx);
    assert_eq!(f[0].body["errorCode"], "CAMERA_BUSY");
    assert_eq!(f[0].settled.took, Duration::from_millis(800));
    let fx = w.table.answered(w.at(900), answer, None);
    assert_eq!(
        fx,
        vec![DeviceEffect::AnswerDropped {
            kind: RequestKind::Photo,
            why: "unknown_request"
        }]
    );
}

#[test]
fn a_photo_uploaded_through_sightline_needs_its_token_and_settles_once() {
    let mut w = World::new("Mentra Live");
    let fx = w.ask(0, photo("p1"));
    let token = to_glasses(&fx)[0]["uploadToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        w.table.photo_uploaded(w.at(10), "p1", "wrong", true).err(),
        Some(UploadRefused::WrongToken)
    );
    assert!(w
        .table
        .photo_uploaded(w.at(10), "p1", &token, false)
        .is_ok());
    let (target, settled) = w
        .table
        .photo_uploaded(w.at(20), "p1", &token, true)
        .unwrap();
    assert_eq!(target.upload_url, "http://app.example/photo-upload");
    assert_eq!(settled.outcome, Outcome::Ok);
    assert_eq!(
        w.table.photo_uploaded(w.at(30), "p1", &token, true).err(),
        Some(UploadRefused::NotWaiting)
    );
    assert!(outcomes(&w.table.tick(w.at(30_000))).is_empty());
}

#[test]
fn audio_answers_reach_the_asking_app_only_and_once() {
    let mut w = World::new("Mentra Live");
    let fx = w.ask_as(0, "com.a", audio("a1", true));
    let g = to_glasses(&fx);
    // The SDK writes this server's URL as https; the glasses get the real one.
    assert_eq!(g[0]["audioUrl"], "http://cloud.example/api/tts?text=hi");
    assert_eq!(g[0]["trackId"], 2);
    w.ask_as(5, "com.b", audio("b1", true));
    let answer = |id: &str| DeviceAnswer::AudioPlayed {
        request_id: id.into(),
        success: true,
        error: None,
        duration: Some(1.5),
    };
    // An answer naming another app than the one that asked is dropped.
    assert!(matches!(
        w.table.answered(w.at(1400), answer("a1"), Some("com.b"))[0],
        DeviceEffect::AnswerDropped {
            why: "another_app",
            ..
        }
    ));
    let fx = w.table.answered(w.at(1500), answer("a1"), Some("com.a"));
    assert_eq!(to_app(&fx, "com.a")[0]["requestId"], "a1");
    assert_eq!(to_app(&fx, "com.a")[0]["success"], true);
    assert!(to_app(&fx, "com.b").is_empty());
    assert!(matches!(
        w.table.answered(w.at(1600), answer("a1"), None)[0],
        DeviceEffect::AnswerDropped { .. }
    ));
    // A non-blocking play is handed over and waits for nothing.
    let fx = w.ask(0, audio("a2", false));
    assert_eq!(outcomes(&fx), vec![Outcome::Forwarded]);
    assert!(w
        .table
        .pending(w.at(0))
        .iter()
        .all(|p| p.request_id != "a2"));
}

#[test]
fn everything_waiting_fails_at_once_when_the_glasses_go() {
    let mut w = World::new("Mentra Live");
    w.ask(0, audio("a1", true));
    w.ask(0, photo("p1"));
    w.ask(
        0,
        DeviceRequest::LocationPoll {
            correlation_id: "poll_1".into(),
            accuracy: "high".into(),
        },
    );
    let fx = w.table.glasses_gone(w.at(100));
    let app = to_app(&fx, "com.a");
    assert!(app
        .iter()
        .any(|m| m["type"] == "audio_play_response" && m["success"] == false));
    // No location is known: the app hears why.
    assert!(app
        .iter()
        .any(|m| m["type"] == "tpa_connection_error" && m["code"] == "LOCATION_UNAVAILABLE"));
    assert_eq!(
        photo_failures(&fx)[0].body["errorCode"],
        "PHONE_GLASSES_NOT_CONNECTED"
    );
    assert!(w.table.pending(w.at(100)).is_empty());
}

#[test]
fn no_app_may_have_more_than_its_share_of_requests_waiting() {
    let mut w = World::new("Mentra Live");
    for n in 0..32 {
        w.ask(0, audio(&format!("a{n}"), true));
    }
    let fx = w.ask(0, audio("a32", true));
    assert_eq!(outcomes(&fx), vec![Outcome::Busy]);
    assert_eq!(to_app(&fx, "com.a")[0]["success"], false);
    // Another app is not affected.
    let fx = w.ask_as(0, "com.b", audio("b1", true));
    assert_eq!(to_glasses(&fx).len(), 1);
}

fn fix(lat: f64, correlation: Option<&str>) -> Map<String, Value> {
    let mut v = json!({"type": "location_update", "lat": lat, "lng": 2.0, "accuracy": 5});
    if let Some(c) = correlation {
        v["correlationId"] = c.into();
    }
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[test]
fn location_polls_are_answered_from_a_fresh_fix_or_asked_of_the_phone() {
    let mut w = World::new("Even Realities G1");
    let poll = |id: &str, accuracy: &str| DeviceRequest::LocationPoll {
        correlation_id: id.into(),
        accuracy: accuracy.into(),
    };
    let fx = w.ask(0, poll("poll_1", "high"));
    let g = to_glasses(&fx);
    assert_eq!(g[0]["type"], "request_single_location");
    assert_eq!(g[0]["correlationId"], "poll_1");
    let (asker, fx) = w.table.location_fix(w.at(300), &fix(1.0, Some("poll_1")));
    assert_eq!(asker, Some(("com.a".to_string(), "poll_1".to_string())));
    assert_eq!(outcomes(&fx), vec![Outcome::Ok]);
    // Five seconds later a `high` poll (10 s) is answered from that fix…
    let fx = w.ask(5_300, poll("poll_2", "high"));
    assert!(
        matches!(&fx[0], DeviceEffect::LocationToApp { data, .. } if data["correlationId"] == "poll_2" && data["lat"] == 1.0)
    );
    // …but a `realtime` one (1 s) asks the phone again.
    let fx = w.ask(5_300, poll("poll_3", "realtime"));
    assert_eq!(to_glasses(&fx).len(), 1);
    // No answer: the last fix, whatever its age, rather than nothing.
    let fx = w.table.tick(w.at(5_300 + 12_000));
    assert!(
        matches!(&fx[0], DeviceEffect::LocationToApp { data, .. } if data["correlationId"] == "poll_3")
    );
    assert_eq!(outcomes(&fx), vec![Outcome::Timeout]);
    // A poll without the LOCATION permission gets no location.
    w.perms = perms(&["CAMERA"]);
    let fx = w.ask(6_000, poll("poll_4", "standard"));
    assert_eq!(to_app(&fx, "com.a")[0]["type"], "permission_error");
    assert_eq!(outcomes(&fx), vec![Outcome::NoPermission]);
}

#[test]
fn the_glasses_learn_the_highest_location_tier_wanted() {
    let mut w = World::new("Even Realities G1");
    assert!(w.table.location_wanted(&[], true).is_empty());
    let fx = w.table.location_wanted(&["standard", "high"], true);
    assert_eq!(to_glasses(&fx)[0]["tier"], "high");
    assert!(w.table.location_wanted(&["high"], true).is_empty());
    let fx = w.table.location_wanted(&[], true);
    assert_eq!(to_glasses(&fx)[0]["tier"], "reduced");
}

fn start() -> DeviceRequest {
    DeviceRequest::StreamStart(StreamStart {
        rtmp_url: "rtmp://live.example/app/key".into(),
        video: Map::new(),
        audio: Map::new(),
        stream: Map::new(),
    })
}

#[test]
fn a_stream_is_kept_alive_and_given_up_after_three_missed_acks() {
    let mut w = World::new("Mentra Live");
    let fx = w.ask(0, start());
    assert_eq!(to_glasses(&fx)[0]["type"], "start_rtmp_stream");
    let status = &to_app(&fx, "com.a")[0];
    assert_eq!(status["type"], "rtmp_stream_status");
    assert_eq!(status["status"], "initializing");
    assert_eq!(status["streamId"], "stream-1");
    // Another app is refused while it runs.
    let fx = w.ask_as(10, "com.b", start());
    let refused = &to_app(&fx, "com.b")[0];
    assert_eq!(refused["status"], "error");
    assert!(refused["errorDetails"].as_str().unwrap().contains("com.a"));
    // The glasses say it is live.
    let fx = w.table.answered(
        w.at(1000),
        DeviceAnswer::StreamStatus {
            stream_id: "stream-1".into(),
            status: "streaming".into(),
            error_details: None,
            stats: None,
        },
        None,
    );
    assert_eq!(to_app(&fx, "com.a")[0]["status"], "active");
    // Keep-alive at 15 s, acknowledged.
    let fx = w.table.tick(w.at(15_000));
    let ka = &to_glasses(&fx)[0];
    assert_eq!(ka["type"], "keep_rtmp_stream_alive");
    let ack = ka["ackId"].as_str().unwrap().to_string();
    assert!(w
        .table
        .answered(
            w.at(15_100),
            DeviceAnswer::KeepAliveAck {
                stream_id: "stream-1".into(),
                ack_id: ack
            },
            None
        )
        .is_empty());
    // Then the glasses fall silent: three keep-alives go unanswered.
    let mut t = 15_000;
    let mut ended = None;
    for _ in 0..20 {
        t += 5_000;
        let fx = w.table.tick(w.at(t));
        if let Some(m) = to_app(&fx, "com.a").into_iter().next() {
            ended = Some((t, m, to_glasses(&fx)));
            break;
        }
    }
    let (t, m, glasses) = ended.expect("the stream is given up");
    assert_eq!(m["status"], "timeout");
    assert!(glasses.iter().any(|g| g["type"] == "stop_rtmp_stream"));
    assert!((55_000..=75_000).contains(&t), "given up at {t} ms");
    assert!(w.table.streams().view().is_none());
}

#[test]
fn a_stop_always_ends_with_stopped_even_for_a_stream_that_is_not_there() {
    let mut w = World::new("Mentra Live");
    let fx = w.ask(0, DeviceRequest::StreamStop { stream_id: None });
    assert_eq!(to_app(&fx, "com.a")[0]["status"], "stopped");
    w.ask(0, start());
    // Another app cannot stop it, but hears `stopped` for itself.
    let fx = w.ask_as(
        5,
        "com.b",
        DeviceRequest::StreamStop {
            stream_id: Some("stream-1".into()),
        },
    );
    assert!(to_glasses(&fx).is_empty());
    assert!(to_app(&fx, "com.b")[0].get("streamId").is_some());
    assert!(w.table.streams().view().is_some());
    let fx = w.ask(10, DeviceRequest::StreamStop { stream_id: None });
    assert_eq!(to_glasses(&fx)[0]["type"], "stop_rtmp_stream");
    assert_eq!(to_app(&fx, "com.a")[0]["status"], "stopped");
    // A stream whose app stops is stopped on the glasses.
    w.ask(20, start());
    let fx = w.table.app_stopped(w.at(30), "com.a", true);
    assert_eq!(to_glasses(&fx)[0]["type"], "stop_rtmp_stream");
    assert!(w.table.streams().view().is_none());
}

#[test]
fn glasses_without_video_or_wifi_refuse_a_stream_with_the_reason() {
    let mut w = World::new("Even Realities G1");
    let fx = w.ask(0, start());
    let m = &to_app(&fx, "com.a")[0];
    assert_eq!(m["status"], "error");
    assert!(m["errorDetails"]
        .as_str()
        .unwrap()
        .contains("cannot stream"));
}

#[test]
fn led_requests_need_an_led_and_hear_the_glasses_answer() {
    let led = DeviceRequest::Led(LedControl {
        request_id: "led_1".into(),
        action: "on".into(),
        color: Some("green".into()),
        ontime: None,
        offtime: None,
        count: None,
    });
    let mut w = World::new("Even Realities G1");
    let fx = w.ask(0, led.clone());
    assert!(to_glasses(&fx).is_empty());
    assert_eq!(outcomes(&fx), vec![Outcome::NoCapability]);
    let mut w = World::new("Mentra Live");
    let fx = w.ask(0, led);
    let g = &to_glasses(&fx)[0];
    assert_eq!(
        (g["color"].as_str(), g["ontime"].as_u64()),
        (Some("green"), Some(1000))
    );
    let fx = w.table.answered(
        w.at(40),
        DeviceAnswer::Led {
            request_id: "led_1".into(),
            success: true,
            error: None,
        },
        None,
    );
    assert_eq!(to_app(&fx, "com.a")[0]["type"], "rgb_led_control_response");
    assert_eq!(outcomes(&fx), vec![Outcome::Ok]);
}
