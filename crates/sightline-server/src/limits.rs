//! What one client may cost the server, and how each limit is enforced.
//!
//! - **Message sizes**, per endpoint and frame kind: a larger message closes
//!   the socket 1009 (Message Too Big).
//!   A frame is judged at its header, before its payload is read, and so is
//!   a fragmented message (its total and its number of fragments); see
//!   [`crate::frame_guard`].
//! - **Open connections**, for the whole server: past the limit an upgrade
//!   is refused with HTTP 503 `SERVER_FULL` ([`ConnectionSlots`]). App
//!   sockets not yet authenticated by their init count against a separate
//!   budget, in total and per source address (HTTP 503
//!   `TOO_MANY_UNAUTHENTICATED`, [`crate::preauth`]).
//! - **Inbound backlog**, per connection: bytes forwarded to the session
//!   and not handled yet; past the bound the connection stops reading its
//!   socket ([`sightline_runtime::inbound`]).
//! - **Message rate**, per connection: a token bucket ([`TokenBucket`]);
//!   messages over the rate are dropped with a `RATE_LIMITED` error (at most
//!   one a second), and a client that keeps flooding is closed 1008.
//! - **Send backlog**, per connection: bytes queued for the client that it
//!   has not taken yet ([`SendBacklog`], enforced by whoever sends, since a
//!   connection whose client stops reading stops running). Past a quarter
//!   of the bound audio is dropped; past the bound the connection is closed
//!   1013 (Try Again Later) and its app treated as disconnected, so an app
//!   that stops reading cannot grow memory or hold up its session; an SDK
//!   app reconnects and gets the events kept meanwhile. [`CountedBody`]
//!   counts what the socket takes; the pongs, pings and closes a connection
//!   writes itself count as queued. Pings from the client go through the
//!   message rate like any message.
//!
//! - **Simple storage**, per (user, app): at most
//!   [`Limits::storage_bytes`] of keys and values (HTTP 413), keys of at
//!   most [`Limits::storage_key_bytes`], and requests of one app at
//!   [`Limits::storage_rate`] across its users (HTTP 429,
//!   [`crate::app_rate`]); see [`crate::simple_storage`].
//!
//! One glasses connection per user (a new login replaces the old one, which
//! is closed 4001) and one app connection per (user, package) (a newer one
//! supersedes the old, which is closed 1008) are enforced by the session.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
pub use sightline_runtime::link::SendBacklog;

pub use sightline_runtime::link::close::{
    SLOW_CONSUMER as CLOSE_SLOW_CONSUMER, TOO_BIG as CLOSE_TOO_BIG,
};

/// Every limit, with the defaults a production deployment starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest text message from glasses (`SIGHTLINE_GLASSES_MAX_TEXT_BYTES`).
    pub glasses_text_bytes: usize,
    /// Largest audio frame from glasses (`SIGHTLINE_GLASSES_MAX_BINARY_BYTES`).
    pub glasses_binary_bytes: usize,
    /// Largest text message from an app; bitmaps of up to 1 MB arrive
    /// base64-encoded (`SIGHTLINE_APP_MAX_TEXT_BYTES`).
    pub app_text_bytes: usize,
    /// Open WebSocket connections, glasses and apps together
    /// (`SIGHTLINE_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Message rate of a glasses connection (audio frames included;
    /// `SIGHTLINE_GLASSES_MESSAGES_PER_SECOND`, `_BURST`).
    pub glasses_rate: Rate,
    /// Message rate of an app connection (`SIGHTLINE_APP_MESSAGES_PER_SECOND`,
    /// `_BURST`).
    pub app_rate: Rate,
    /// Bytes sent to one client and not yet taken by it
    /// (`SIGHTLINE_MAX_SEND_BACKLOG_BYTES`).
    pub send_backlog_bytes: usize,
    /// Frames in one fragmented message (`SIGHTLINE_MAX_FRAGMENTS_PER_MESSAGE`).
    pub max_fragments: usize,
    /// Bytes an app connection has handed its session and the session has
    /// not handled yet; past it the connection stops reading its socket
    /// (`SIGHTLINE_APP_MAX_INBOUND_BACKLOG_BYTES`).
    pub app_inbound_backlog_bytes: usize,
    /// The same for a glasses connection
    /// (`SIGHTLINE_GLASSES_MAX_INBOUND_BACKLOG_BYTES`).
    pub glasses_inbound_backlog_bytes: usize,
    /// App sockets open and not yet authenticated by their init, for the
    /// whole server (`SIGHTLINE_MAX_UNAUTHENTICATED`).
    pub max_unauthenticated: usize,
    /// The same from one source address
    /// (`SIGHTLINE_MAX_UNAUTHENTICATED_PER_ADDRESS`).
    pub max_unauthenticated_per_address: usize,
    /// Largest photo the phone may upload through Sightline; the SDK's
    /// own upload route takes 10 MiB (`SIGHTLINE_PHOTO_MAX_BYTES`).
    pub photo_upload_bytes: usize,
    /// Bytes of keys and values one app stores for one user in simple
    /// storage (`SIGHTLINE_STORAGE_MAX_BYTES`).
    pub storage_bytes: usize,
    /// Bytes of one simple storage key (`SIGHTLINE_STORAGE_MAX_KEY_BYTES`).
    pub storage_key_bytes: usize,
    /// Simple storage requests of one app, all its users together
    /// (`SIGHTLINE_STORAGE_RATE_PER_SECOND`, `SIGHTLINE_STORAGE_RATE_BURST`).
    pub storage_rate: Rate,
    /// Apps whose simple storage rate is tracked at once; past it the app
    /// idle longest is forgotten (`SIGHTLINE_STORAGE_RATE_MAX_APPS`).
    pub storage_rate_apps: usize,
}

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            glasses_text_bytes: 256 * 1024,
            glasses_binary_bytes: 64 * 1024,
            app_text_bytes: 2 * 1024 * 1024,
            max_connections: 16_000,
            glasses_rate: Rate {
                per_second: 250,
                burst: 500,
            },
            app_rate: Rate {
                per_second: 100,
                burst: 200,
            },
            send_backlog_bytes: 4 * 1024 * 1024,
            max_fragments: 1024,
            app_inbound_backlog_bytes: 1024 * 1024,
            glasses_inbound_backlog_bytes: 1024 * 1024,
            max_unauthenticated: 1024,
            max_unauthenticated_per_address: 32,
            photo_upload_bytes: 10 * 1024 * 1024,
            storage_bytes: 1024 * 1024,
            storage_key_bytes: 1024,
            storage_rate: Rate {
                per_second: 50,
                burst: 200,
            },
            storage_rate_apps: 4096,
        }
    }
}

impl Limits {
    /// The largest frame the glasses endpoint's codec accepts.
    pub fn glasses_frame_bytes(&self) -> usize {
        self.glasses_text_bytes.max(self.glasses_binary_bytes)
    }

    /// The largest simple storage request body: a full map as JSON, whose
    /// escapes may double it, plus room for the envelope.
    pub fn storage_body_bytes(&self) -> usize {
        self.storage_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }
}

// ---------------------------------------------------------------- slots --

/// Counts open connections against [`Limits::max_connections`].
#[derive(Debug, Default)]
pub struct ConnectionSlots {
    open: AtomicUsize,
}

/// One open connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<ConnectionSlots>,
}

impl ConnectionSlots {
    /// Takes a slot if fewer than `max` are taken.
    pub fn try_take(self: &Arc<Self>, max: usize) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        taken.ok().map(|_| Slot {
            slots: self.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open.fetch_sub(1, Ordering::AcqRel);
    }
}

// ----------------------------------------------------------- rate limit --

/// A token bucket over one connection's messages, on an injected clock.
#[derive(Debug)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
    /// Messages refused since the last one admitted.
    refused_in_a_row: u32,
    last_warning: Option<Instant>,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Drop it; tell the client when `warn` (at most once a second).
    Refuse {
        warn: bool,
    },
    /// The client keeps flooding: close it.
    Close,
}

impl TokenBucket {
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: rate.burst as f64,
            last: now,
            refused_in_a_row: 0,
            last_warning: None,
        }
    }

    /// Takes a token for one message arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second as f64).min(self.rate.burst as f64);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            return Admission::Admit;
        }
        self.refused_in_a_row += 1;
        if self.refused_in_a_row > self.rate.burst.max(1) {
            return Admission::Close;
        }
        let warn = self
            .last_warning
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if warn {
            self.last_warning = Some(now);
        }
        Admission::Refuse { warn }
    }
}

// ------------------------------------------------------------- the gate --

/// One connection's inbound limits: size per frame kind and message rate.
#[derive(Debug)]
pub struct Gate {
    bucket: TokenBucket,
    max_text: usize,
    max_binary: usize,
}

/// The gate's decision on one whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the rate: drop it, and tell the client when `warn`.
    Drop {
        warn: bool,
    },
    /// Close the connection with this code and reason.
    Close {
        code: u16,
        reason: &'static str,
    },
}

impl Gate {
    pub fn new(rate: Rate, max_text: usize, max_binary: usize) -> Self {
        Gate {
            bucket: TokenBucket::new(rate, Instant::now()),
            max_text,
            max_binary,
        }
    }

    /// Checks a whole text (`text == true`) or binary message of `len` bytes.
    pub fn check(&mut self, text: bool, len: usize) -> Verdict {
        let (max, what) = if text {
            (self.max_text, "text message exceeds the size limit")
        } else {
            (self.max_binary, "binary message exceeds the size limit")
        };
        if len > max {
            return Verdict::Close {
                code: CLOSE_TOO_BIG,
                reason: what,
            };
        }
        match self.bucket.admit(Instant::now()) {
            Admission::Admit => Verdict::Pass,
            Admission::Refuse { warn } => Verdict::Drop { warn },
            Admission::Close => Verdict::Close {
                code: 1008,
                reason: "Message rate limit exceeded",
            },
        }
    }
}

// ---------------------------------------------------- the response body --

/// The connection's response body: passes the WebSocket context's bytes
/// through, counting what the socket takes.
pub struct CountedBody<S> {
    inner: S,
    backlog: Arc<SendBacklog>,
}

impl<S> CountedBody<S> {
    pub fn new(inner: S, backlog: Arc<SendBacklog>) -> Self {
        CountedBody { inner, backlog }
    }
}

impl<S, E> Stream for CountedBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &polled {
            self.backlog.taken(bytes.len());
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_limit_and_free_on_drop() {
        let slots = Arc::new(ConnectionSlots::default());
        let a = slots.try_take(2).expect("first");
        let _b = slots.try_take(2).expect("second");
        assert!(slots.try_take(2).is_none());
        drop(a);
        assert!(slots.try_take(2).is_some());
    }

    #[test]
    fn the_bucket_admits_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let rate = Rate {
            per_second: 10,
            burst: 5,
        };
        let mut b = TokenBucket::new(rate, t0);
        for _ in 0..5 {
            assert_eq!(b.admit(t0), Admission::Admit);
        }
        assert_eq!(b.admit(t0), Admission::Refuse { warn: true });
        assert_eq!(b.admit(t0), Admission::Refuse { warn: false });
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.admit(t1), Admission::Admit);
        // A second later the warning may be repeated.
        let t2 = t0 + Duration::from_millis(1_050);
        for _ in 0..5 {
            assert_eq!(b.admit(t2), Admission::Admit);
        }
        assert_eq!(b.admit(t2), Admission::Refuse { warn: true });
    }

    #[test]
    fn a_client_that_keeps_flooding_is_closed() {
        let t0 = Instant::now();
        let rate = Rate {
            per_second: 10,
            burst: 3,
        };
        let mut b = TokenBucket::new(rate, t0);
        let outcomes: Vec<_> = (0..8).map(|_| b.admit(t0)).collect();
        assert_eq!(outcomes[..3], [Admission::Admit; 3]);
        assert!(matches!(outcomes[3], Admission::Refuse { .. }));
        assert_eq!(outcomes[7], Admission::Close, "{outcomes:?}");
    }
}
