//! Which speech provider Sightline uses and how streams behave, read from
//! `SIGHTLINE_ASR_PROVIDER` (soniox, deepgram, vosk, none),
//! `SIGHTLINE_ASR_URL` and `SIGHTLINE_ASR_API_KEY`.

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{provider_breaker, CircuitBreaker};
use crate::provider::Provider;
use crate::translate_config::TranslateConfig;

/// The Vosk server's usual address, used when no URL is given.
pub const DEFAULT_VOSK_URL: &str = "ws://127.0.0.1:2700";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    None,
    Vosk,
    Soniox,
    Deepgram,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" => Some(ProviderKind::None),
            "vosk" => Some(ProviderKind::Vosk),
            "soniox" => Some(ProviderKind::Soniox),
            "deepgram" => Some(ProviderKind::Deepgram),
            _ => None,
        }
    }
}

/// Speech recognition settings, shared by every session of a runtime.
/// Its `Debug` output leaves the API key out.
#[derive(Clone)]
pub struct AsrConfig {
    pub provider: ProviderKind,
    /// The provider's WebSocket URL; `None` means its public endpoint (or,
    /// for Vosk, [`DEFAULT_VOSK_URL`]).
    pub url: Option<String>,
    pub api_key: Option<String>,
    /// First reconnect delay after a transient failure (doubles each time,
    /// each delay jittered by up to ±50%).
    pub initial_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
    /// Longest wait for a provider's WebSocket to open.
    pub connect_timeout: Duration,
    /// Longest wait for the last results after the end of speech.
    pub drain_timeout: Duration,
    /// Audio kept for replay while the provider is unreachable.
    pub replay_capacity: Duration,
    /// Consecutive failures that open the provider's circuit breaker, and
    /// how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Shared by every stream of this configuration.
    pub breaker: Arc<CircuitBreaker>,
    /// The text translator for translation pairs the provider cannot
    /// serve itself.
    pub translate: TranslateConfig,
}

impl std::fmt::Debug for AsrConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsrConfig")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("replay_capacity", &self.replay_capacity)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("translate", &self.translate)
            .finish()
    }
}

impl Default for AsrConfig {
    fn default() -> Self {
        AsrConfig::new(ProviderKind::None, None, None)
    }
}

impl AsrConfig {
    pub fn new(provider: ProviderKind, url: Option<String>, api_key: Option<String>) -> AsrConfig {
        let threshold = 5;
        let cooldown = Duration::from_secs(10);
        AsrConfig {
            provider,
            url,
            api_key,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            replay_capacity: Duration::from_secs(30),
            breaker_threshold: threshold,
            breaker_cooldown: cooldown,
            breaker: Arc::new(provider_breaker(threshold, cooldown)),
            translate: TranslateConfig::default(),
        }
    }

    /// Replaces the circuit breaker after its settings changed.
    pub fn rebuild_breaker(&mut self) {
        self.breaker = Arc::new(provider_breaker(
            self.breaker_threshold,
            self.breaker_cooldown,
        ));
    }

    /// The provider client, or `None` when speech recognition is off.
    pub fn build_provider(&self) -> Option<Arc<dyn Provider>> {
        let key = self.api_key.clone().unwrap_or_default();
        match self.provider {
            ProviderKind::None => None,
            ProviderKind::Vosk => Some(Arc::new(crate::vosk::Vosk::new(
                self.url.clone().unwrap_or_else(|| DEFAULT_VOSK_URL.into()),
            ))),
            ProviderKind::Soniox => Some(Arc::new(crate::soniox::Soniox::new(
                self.url
                    .clone()
                    .unwrap_or_else(|| crate::soniox::ENDPOINT.into()),
                key,
            ))),
            ProviderKind::Deepgram => Some(Arc::new(crate::deepgram::Deepgram::new(
                self.url
                    .clone()
                    .unwrap_or_else(|| crate::deepgram::ENDPOINT.into()),
                key,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names() {
        assert_eq!(ProviderKind::parse("Vosk"), Some(ProviderKind::Vosk));
        assert_eq!(ProviderKind::parse("none"), Some(ProviderKind::None));
        assert_eq!(ProviderKind::parse("azure"), None);
    }

    #[test]
    fn vosk_defaults_to_the_local_port() {
        let p = AsrConfig::new(ProviderKind::Vosk, None, None)
            .build_provider()
            .unwrap();
        assert_eq!(
            p.url(&crate::StreamSpec::transcription("en-US")),
            "ws://127.0.0.1:2700"
        );
    }
}
