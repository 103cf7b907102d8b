//! The replay buffer of an app whose connection dropped: the events it
//! would have received while it was away, bounded by count and bytes.
//!
//! When the buffer is full the oldest events go first, and are counted.
//! Audio is never buffered (stale audio is worse than none). The buffer is
//! emptied, in order, to the app's next connection: at once when the SDK
//! reconnects (its handlers are still registered), or once a restarted app
//! has subscribed again (see `apps.rs`).

use std::collections::VecDeque;

/// One buffered `data_stream`.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffered {
    /// The subscription string it was sent for.
    pub stream_type: String,
    /// The whole message, ready to send.
    pub text: String,
}

/// A bounded FIFO of events for one app.
#[derive(Debug)]
pub struct ReplayBuffer {
    events: VecDeque<Buffered>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl ReplayBuffer {
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        ReplayBuffer {
            events: VecDeque::new(),
            bytes: 0,
            max_events,
            max_bytes,
        }
    }

    /// Keeps an event; returns how many events were dropped: old ones to
    /// make room, or this one if it can never fit.
    pub fn push(&mut self, stream_type: &str, text: String) -> u64 {
        if text.len() > self.max_bytes || self.max_events == 0 {
            return 1;
        }
        let mut dropped = 0;
        while self.events.len() >= self.max_events || self.bytes + text.len() > self.max_bytes {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.text.len();
            dropped += 1;
        }
        self.bytes += text.len();
        self.events.push_back(Buffered {
            stream_type: stream_type.to_string(),
            text,
        });
        dropped
    }

    /// Takes every buffered event, oldest first.
    pub fn drain(&mut self) -> Vec<Buffered> {
        self.bytes = 0;
        self.events.drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_the_oldest_by_count() {
        let mut b = ReplayBuffer::new(3, 1_000);
        let dropped: u64 = (0..5)
            .map(|i| b.push("button_press", format!("e{i}")))
            .sum();
        assert_eq!(dropped, 2);
        let texts: Vec<String> = b.drain().into_iter().map(|e| e.text).collect();
        assert_eq!(texts, ["e2", "e3", "e4"]);
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn drops_the_oldest_by_bytes_and_refuses_what_never_fits() {
        let mut b = ReplayBuffer::new(100, 10);
        assert_eq!(b.push("a", "1234".into()), 0);
        assert_eq!(b.push("a", "5678".into()), 0);
        assert_eq!(b.push("a", "9abc".into()), 1);
        assert_eq!(b.bytes(), 8);
        assert_eq!(b.push("a", "x".repeat(11)), 1);
        assert_eq!(b.len(), 2);
    }
}
