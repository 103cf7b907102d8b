//! Which text translator Sightline uses for the translation pairs the
//! speech provider cannot serve itself, read from
//! `SIGHTLINE_TRANSLATE_PROVIDER` (libretranslate, deepl, none),
//! `SIGHTLINE_TRANSLATE_URL` and `SIGHTLINE_TRANSLATE_API_KEY`, with its
//! limits.

use std::sync::Arc;
use std::time::Duration;

use crate::translator::{TextTranslator, TranslatorLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslatorKind {
    None,
    LibreTranslate,
    DeepL,
}

impl TranslatorKind {
    pub fn parse(s: &str) -> Option<TranslatorKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" => Some(TranslatorKind::None),
            "libretranslate" => Some(TranslatorKind::LibreTranslate),
            "deepl" => Some(TranslatorKind::DeepL),
            _ => None,
        }
    }
}

/// Text-translation settings. Its `Debug` output leaves the key out.
#[derive(Clone)]
pub struct TranslateConfig {
    pub provider: TranslatorKind,
    /// The API's base URL; `None` means its usual one (LibreTranslate: the
    /// local port; DeepL: the endpoint the key belongs to).
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub limits: TranslatorLimits,
    pub relay: RelaySettings,
}

impl std::fmt::Debug for TranslateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslateConfig")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.limits)
            .field("relay", &self.relay)
            .finish()
    }
}

impl Default for TranslateConfig {
    fn default() -> Self {
        TranslateConfig {
            provider: TranslatorKind::None,
            url: None,
            api_key: None,
            limits: TranslatorLimits::default(),
            relay: RelaySettings::default(),
        }
    }
}

impl TranslateConfig {
    pub fn new(
        provider: TranslatorKind,
        url: Option<String>,
        api_key: Option<String>,
    ) -> TranslateConfig {
        TranslateConfig {
            provider,
            url,
            api_key,
            ..TranslateConfig::default()
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// The translator client, or `None` when text translation is off.
    pub fn build(&self) -> Option<Arc<dyn TextTranslator>> {
        match self.provider {
            TranslatorKind::None => None,
            TranslatorKind::LibreTranslate => {
                Some(Arc::new(crate::libretranslate::LibreTranslate::new(
                    self.url
                        .clone()
                        .unwrap_or_else(|| crate::libretranslate::DEFAULT_URL.into()),
                    self.api_key.clone(),
                    self.limits,
                )))
            }
            TranslatorKind::DeepL => Some(Arc::new(crate::deepl::DeepL::new(
                self.url.clone(),
                self.api_key.clone().unwrap_or_default(),
                self.limits,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translator_names() {
        assert_eq!(TranslatorKind::parse("DeepL"), Some(TranslatorKind::DeepL));
        assert_eq!(
            TranslatorKind::parse("libretranslate"),
            Some(TranslatorKind::LibreTranslate)
        );
        assert_eq!(TranslatorKind::parse(""), Some(TranslatorKind::None));
        assert_eq!(TranslatorKind::parse("google"), None);
        assert!(TranslateConfig::default().build().is_none());
        let c = TranslateConfig::new(TranslatorKind::DeepL, None, Some("secret".into()));
        assert!(!format!("{c:?}").contains("secret"));
        assert_eq!(c.build().map(|t| t.name()), Some("deepl"));
    }
}

/// How a relay queues and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    /// Whether interim results are translated too.
    pub interim: bool,
    /// Final results waiting for the translator, at most.
    pub max_pending: usize,
    /// Attempts per final result (the first and the retries).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub retry_delay: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            interim: true,
            max_pending: 32,
            attempts: 3,
            retry_delay: Duration::from_millis(250),
        }
    }
}
