//! The text-to-speech service behind `GET /api/tts`: the configured
//! provider, the cache in front of it and a bound on syntheses running at
//! once. A request past the bound is refused at once ([`SpeechError::Busy`])
//! rather than queued, so a burst of `speak()` calls cannot pile up child
//! processes or provider calls.

use std::sync::Arc;

use thiserror::Error;
use tokio::sync::Semaphore;

use crate::cache::{CacheKey, CacheLimits, SpeechCache};
use crate::elevenlabs::{ElevenLabs, ElevenLabsConfig};
use crate::espeak::{Espeak, EspeakConfig};
use crate::provider::{Audio, SpeechSynthesizer, SynthesisError};
use crate::request::{RawSpeechQuery, RequestError, RequestLimits, SpeechRequest};

/// Which provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    /// espeak-ng on this host (the default: works offline).
    Espeak,
    /// ElevenLabs; needs an API key.
    ElevenLabs,
    /// `GET /api/tts` answers 503.
    Off,
}

impl ProviderChoice {
    /// `espeak`, `elevenlabs` or `off` (any case).
    pub fn parse(name: &str) -> Option<ProviderChoice> {
        match name.trim().to_ascii_lowercase().as_str() {
            "espeak" | "espeak-ng" => Some(ProviderChoice::Espeak),
            "elevenlabs" => Some(ProviderChoice::ElevenLabs),
            "off" | "none" => Some(ProviderChoice::Off),
            _ => None,
        }
    }
}

/// Everything the service is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechConfig {
    pub provider: ProviderChoice,
    pub limits: RequestLimits,
    pub cache: CacheLimits,
    /// Syntheses running at once; more are refused as busy.
    pub max_concurrent: usize,
    pub espeak: EspeakConfig,
    /// Base URL, timeout and size limit of ElevenLabs; its key, when set.
    pub elevenlabs: ElevenLabsConfig,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            provider: ProviderChoice::Espeak,
            limits: RequestLimits::default(),
            cache: CacheLimits::default(),
            max_concurrent: 2,
            espeak: EspeakConfig::default(),
            elevenlabs: ElevenLabsConfig::new(""),
        }
    }
}

/// Why no audio was served.
#[derive(Debug, Error)]
pub enum SpeechError {
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Wording of the MentraOS cloud.
    #[error("TTS service not configured")]
    NotConfigured,
    #[error("Text-to-speech is busy; try again shortly")]
    Busy,
    #[error("Speech synthesis failed")]
    Synthesis(#[source] SynthesisError),
}

/// Audio for a request, and whether the cache had it.
#[derive(Debug, Clone)]
pub struct Spoken {
    pub audio: Audio,
    pub cached: bool,
}

/// The configured provider with its cache and concurrency bound.
pub struct SpeechService {
    provider: Option<Arc<dyn SpeechSynthesizer>>,
    limits: RequestLimits,
    cache: SpeechCache,
    permits: Semaphore,
}

impl SpeechService {
    /// The service `config` describes. ElevenLabs without a key has no
    /// provider: its requests answer [`SpeechError::NotConfigured`].
    pub fn from_config(config: &SpeechConfig) -> SpeechService {
        let provider: Option<Arc<dyn SpeechSynthesizer>> = match config.provider {
            ProviderChoice::Espeak => Some(Arc::new(Espeak::new(config.espeak.clone()))),
            ProviderChoice::ElevenLabs if !config.elevenlabs.api_key.is_empty() => {
                Some(Arc::new(ElevenLabs::new(config.elevenlabs.clone())))
            }
            ProviderChoice::ElevenLabs | ProviderChoice::Off => None,
        };
        SpeechService::new(provider, config)
    }

    /// A service around any provider (or none).
    pub fn new(
        provider: Option<Arc<dyn SpeechSynthesizer>>,
        config: &SpeechConfig,
    ) -> SpeechService {
        SpeechService {
            provider,
            limits: config.limits,
            cache: SpeechCache::new(config.cache),
            permits: Semaphore::new(config.max_concurrent.max(1)),
        }
    }

    /// The provider's name, `off` when there is none.
    pub fn provider_name(&self) -> &'static str {
        self.provider.as_ref().map_or("off", |p| p.name())
    }

    /// Checks a query against this service's limits.
    pub fn parse(&self, raw: RawSpeechQuery) -> Result<SpeechRequest, RequestError> {
        SpeechRequest::parse(raw, self.limits)
    }

    /// Audio for `request`: from the cache, or synthesised (and cached)
    /// when a synthesis slot is free.
    pub async fn speak(&self, request: &SpeechRequest) -> Result<Spoken, SpeechError> {
        let provider = self.provider.as_ref().ok_or(SpeechError::NotConfigured)?;
        let key = CacheKey::new(provider.name(), request);
        if let Some(audio) = self.cache.get(&key) {
            return Ok(Spoken {
                audio,
                cached: true,
            });
        }
        let _permit = self.permits.try_acquire().map_err(|_| SpeechError::Busy)?;
        let audio = provider
            .synthesize(request)
            .await
            .map_err(SpeechError::Synthesis)?;
        self.cache.put(key, audio.clone());
        Ok(Spoken {
            audio,
            cached: false,
        })
    }

    /// The cache, for operators' figures.
    pub fn cache(&self) -> &SpeechCache {
        &self.cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A provider that counts its calls and takes its time, to observe the
    /// service around it.
    struct Counting {
        calls: AtomicUsize,
        delay: Duration,
    }

    #[async_trait(?Send)]
    impl SpeechSynthesizer for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn synthesize(&self, r: &SpeechRequest) -> Result<Audio, SynthesisError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(Audio {
                bytes: Bytes::from(r.text.clone().into_bytes()),
                content_type: "audio/test".into(),
            })
        }
    }

    fn counting(delay: Duration) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            delay,
        })
    }

    #[tokio::test]
    async fn a_repeated_text_is_served_from_the_cache() {
        let p = counting(Duration::ZERO);
        let s = SpeechService::new(Some(p.clone()), &SpeechConfig::default());
        let r = SpeechRequest::new("hello");
        assert!(!s.speak(&r).await.unwrap().cached);
        let again = s.speak(&r).await.unwrap();
        assert!(again.cached);
        assert_eq!(again.audio.bytes, Bytes::from_static(b"hello"));
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn syntheses_past_the_bound_are_refused_not_queued() {
        let p = counting(Duration::from_millis(200));
        let config = SpeechConfig {
            max_concurrent: 1,
            ..SpeechConfig::default()
        };
        let s = SpeechService::new(Some(p.clone()), &config);
        let (one, two) = (SpeechRequest::new("one"), SpeechRequest::new("two"));
        let (a, b) = tokio::join!(s.speak(&one), s.speak(&two));
        assert!(a.is_ok());
        assert!(matches!(b, Err(SpeechError::Busy)), "{b:?}");
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        assert!(s.speak(&two).await.is_ok(), "the slot is free again");
    }

    #[tokio::test]
    async fn elevenlabs_without_a_key_and_off_are_not_configured() {
        for provider in [ProviderChoice::ElevenLabs, ProviderChoice::Off] {
            let s = SpeechService::from_config(&SpeechConfig {
                provider,
                ..SpeechConfig::default()
            });
            assert_eq!(s.provider_name(), "off");
            let e = s.speak(&SpeechRequest::new("hi")).await.unwrap_err();
            assert!(matches!(e, SpeechError::NotConfigured), "{e:?}");
            assert_eq!(e.to_string(), "TTS service not configured");
        }
        assert_eq!(
            ProviderChoice::parse("ElevenLabs"),
            Some(ProviderChoice::ElevenLabs)
        );
        assert_eq!(
            ProviderChoice::parse("espeak"),
            Some(ProviderChoice::Espeak)
        );
        assert_eq!(ProviderChoice::parse("azure"), None);
    }
}
