//! LibreTranslate (`POST /translate`), the text translator that can run on
//! the user's own machine next to the local recogniser.
//!
//! Request: a JSON body `{"q": text, "source": "en" | "auto", "target":
//! "es", "format": "text", "api_key": key}` (the key only when one is
//! configured). Answer: `{"translatedText": text, "detectedLanguage":
//! {"language": "en", "confidence": 90}}` (`detectedLanguage` only for
//! `"source": "auto"`); errors are HTTP statuses with `{"error": message}`
//! (400 bad request or language, 403 bad key, 429 too many requests, 500).

use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;

use crate::provider::base;
use crate::translator::{
    bounded, post_json, TextTranslator, TranslateRequest, Translation, TranslationError,
    TranslatorLimits,
};

const NAME: &str = "libretranslate";

/// A self-hosted LibreTranslate's usual address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:5000";

#[derive(Clone)]
pub struct LibreTranslate {
    url: String,
    api_key: Option<String>,
    limits: TranslatorLimits,
}

impl std::fmt::Debug for LibreTranslate {
    // The key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibreTranslate")
            .field("url", &self.url)
            .field("limits", &self.limits)
            .finish()
    }
}

impl LibreTranslate {
    pub fn new(url: String, api_key: Option<String>, limits: TranslatorLimits) -> LibreTranslate {
        LibreTranslate {
            url,
            api_key,
            limits,
        }
    }

    /// The JSON body of a request.
    pub fn body(&self, request: &TranslateRequest) -> serde_json::Value {
        let mut body = json!({
            "q": bounded(&request.text, self.limits.max_chars),
            "source": request.source.as_deref().map(base).unwrap_or("auto"),
            "target": base(&request.target),
            "format": "text",
        });
        if let Some(key) = &self.api_key {
            body["api_key"] = json!(key);
        }
        body
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "translatedText")]
    translated_text: String,
    #[serde(rename = "detectedLanguage")]
    detected_language: Option<Detected>,
}

#[derive(Deserialize)]
struct Detected {
    language: Option<String>,
}

impl TextTranslator for LibreTranslate {
    fn name(&self) -> &'static str {
        NAME
    }

    fn translate(
        &self,
        request: TranslateRequest,
    ) -> LocalBoxFuture<'static, Result<Translation, TranslationError>> {
        let url = format!("{}/translate", self.url.trim_end_matches('/'));
        let body = self.body(&request);
        let timeout = self.limits.timeout;
        Box::pin(async move {
            let answer = post_json(NAME, url, Vec::new(), body, timeout).await?;
            let answer: Answer = serde_json::from_value(answer).map_err(|e| {
                TranslationError::transient(NAME, format!("unexpected answer: {e}"))
            })?;
            Ok(Translation {
                text: answer.translated_text.trim().to_string(),
                detected_source: answer.detected_language.and_then(|d| d.language),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_follows_the_api() {
        let l = LibreTranslate::new(
            DEFAULT_URL.into(),
            Some("k".into()),
            TranslatorLimits::default(),
        );
        let b = l.body(&TranslateRequest {
            text: "hello".into(),
            source: Some("en-US".into()),
            target: "es-ES".into(),
        });
        assert_eq!(
            b,
            json!({"q":"hello","source":"en","target":"es","format":"text","api_key":"k"})
        );
        let l = LibreTranslate::new(DEFAULT_URL.into(), None, TranslatorLimits::default());
        let b = l.body(&TranslateRequest {
            text: "hello".into(),
            source: None,
            target: "fr-FR".into(),
        });
        assert_eq!(b["source"], "auto");
        assert!(b.get("api_key").is_none());
    }
}
