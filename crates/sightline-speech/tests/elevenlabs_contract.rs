//! The ElevenLabs provider against a small ElevenLabs-shaped server run by
//! the test: the request Sightline sends (path, key header, JSON body) and
//! what it makes of failing answers (an error status, too much audio, an
//! answer too slow).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use sightline_speech::{
    ElevenLabs, ElevenLabsConfig, RawSpeechQuery, RequestLimits, SpeechRequest, SpeechSynthesizer,
    SynthesisError,
};

/// What the fake server was sent.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Answers by voice id: `slow` after 2 s, `big` with 64 KiB, `broken` with
/// 500, any other with a few bytes of "MP3".
async fn speak(
    req: HttpRequest,
    voice: web::Path<String>,
    body: web::Bytes,
    log: web::Data<Log>,
) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
        path: req.path().to_string(),
        key: header("xi-api-key"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    match voice.as_str() {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            HttpResponse::Ok().content_type("audio/mpeg").body("late")
        }
        "big" => HttpResponse::Ok()
            .content_type("audio/mpeg")
            .body(vec![0u8; 64 << 10]),
        "broken" => HttpResponse::InternalServerError().json(json!({"detail": "voice exploded"})),
        _ => HttpResponse::Ok()
            .content_type("audio/mpeg")
            .body(&b"ID3 fake mp3"[..]),
    }
}

/// The fake server on a free loopback port, running on the test's system.
fn fake_elevenlabs() -> (String, Log) {
    let log: Log = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let data = web::Data::new(log.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/text-to-speech/{voice}/stream", web::post().to(speak))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    actix_rt::spawn(server);
    (format!("http://{addr}"), log)
}

fn provider(base_url: &str) -> ElevenLabs {
    ElevenLabs::new(ElevenLabsConfig {
        base_url: base_url.into(),
        api_key: "xi-test-key".into(),
        timeout: Duration::from_millis(500),
        max_audio_bytes: 16 << 10,
    })
}

fn request(voice: Option<&str>, settings: Option<&str>) -> SpeechRequest {
    SpeechRequest::parse(
        RawSpeechQuery {
            text: Some("Hello from the glasses".into()),
            voice_id: voice.map(String::from),
            model_id: None,
            voice_settings: settings.map(String::from),
        },
        RequestLimits::default(),
    )
    .expect("a valid request")
}

#[actix_rt::test]
async fn the_request_carries_the_key_the_voice_and_the_settings() {
    let (url, log) = fake_elevenlabs();
    let p = provider(&url);
    let audio = p
        .synthesize(&request(None, None))
        .await
        .expect("audio from the fake");
    assert_eq!(&audio.bytes[..], b"ID3 fake mp3");
    assert_eq!(audio.content_type, "audio/mpeg");

    let mut chosen = request(
        Some("21m00Tcm4TlvDq8ikWAM"),
        Some(r#"{"stability":0.3,"speed":0.9,"use_speaker_boost":true}"#),
    );
    chosen.model_id = Some("eleven_multilingual_v2".into());
    p.synthesize(&chosen).await.expect("audio");

    let seen = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].path,
        "/v1/text-to-speech/8IRrZoKuYTPnpLc6lM6a/stream"
    );
    assert_eq!(seen[0].key.as_deref(), Some("xi-test-key"));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        seen[0].body,
        json!({
            "text": "Hello from the glasses",
            "model_id": "eleven_turbo_v2_5",
            "voice_settings": {"stability": 0.68, "similarity_boost": 0.75, "style": 0.0, "speed": 1.13}
        })
    );
    assert_eq!(
        seen[1].path,
        "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"
    );
    assert_eq!(
        seen[1].body,
        json!({
            "text": "Hello from the glasses",
            "model_id": "eleven_multilingual_v2",
            "voice_settings": {
                "stability": 0.3, "similarity_boost": 0.75, "style": 0.0,
                "use_speaker_boost": true, "speed": 0.9
            }
        })
    );
}

#[actix_rt::test]
async fn an_error_status_is_a_typed_error_with_the_detail() {
    let (url, _log) = fake_elevenlabs();
    let e = provider(&url)
        .synthesize(&request(Some("broken"), None))
        .await
        .expect_err("a 500 is no audio");
    match e {
        SynthesisError::Status { status, detail, .. } => {
            assert_eq!(status, 500);
            assert!(detail.contains("voice exploded"), "{detail}");
        }
        e => panic!("expected a status error, got {e:?}"),
    }
}

#[actix_rt::test]
async fn too_much_audio_is_refused() {
    let (url, _log) = fake_elevenlabs();
    let e = provider(&url)
        .synthesize(&request(Some("big"), None))
        .await
        .expect_err("64 KiB is over the 16 KiB limit");
    assert!(
        matches!(e, SynthesisError::TooLarge { limit, .. } if limit == 16 << 10),
        "{e:?}"
    );
}

#[actix_rt::test]
async fn a_slow_answer_times_out() {
    let (url, _log) = fake_elevenlabs();
    let started = std::time::Instant::now();
    let e = provider(&url)
        .synthesize(&request(Some("slow"), None))
        .await
        .expect_err("2 s is past the 500 ms limit");
    assert!(matches!(e, SynthesisError::Timeout { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn nothing_listening_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let e = provider(&format!("http://{addr}"))
        .synthesize(&request(None, None))
        .await
        .expect_err("no server");
    assert!(matches!(e, SynthesisError::Unavailable { .. }), "{e:?}");
}
