//! Spoken audio kept for the next identical request: apps often speak the
//! same prompt again ("Listening…", a reminder read twice), and a cached
//! answer costs no synthesis and no provider bill.
//!
//! Entries are keyed by everything that changes the sound (the provider,
//! text, voice, model and every setting) and bounded both by count and by
//! total bytes; the least recently used entry goes first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::provider::Audio;
use crate::request::SpeechRequest;

/// Bounds of a cache. Either at zero turns caching off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    /// Audio, keys and content types together.
    pub max_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_entries: 256,
            max_bytes: 32 << 20,
        }
    }
}

/// What identifies one spoken text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn new(provider: &str, request: &SpeechRequest) -> CacheKey {
        // Serialising a tuple of strings and plain numbers cannot fail; the
        // debug form would do as well, but JSON stays one line and exact.
        let key = serde_json::to_string(&(
            provider,
            &request.text,
            &request.voice_id,
            &request.model_id,
            &request.settings,
        ))
        .unwrap_or_else(|_| format!("{provider}{request:?}"));
        CacheKey(key)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

struct Entry {
    audio: Audio,
    used: u64,
    cost: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// Last use → key, oldest first.
    by_use: BTreeMap<u64, CacheKey>,
    bytes: usize,
    clock: u64,
}

/// A bounded least-recently-used cache of spoken audio, shared by the
/// server's workers.
pub struct SpeechCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

impl SpeechCache {
    pub fn new(limits: CacheLimits) -> SpeechCache {
        SpeechCache {
            limits,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent maps behind
        // (every update completes before the next may panic).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The audio kept for `key`, marked as just used.
    pub fn get(&self, key: &CacheKey) -> Option<Audio> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(key)?;
        let before = std::mem::replace(&mut entry.used, now);
        let audio = entry.audio.clone();
        inner.by_use.remove(&before);
        inner.by_use.insert(now, key.clone());
        Some(audio)
    }

    /// Keeps `audio` under `key`, evicting the least recently used entries
    /// to stay within the limits. Audio larger than the whole cache is not
    /// kept.
    pub fn put(&self, key: CacheKey, audio: Audio) {
        let cost = audio.bytes.len() + audio.content_type.len() + 2 * key.len();
        if self.limits.max_entries == 0 || cost > self.limits.max_bytes {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(&key) {
            inner.by_use.remove(&old.used);
            inner.bytes -= old.cost;
        }
        while inner.entries.len() >= self.limits.max_entries
            || inner.bytes + cost > self.limits.max_bytes
        {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.cost;
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.by_use.insert(used, key.clone());
        inner.entries.insert(key, Entry { audio, used, cost });
        inner.bytes += cost;
    }

    /// Entries kept now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes kept now, as counted against [`CacheLimits::max_bytes`].
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn audio(n: usize) -> Audio {
        Audio {
            bytes: Bytes::from(vec![7u8; n]),
            content_type: "audio/wav".into(),
        }
    }

    fn key(text: &str) -> CacheKey {
        CacheKey::new("espeak", &SpeechRequest::new(text))
    }

    #[test]
    fn every_parameter_is_part_of_the_key() {
        let base = SpeechRequest::new("hi");
        let mut voice = base.clone();
        voice.voice_id = Some("v".into());
        let mut model = base.clone();
        model.model_id = Some("m".into());
        let mut speed = base.clone();
        speed.settings.speed = Some(1.0);
        let mut boost = base.clone();
        boost.settings.use_speaker_boost = Some(false);
        let keys = [
            CacheKey::new("espeak", &base),
            CacheKey::new("elevenlabs", &base),
            CacheKey::new("espeak", &SpeechRequest::new("hi!")),
            CacheKey::new("espeak", &voice),
            CacheKey::new("espeak", &model),
            CacheKey::new("espeak", &speed),
            CacheKey::new("espeak", &boost),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(keys[0], CacheKey::new("espeak", &base.clone()));
    }

    #[test]
    fn the_entry_count_is_bounded_least_recently_used_first() {
        let cache = SpeechCache::new(CacheLimits {
            max_entries: 2,
            max_bytes: 1 << 20,
        });
        cache.put(key("a"), audio(10));
        cache.put(key("b"), audio(10));
        assert!(cache.get(&key("a")).is_some(), "a is now the newer");
        cache.put(key("c"), audio(10));
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(&key("b")).is_none(),
            "b was the least recently used"
        );
        assert!(cache.get(&key("a")).is_some());
        assert!(cache.get(&key("c")).is_some());
    }

    #[test]
    fn the_bytes_are_bounded() {
        let cache = SpeechCache::new(CacheLimits {
            max_entries: 100,
            max_bytes: 1000,
        });
        for i in 0..20 {
            cache.put(key(&i.to_string()), audio(300));
            assert!(cache.bytes() <= 1000, "{} bytes", cache.bytes());
        }
        assert_eq!(cache.len(), 2, "each entry costs a little over 300 bytes");
        assert!(cache.get(&key("19")).is_some());
        assert!(cache.get(&key("0")).is_none());
        // Audio larger than the whole cache is not kept, and evicts nothing.
        cache.put(key("huge"), audio(2000));
        assert!(cache.get(&key("huge")).is_none());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn replacing_an_entry_counts_it_once() {
        let cache = SpeechCache::new(CacheLimits::default());
        cache.put(key("a"), audio(100));
        let once = cache.bytes();
        cache.put(key("a"), audio(100));
        assert_eq!(cache.bytes(), once);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn zero_limits_turn_caching_off() {
        for limits in [
            CacheLimits {
                max_entries: 0,
                max_bytes: 1 << 20,
            },
            CacheLimits {
                max_entries: 10,
                max_bytes: 0,
            },
        ] {
            let cache = SpeechCache::new(limits);
            cache.put(key("a"), audio(1));
            assert!(cache.is_empty());
        }
    }
}
