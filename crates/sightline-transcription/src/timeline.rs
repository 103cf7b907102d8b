//! Maps times on a provider connection to times of the stream.
//!
//! A provider times its results from the first sample *it* received. The
//! stream skips silence (voice activity), reconnects, and replays audio
//! after a failure, so provider time and stream time drift apart. The
//! timeline records, for every run of contiguous audio sent on the current
//! connection, where it starts in both clocks.

/// Milliseconds of 16 kHz audio in `samples`.
fn ms(samples: u64) -> u64 {
    samples * 1000 / crate::SAMPLE_RATE as u64
}

#[derive(Debug, Default)]
pub struct Timeline {
    /// (provider sample offset, stream sample offset) where each run starts.
    runs: Vec<(u64, u64)>,
    /// Samples sent on this connection so far.
    sent: u64,
    /// Stream offset just after the last sample sent.
    stream_end: Option<u64>,
}

impl Timeline {
    /// Starts over for a new provider connection.
    pub fn reset(&mut self) {
        *self = Timeline::default();
    }

    /// Records `samples` sent to the provider that start at `stream_at`
    /// (samples since the stream started).
    pub fn sent(&mut self, stream_at: u64, samples: u64) {
        if self.stream_end != Some(stream_at) {
            self.runs.push((self.sent, stream_at));
        }
        self.sent += samples;
        self.stream_end = Some(stream_at + samples);
    }

    /// Stream time (ms) of a provider time (ms).
    pub fn to_stream_ms(&self, provider_ms: u64) -> u64 {
        let at = provider_ms * crate::SAMPLE_RATE as u64 / 1000;
        match self.runs.iter().rev().find(|(p, _)| *p <= at) {
            Some((p, s)) => ms(s + (at - p)),
            None => self
                .runs
                .first()
                .map(|(_, s)| ms(*s))
                .unwrap_or(provider_ms),
        }
    }

    /// Stream time (ms) of the end of what was sent so far.
    pub fn end_ms(&self) -> u64 {
        self.stream_end.map(ms).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_reconnects_are_mapped() {
        let mut t = Timeline::default();
        t.sent(0, 16_000); // 0..1 s
        t.sent(48_000, 16_000); // silence skipped: 3..4 s of the stream
        assert_eq!(t.to_stream_ms(500), 500);
        assert_eq!(t.to_stream_ms(1_500), 3_500);
        t.reset();
        t.sent(80_000, 8_000); // replay after a reconnect: 5 s..
        assert_eq!(t.to_stream_ms(250), 5_250);
        assert_eq!(t.end_ms(), 5_500);
    }
}
