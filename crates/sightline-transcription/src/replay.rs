//! The audio a stream has sent (or could not send yet) and no final result
//! has covered, so that after a provider failure the utterance can be sent
//! again to the new connection. Bounded: when full, the oldest audio goes
//! (and is counted).

use std::collections::VecDeque;

use bytes::Bytes;

/// A chunk of PCM and where it starts in the stream (samples).
#[derive(Debug, Clone)]
pub struct Chunk {
    pub at: u64,
    pub pcm: Bytes,
}

impl Chunk {
    pub fn samples(&self) -> u64 {
        (self.pcm.len() / 2) as u64
    }
    pub fn end(&self) -> u64 {
        self.at + self.samples()
    }
}

#[derive(Debug)]
pub struct ReplayBuffer {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    capacity: usize,
    /// Chunks at the front already sent on the current connection.
    sent: usize,
    /// Bytes of audio dropped because the buffer was full.
    pub dropped_bytes: u64,
}

impl ReplayBuffer {
    pub fn new(capacity_bytes: usize) -> ReplayBuffer {
        ReplayBuffer {
            chunks: VecDeque::new(),
            bytes: 0,
            capacity: capacity_bytes,
            sent: 0,
            dropped_bytes: 0,
        }
    }

    pub fn push(&mut self, chunk: Chunk) {
        self.bytes += chunk.pcm.len();
        self.chunks.push_back(chunk);
        while self.bytes > self.capacity {
            let Some(old) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= old.pcm.len();
            self.dropped_bytes += old.pcm.len() as u64;
            self.sent = self.sent.saturating_sub(1);
        }
    }

    /// The chunks not yet sent on the current connection, marking them sent.
    pub fn take_unsent(&mut self) -> Vec<Chunk> {
        let out: Vec<Chunk> = self.chunks.iter().skip(self.sent).cloned().collect();
        self.sent = self.chunks.len();
        out
    }

    /// A new connection: everything must be sent again.
    pub fn rewind(&mut self) {
        self.sent = 0;
    }

    /// Forgets audio a final result covered (ending at or before `end`,
    /// in stream samples).
    pub fn covered_until(&mut self, end: u64) {
        while self.chunks.front().is_some_and(|c| c.end() <= end) {
            if let Some(c) = self.chunks.pop_front() {
                self.bytes -= c.pcm.len();
                self.sent = self.sent.saturating_sub(1);
            }
        }
    }

    /// Forgets everything already sent (a connection ended cleanly, so all
    /// of it was transcribed).
    pub fn forget_sent(&mut self) {
        for _ in 0..self.sent {
            if let Some(c) = self.chunks.pop_front() {
                self.bytes -= c.pcm.len();
            }
        }
        self.sent = 0;
    }

    /// Where the oldest audio no final result has covered starts (stream
    /// samples), if there is any.
    pub fn start(&self) -> Option<u64> {
        self.chunks.front().map(|c| c.at)
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn has_unsent(&self) -> bool {
        self.sent < self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(at: u64, samples: usize) -> Chunk {
        Chunk {
            at,
            pcm: Bytes::from(vec![0u8; samples * 2]),
        }
    }

    #[test]
    fn replay_after_failure_and_trim_on_final() {
        let mut r = ReplayBuffer::new(1_000_000);
        r.push(chunk(0, 100));
        r.push(chunk(100, 100));
        assert_eq!(r.take_unsent().len(), 2);
        r.push(chunk(200, 100));
        assert_eq!(r.take_unsent().len(), 1);
        r.rewind();
        assert_eq!(
            r.take_unsent().len(),
            3,
            "a new connection gets everything again"
        );
        r.covered_until(200);
        assert_eq!(r.start(), Some(200), "what is left starts after the final");
        r.rewind();
        assert_eq!(r.take_unsent()[0].at, 200);
    }

    #[test]
    fn bounded() {
        let mut r = ReplayBuffer::new(400);
        for i in 0..5 {
            r.push(chunk(i * 100, 100));
        }
        assert_eq!(r.take_unsent().len(), 2);
        assert_eq!(r.dropped_bytes, 600);
    }
}
