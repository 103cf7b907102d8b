//! Temporary webview tokens: the phone asks for one when it opens an app's
//! webview (`POST /api/auth/generate-webview-token`), the webview URL
//! carries it as `aos_temp_token`, and the app's server trades it once for
//! the user's id (`POST /api/auth/exchange-user-token`).
//!
//! A token is 32 random bytes in hex, names one (user, package), expires
//! after [`TempTokenLimits::ttl`] and is removed when exchanged. The store
//! is bounded: at most [`TempTokenLimits::max_pending`] tokens in all and
//! [`TempTokenLimits::max_per_user`] per user (a user's oldest token makes
//! room for the newest); when every slot holds a live token of other
//! users, new tokens are refused until some expire.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use thiserror::Error;

/// Bounds of the temporary token store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempTokenLimits {
    /// How long a token can be exchanged (`SIGHTLINE_WEBVIEW_TOKEN_TTL_MS`).
    pub ttl: Duration,
    /// Tokens not yet exchanged nor expired, for the whole server
    /// (`SIGHTLINE_WEBVIEW_MAX_PENDING_TOKENS`).
    pub max_pending: usize,
    /// The same for one user (`SIGHTLINE_WEBVIEW_MAX_TOKENS_PER_USER`).
    pub max_per_user: usize,
}

impl Default for TempTokenLimits {
    fn default() -> Self {
        TempTokenLimits {
            ttl: Duration::from_secs(60),
            max_pending: 10_000,
            max_per_user: 16,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TempTokenError {
    #[error("too many webview tokens are pending; try again in a minute")]
    Full,
}

#[derive(Debug)]
struct Pending {
    user: String,
    package: String,
    issued: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    by_token: HashMap<String, Pending>,
    /// Tokens in the order they were issued (some may be gone already).
    order: VecDeque<(Instant, String)>,
    per_user: HashMap<String, usize>,
}

impl Inner {
    fn remove(&mut self, token: &str) -> Option<Pending> {
        let p = self.by_token.remove(token)?;
        if let Some(n) = self.per_user.get_mut(&p.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&p.user);
            }
        }
        Some(p)
    }

    /// Drops expired tokens and queue entries of tokens already gone.
    fn purge(&mut self, now: Instant, ttl: Duration) {
        while let Some((issued, token)) = self.order.front() {
            let gone = !self.by_token.contains_key(token);
            if !gone && now.duration_since(*issued) < ttl {
                break;
            }
            let token = token.clone();
            self.order.pop_front();
            if !gone {
                self.remove(&token);
            }
        }
    }

    fn oldest_of(&self, user: &str) -> Option<String> {
        self.order
            .iter()
            .find(|(_, t)| self.by_token.get(t).is_some_and(|p| p.user == user))
            .map(|(_, t)| t.clone())
    }
}

/// The pending temporary tokens.
#[derive(Debug, Default)]
pub struct TempTokens {
    limits: TempTokenLimits,
    inner: Mutex<Inner>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl TempTokens {
    pub fn new(limits: TempTokenLimits) -> TempTokens {
        TempTokens {
            limits,
            inner: Mutex::default(),
        }
    }

    pub fn limits(&self) -> TempTokenLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Issues a token for `user` to open `package`'s webview.
    pub fn issue(&self, user: &str, package: &str) -> Result<String, TempTokenError> {
        self.issue_at(user, package, Instant::now())
    }

    fn issue_at(&self, user: &str, package: &str, now: Instant) -> Result<String, TempTokenError> {
        let mut inner = self.lock();
        inner.purge(now, self.limits.ttl);
        if inner.per_user.get(user).copied().unwrap_or(0) >= self.limits.max_per_user.max(1) {
            if let Some(oldest) = inner.oldest_of(user) {
                inner.remove(&oldest);
            }
        }
        if inner.by_token.len() >= self.limits.max_pending {
            return Err(TempTokenError::Full);
        }
        let token = random_token();
        inner.by_token.insert(
            token.clone(),
            Pending {
                user: user.to_string(),
                package: package.to_string(),
                issued: now,
            },
        );
        *inner.per_user.entry(user.to_string()).or_insert(0) += 1;
        inner.order.push_back((now, token.clone()));
        // Exchanged tokens leave their place in the queue until it reaches
        // them; a queue far longer than the live tokens is compacted.
        if inner.order.len() > 2 * self.limits.max_pending.max(16) {
            let Inner {
                by_token, order, ..
            } = &mut *inner;
            order.retain(|(_, t)| by_token.contains_key(t));
        }
        Ok(token)
    }

    /// Trades a token for its user when it was issued for `package` and has
    /// not expired. A token is good once: an exchanged token is gone.
    pub fn exchange(&self, token: &str, package: &str) -> Option<String> {
        self.exchange_at(token, package, Instant::now())
    }

    fn exchange_at(&self, token: &str, package: &str, now: Instant) -> Option<String> {
        let mut inner = self.lock();
        inner.purge(now, self.limits.ttl);
        let pending = inner.by_token.get(token)?;
        if now.duration_since(pending.issued) >= self.limits.ttl {
            inner.remove(token);
            return None;
        }
        if pending.package != package {
            return None;
        }
        inner.remove(token).map(|p| p.user)
    }

    /// Tokens pending now.
    pub fn pending(&self) -> usize {
        self.lock().by_token.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(max_pending: usize, max_per_user: usize) -> TempTokens {
        TempTokens::new(TempTokenLimits {
            ttl: Duration::from_secs(60),
            max_pending,
            max_per_user,
        })
    }

    #[test]
    fn a_token_is_good_once_for_its_package() {
        let t = tokens(10, 4);
        let tok = t.issue("a@b.c", "com.x").unwrap();
        assert_eq!(tok.len(), 64);
        assert_eq!(t.exchange(&tok, "com.other"), None);
        assert_eq!(t.exchange(&tok, "com.x"), Some("a@b.c".into()));
        assert_eq!(t.exchange(&tok, "com.x"), None);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn tokens_expire_and_are_purged() {
        let t = tokens(10, 4);
        let now = Instant::now();
        let tok = t.issue_at("a@b.c", "com.x", now).unwrap();
        let later = now + Duration::from_secs(61);
        assert_eq!(t.exchange_at(&tok, "com.x", later), None);
        t.issue_at("d@e.f", "com.x", now).unwrap();
        t.issue_at("g@h.i", "com.x", later).unwrap();
        assert_eq!(t.pending(), 1, "the expired one is purged");
    }

    #[test]
    fn the_store_is_bounded_per_user_and_in_all() {
        let t = tokens(3, 2);
        let now = Instant::now();
        let first = t.issue_at("a@b.c", "com.x", now).unwrap();
        let second = t.issue_at("a@b.c", "com.x", now).unwrap();
        let third = t.issue_at("a@b.c", "com.x", now).unwrap();
        assert_eq!(t.pending(), 2, "a user's oldest token makes room");
        assert_eq!(t.exchange_at(&first, "com.x", now), None);
        t.issue_at("d@e.f", "com.x", now).unwrap();
        assert_eq!(t.issue_at("g@h.i", "com.x", now), Err(TempTokenError::Full));
        assert_eq!(t.exchange_at(&second, "com.x", now), Some("a@b.c".into()));
        assert!(t.issue_at("g@h.i", "com.x", now).is_ok());
        let later = now + Duration::from_secs(61);
        assert!(t.issue_at("j@k.l", "com.x", later).is_ok());
        assert_eq!(t.exchange_at(&third, "com.x", later), None);
        assert_eq!(t.pending(), 1);
    }
}
