//! Counters of one decoder, and the "once per burst" rule for logging
//! damaged frames: the first damaged frame after a run of good ones is
//! logged, the rest of the burst only counted.

/// What a decoder has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames decoded normally.
    pub frames_decoded: u64,
    /// Frames replaced by concealment (damaged or truncated).
    pub frames_concealed: u64,
    /// Bursts of consecutive concealed frames.
    pub bursts: u64,
    /// Whether the last frame was concealed (inside a burst).
    pub in_burst: bool,
}

impl DecodeStats {
    pub(crate) fn good(&mut self) {
        self.frames_decoded += 1;
        self.in_burst = false;
    }

    /// Counts a concealed frame; true when it starts a new burst (the one
    /// to log).
    pub(crate) fn concealed(&mut self) -> bool {
        self.frames_concealed += 1;
        let starts = !self.in_burst;
        if starts {
            self.bursts += 1;
        }
        self.in_burst = true;
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_reported_once() {
        let mut s = DecodeStats::default();
        assert!(s.concealed());
        assert!(!s.concealed());
        s.good();
        assert!(s.concealed());
        assert_eq!((s.frames_concealed, s.bursts, s.frames_decoded), (3, 2, 1));
    }
}
