//! DeepL API (`POST /v2/translate`).
//!
//! Request: `Authorization: DeepL-Auth-Key <key>` and a JSON body
//! `{"text": [text], "target_lang": "EN-US", "source_lang": "DE"}`
//! (`source_lang` left out to let DeepL detect it). Target languages are
//! upper-case; English and Portuguese need their variant (`EN-US`, `EN-GB`,
//! `PT-BR`, `PT-PT`), source languages never take one. Answer:
//! `{"translations": [{"detected_source_language": "DE", "text": ...}]}`.
//! Errors are HTTP statuses: 400 bad request, 403 bad key, 413 too large,
//! 429 too many requests, 456 quota used up, 5xx. Keys of the free plan
//! end in `:fx` and belong to `api-free.deepl.com`.

use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;

use crate::provider::base;
use crate::translator::{
    bounded, post_json, TextTranslator, TranslateRequest, Translation, TranslationError,
    TranslatorLimits,
};

const NAME: &str = "deepl";

/// DeepL's endpoint for paid keys.
pub const PRO_URL: &str = "https://api.deepl.com";
/// DeepL's endpoint for free keys (those ending in `:fx`).
pub const FREE_URL: &str = "https://api-free.deepl.com";

#[derive(Clone)]
pub struct DeepL {
    url: String,
    api_key: String,
    limits: TranslatorLimits,
}

impl std::fmt::Debug for DeepL {
    // The key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepL")
            .field("url", &self.url)
            .field("limits", &self.limits)
            .finish()
    }
}

impl DeepL {
    /// `url` `None` picks the endpoint the key belongs to.
    pub fn new(url: Option<String>, api_key: String, limits: TranslatorLimits) -> DeepL {
        let url = url.unwrap_or_else(|| {
            if api_key.ends_with(":fx") {
                FREE_URL.into()
            } else {
                PRO_URL.into()
            }
        });
        DeepL {
            url,
            api_key,
            limits,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JSON body of a request.
    pub fn body(&self, request: &TranslateRequest) -> serde_json::Value {
        let mut body = json!({
            "text": [bounded(&request.text, self.limits.max_chars)],
            "target_lang": target_lang(&request.target),
        });
        if let Some(source) = &request.source {
            body["source_lang"] = json!(base(source).to_ascii_uppercase());
        }
        body
    }
}

/// DeepL's code of a target language.
pub fn target_lang(tag: &str) -> String {
    let lang = base(tag).to_ascii_uppercase();
    let region = tag.split(['-', '_']).nth(1).map(|r| r.to_ascii_uppercase());
    match (lang.as_str(), region.as_deref()) {
        ("EN", Some("GB" | "UK" | "AU" | "IE" | "NZ")) => "EN-GB".into(),
        ("EN", _) => "EN-US".into(),
        ("PT", Some("PT")) => "PT-PT".into(),
        ("PT", _) => "PT-BR".into(),
        _ => lang,
    }
}

#[derive(Deserialize)]
struct Answer {
    translations: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    detected_source_language: Option<String>,
}

impl TextTranslator for DeepL {
    fn name(&self) -> &'static str {
        NAME
    }

    fn translate(
        &self,
        request: TranslateRequest,
    ) -> LocalBoxFuture<'static, Result<Translation, TranslationError>> {
        let url = format!("{}/v2/translate", self.url.trim_end_matches('/'));
        let headers = vec![(
            "Authorization".to_string(),
            format!("DeepL-Auth-Key {}", self.api_key),
        )];
        let body = self.body(&request);
        let timeout = self.limits.timeout;
        Box::pin(async move {
            let answer = post_json(NAME, url, headers, body, timeout).await?;
            let answer: Answer = serde_json::from_value(answer).map_err(|e| {
                TranslationError::transient(NAME, format!("unexpected answer: {e}"))
            })?;
            let item =
                answer.translations.into_iter().next().ok_or_else(|| {
                    TranslationError::transient(NAME, "answer without a translation")
                })?;
            Ok(Translation {
                text: item.text.trim().to_string(),
                detected_source: item
                    .detected_source_language
                    .map(|l| l.to_ascii_lowercase()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_languages_take_the_variants_deepl_wants() {
        assert_eq!(target_lang("en-US"), "EN-US");
        assert_eq!(target_lang("en-GB"), "EN-GB");
        assert_eq!(target_lang("en"), "EN-US");
        assert_eq!(target_lang("pt-BR"), "PT-BR");
        assert_eq!(target_lang("pt-PT"), "PT-PT");
        assert_eq!(target_lang("es-ES"), "ES");
    }

    #[test]
    fn the_body_follows_the_api_and_free_keys_go_to_the_free_endpoint() {
        let d = DeepL::new(None, "abc:fx".into(), TranslatorLimits::default());
        assert_eq!(d.url(), FREE_URL);
        assert_eq!(
            DeepL::new(None, "abc".into(), TranslatorLimits::default()).url(),
            PRO_URL
        );
        let b = d.body(&TranslateRequest {
            text: "Hallo".into(),
            source: Some("de-DE".into()),
            target: "en-US".into(),
        });
        assert_eq!(
            b,
            json!({"text":["Hallo"],"target_lang":"EN-US","source_lang":"DE"})
        );
        assert!(d
            .body(&TranslateRequest {
                text: "x".into(),
                source: None,
                target: "fr-FR".into()
            })
            .get("source_lang")
            .is_none());
    }
}
