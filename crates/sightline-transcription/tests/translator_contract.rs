//! Contract tests of the text translators: the LibreTranslate and DeepL
//! clients talk to a local HTTP server that follows each API's documented
//! request and answer formats (the real services cannot be reached from
//! Sightline's test machines, so nothing here talks to them).
//!
//! The server checks the exact request — LibreTranslate: `POST /translate`
//! with JSON `q`, `source`, `target`, `format: "text"` and `api_key`;
//! DeepL: `POST /v2/translate` with `Authorization: DeepL-Auth-Key` and
//! JSON `text: [..]`, `target_lang`, `source_lang` — and answers like the
//! service (`translatedText` and `detectedLanguage`; `translations[0]`),
//! or with its error statuses. The tests assert the results, the error
//! classes (bad key and quota permanent; 429 and 5xx transient; a silent
//! server times out, transient), the bounded text size, and a
//! `TranslationRelay` fed speech results: finals translated in order with
//! the spoken text kept, a transient failure retried, a permanent one
//! failing the pair once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, Recipient};
use common::translation_api::{FakeHttp, Reply};
use serde_json::json;
use sightline_transcription::deepl::DeepL;
use sightline_transcription::libretranslate::LibreTranslate;
use sightline_transcription::translator::TranslatorLimits;
use sightline_transcription::{
    RelaySettings, StreamEvent, StreamSpec, StreamUpdate, TextTranslator, Transcript,
    TranslateRequest, TranslationRelay,
};
use tokio::sync::mpsc;

const KEY: &str = "translator-test-key";

fn limits() -> TranslatorLimits {
    TranslatorLimits {
        max_chars: 2000,
        timeout: Duration::from_millis(800),
    }
}

fn request(text: &str, source: Option<&str>, target: &str) -> TranslateRequest {
    TranslateRequest {
        text: text.into(),
        source: source.map(String::from),
        target: target.into(),
    }
}

fn libre(url: &str) -> LibreTranslate {
    LibreTranslate::new(url.into(), Some(KEY.into()), limits())
}

#[actix_rt::test]
async fn libretranslate_gets_the_documented_request_and_its_answer_is_read() {
    let mut api = FakeHttp::start(|_, req| {
        let q = req.body["q"].as_str().unwrap_or_default();
        let text = if q == "call my mother" { "llama a mi madre" } else { "?" };
        Reply::Json(
            200,
            json!({"translatedText": text, "detectedLanguage": {"confidence": 92.0, "language": "en"}}),
        )
    })
    .await;
    let t = libre(&api.url);
    let out = t
        .translate(request("call my mother", Some("en-US"), "es-ES"))
        .await
        .expect("translated");
    assert_eq!(out.text, "llama a mi madre");
    assert_eq!(out.detected_source.as_deref(), Some("en"));
    let req = api.request().await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/translate");
    assert_eq!(
        req.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        req.body,
        json!({"q": "call my mother", "source": "en", "target": "es", "format": "text", "api_key": KEY})
    );
    // Detecting the language: "source": "auto".
    t.translate(request("call my mother", None, "es-ES"))
        .await
        .expect("translated");
    assert_eq!(api.request().await.body["source"], "auto");
}

#[actix_rt::test]
async fn libretranslate_errors_are_classed() {
    let api = FakeHttp::start(|n, _| match n {
        1 => Reply::Json(403, json!({"error": "Invalid API key"})),
        2 => Reply::Json(400, json!({"error": "xx is not supported"})),
        3 => Reply::Json(429, json!({"error": "Slowdown: 30 per 1 minute"})),
        4 => Reply::Json(500, json!({"error": "Cannot translate text"})),
        5 => Reply::Json(200, json!({"unexpected": true})),
        _ => Reply::Silent,
    })
    .await;
    let t = libre(&api.url);
    let go = || t.translate(request("hello", Some("en"), "es"));
    let e = go().await.unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("Invalid API key"), "{e}");
    assert!(go().await.unwrap_err().is_permanent());
    assert!(!go().await.unwrap_err().is_permanent());
    assert!(!go().await.unwrap_err().is_permanent());
    assert!(!go().await.unwrap_err().is_permanent());
    let began = Instant::now();
    let e = go().await.unwrap_err();
    assert!(!e.is_permanent(), "{e}");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "a silent API times out after the configured 800 ms: {:?}",
        began.elapsed()
    );
    // Nothing listens: transient.
    drop(api);
    let gone = LibreTranslate::new("http://127.0.0.1:9".into(), None, limits());
    assert!(!gone
        .translate(request("hello", None, "es"))
        .await
        .unwrap_err()
        .is_permanent());
}

#[actix_rt::test]
async fn long_text_is_bounded_per_request() {
    let mut api = FakeHttp::start(|_, _| Reply::Json(200, json!({"translatedText": "x"}))).await;
    let t = LibreTranslate::new(
        api.url.clone(),
        None,
        TranslatorLimits {
            max_chars: 20,
            timeout: Duration::from_secs(2),
        },
    );
    t.translate(request(&"word ".repeat(100), Some("en"), "es"))
        .await
        .expect("translated");
    let q = api.request().await.body["q"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(q.chars().count() <= 20, "{q:?}");
    assert!(q.starts_with("word word"), "{q:?}");
}

#[actix_rt::test]
async fn deepl_gets_the_documented_request_and_its_answer_is_read() {
    let mut api = FakeHttp::start(|n, _| match n {
        1 => Reply::Json(
            200,
            json!({"translations": [{"detected_source_language": "DE", "text": "Good morning"}]}),
        ),
        2 => Reply::Json(403, json!({"message": "Wrong endpoint"})),
        3 => Reply::Json(456, json!({"message": "Quota exceeded"})),
        4 => Reply::Json(429, json!({"message": "Too many requests"})),
        _ => Reply::Json(503, json!({"message": "Service unavailable"})),
    })
    .await;
    let t = DeepL::new(Some(api.url.clone()), KEY.into(), limits());
    let out = t
        .translate(request("Guten Morgen", Some("de-DE"), "en-US"))
        .await
        .expect("translated");
    assert_eq!(out.text, "Good morning");
    assert_eq!(out.detected_source.as_deref(), Some("de"));
    let req = api.request().await;
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v2/translate")
    );
    assert_eq!(
        req.headers.get("authorization").map(String::as_str),
        Some(format!("DeepL-Auth-Key {KEY}").as_str())
    );
    assert_eq!(
        req.body,
        json!({"text": ["Guten Morgen"], "target_lang": "EN-US", "source_lang": "DE"})
    );
    let go = || t.translate(request("Hallo", None, "fr-FR"));
    assert!(go().await.unwrap_err().is_permanent(), "403: bad key");
    assert!(go().await.unwrap_err().is_permanent(), "456: quota used up");
    assert!(!go().await.unwrap_err().is_permanent(), "429");
    assert!(!go().await.unwrap_err().is_permanent(), "503");
    let req = api.request().await;
    assert_eq!(req.body, json!({"text": ["Hallo"], "target_lang": "FR"}));
}

/// Collects what a relay sends the session.
struct Collector(mpsc::UnboundedSender<StreamUpdate>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<StreamUpdate> for Collector {
    type Result = ();
    fn handle(&mut self, msg: StreamUpdate, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

fn heard(text: &str, is_final: bool, start_ms: u64) -> StreamUpdate {
    StreamUpdate {
        spec: StreamSpec::transcription("en-US"),
        event: StreamEvent::Transcript {
            transcript: Transcript::new(text, is_final),
            start_ms,
            end_ms: start_ms + 500,
            provider: "vosk",
        },
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<StreamUpdate>) -> StreamUpdate {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no update within 5 s")
        .expect("collector gone")
}

fn relay(
    url: &str,
) -> (
    actix::Addr<TranslationRelay>,
    mpsc::UnboundedReceiver<StreamUpdate>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let out: Recipient<StreamUpdate> = Collector(tx).start().recipient();
    let translator: Arc<dyn TextTranslator> = Arc::new(libre(url));
    let settings = RelaySettings {
        retry_delay: Duration::from_millis(50),
        ..RelaySettings::default()
    };
    let addr = TranslationRelay::new(
        StreamSpec::translation("en-US", "es-ES"),
        translator,
        settings,
        out,
    )
    .start();
    (addr, rx)
}

#[actix_rt::test]
async fn the_relay_translates_finals_in_order_and_retries_transient_failures() {
    let mut api = FakeHttp::start(|n, req| {
        if n == 2 {
            return Reply::Json(503, json!({"error": "busy"}));
        }
        let q = req.body["q"].as_str().unwrap_or_default().to_string();
        Reply::Json(200, json!({"translatedText": format!("es:{q}")}))
    })
    .await;
    let (relay, mut out) = relay(&api.url);
    relay.do_send(heard("one", true, 0));
    relay.do_send(heard("two", true, 1000));
    for (text, original, start) in [("es:one", "one", 0), ("es:two", "two", 1000)] {
        let u = next(&mut out).await;
        assert_eq!(u.spec, StreamSpec::translation("en-US", "es-ES"));
        let StreamEvent::Transcript {
            transcript,
            start_ms,
            ..
        } = u.event
        else {
            panic!("{:?}", u.event)
        };
        assert_eq!(transcript.text, text);
        assert_eq!(transcript.original_text.as_deref(), Some(original));
        assert!(transcript.is_final && !transcript.untranslated);
        assert_eq!(start_ms, start, "the speech stream's times are kept");
    }
    // "two" was asked twice (503, then answered).
    let mut asked = Vec::new();
    for _ in 0..3 {
        asked.push(
            api.request().await.body["q"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(asked, vec!["one", "two", "two"]);
}

#[actix_rt::test]
async fn a_refused_key_fails_the_pair_once() {
    let mut api =
        FakeHttp::start(|_, _| Reply::Json(403, json!({"error": "Invalid API key"}))).await;
    let (relay, mut out) = relay(&api.url);
    relay.do_send(heard("one", true, 0));
    relay.do_send(heard("two", true, 1000));
    let u = next(&mut out).await;
    let StreamEvent::Failed { reason } = u.event else {
        panic!("{:?}", u.event)
    };
    assert!(reason.contains("403"), "{reason}");
    api.request().await;
    relay.do_send(heard("three", true, 2000));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(out.try_recv().is_err(), "failed once, nothing more");
    assert_eq!(api.pending(), 0, "no request after the refusal");
}
