//! `GET /api/tts`: the audio the SDK's `session.audio.speak(text, options)`
//! plays. The SDK hands the glasses' phone this URL with the text and the
//! app's voice options in the query; the phone fetches it and plays the
//! answer. Like the MentraOS cloud's route it needs no credential (the
//! phone's player sends none); it is bounded instead: the text's length,
//! syntheses at once, and the audio's size and time (see
//! `sightline_speech`).
//!
//! Answers: the audio with its `Content-Type` (`audio/wav` from espeak-ng,
//! `audio/mpeg` from ElevenLabs), or `{"success": false, "message"}` with
//! 400 (bad parameters), 413 (text too long), 502 (the provider failed) or
//! 503 (busy, or no provider configured).

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use sightline_speech::{RawSpeechQuery, SpeechError};

use crate::SharedState;

/// `GET /api/tts?text=…[&voice_id=…][&model_id=…][&voice_settings=<JSON>]`.
#[utoipa::path(
    get, path = "/api/tts", tag = "apps",
    params(
        ("text" = String, Query, description = "What to say"),
        ("voice_id" = Option<String>, Query, description = "The provider's voice"),
        ("model_id" = Option<String>, Query, description = "The provider's model"),
        ("voice_settings" = Option<String>, Query, description = "JSON: stability, similarity_boost, style, use_speaker_boost, speed"),
    ),
    responses(
        (status = 200, description = "The speech (`audio/wav` from espeak-ng, `audio/mpeg` from ElevenLabs)"),
        (status = 400, description = "`{success: false, message}`: bad parameters"),
        (status = 413, description = "`{success: false, message}`: text too long"),
        (status = 502, description = "`{success: false, message}`: the provider failed"),
        (status = 503, description = "`{success: false, message}`: busy, or no provider configured"),
    )
)]
pub async fn speak(state: web::Data<SharedState>, req: HttpRequest) -> HttpResponse {
    let speech = &state.speech;
    let metrics = &state.runtime.shared.metrics;
    let provider = speech.provider_name();
    let count = |outcome: &str| {
        metrics
            .tts_requests
            .with_label_values(&[provider, outcome])
            .inc();
    };
    // Form decoding, as the SDK's URLSearchParams encodes: `+` is a space.
    let raw = match web::Query::<RawSpeechQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => {
            count("bad_request");
            return refuse(StatusCode::BAD_REQUEST, format!("Invalid query: {e}"));
        }
    };
    let request = match speech.parse(raw) {
        Ok(r) => r,
        Err(e) if e.is_too_long() => {
            count("too_long");
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
        }
        Err(e) => {
            count("bad_request");
            return refuse(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match speech.speak(&request).await {
        Ok(spoken) => {
            count("ok");
            if spoken.cached {
                metrics.tts_cache_hits.inc();
            }
            HttpResponse::Ok()
                .content_type(spoken.audio.content_type)
                // The same URL always speaks the same audio.
                .insert_header(CacheControl(vec![
                    CacheDirective::Public,
                    CacheDirective::MaxAge(86_400),
                ]))
                .body(spoken.audio.bytes)
        }
        Err(SpeechError::Request(e)) => {
            count("bad_request");
            refuse(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e @ SpeechError::NotConfigured) => {
            count("not_configured");
            refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e @ SpeechError::Busy) => {
            count("busy");
            refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(SpeechError::Synthesis(e)) => {
            count("failed");
            // The text is the user's: it is not logged.
            tracing::warn!(provider, error = %e, chars = request.text.chars().count(), "text-to-speech failed");
            refuse(StatusCode::BAD_GATEWAY, "Speech synthesis failed".into())
        }
    }
}

fn refuse(status: StatusCode, message: String) -> HttpResponse {
    let mut answer = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer.insert_header(("Retry-After", "1"));
    }
    answer
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(json!({"success": false, "message": message}))
}
