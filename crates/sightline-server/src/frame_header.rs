//! Reads WebSocket frame headers (RFC 6455 §5.2) as the bytes arrive, so a
//! frame is judged by the size it declares before any of its payload is
//! buffered, and the byte stream can be cut at frame boundaries.
//!
//! [`FrameSplitter`] keeps at most one 14-byte header; it never unmasks or
//! copies payload. [`MessageRules`] judges each complete header against an
//! endpoint's limits.

use thiserror::Error;

/// Marks a refusal for a frame or message over the size limit; the
/// connection turns it into close 1009 (see `frames::protocol_error_code`).
pub const TOO_BIG_MARK: &str = "frame over the size limit";
/// Marks a refusal for a frame that breaks the framing rules (close 1008).
pub const FRAMING_MARK: &str = "frame refused";

/// What a frame header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: u8,
    pub payload_len: u64,
    /// Bytes of the header itself (2 to 14).
    pub header_len: usize,
}

/// One step through the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `consumed` header bytes; `Some` when the header is now complete.
    Header {
        consumed: usize,
        header: Option<FrameHeader>,
    },
    /// `consumed` payload bytes; `frame_end` when they end the frame.
    Payload { consumed: usize, frame_end: bool },
}

#[derive(Debug, Clone)]
enum State {
    Header { buf: [u8; 14], have: usize },
    Payload { remaining: u64 },
}

/// Splits a byte stream into frame headers and payload spans.
#[derive(Debug, Clone)]
pub struct FrameSplitter {
    state: State,
}

impl Default for FrameSplitter {
    fn default() -> Self {
        FrameSplitter {
            state: State::Header {
                buf: [0; 14],
                have: 0,
            },
        }
    }
}

/// Header bytes needed given the first `have` bytes in `buf`.
fn header_len(buf: &[u8; 14], have: usize) -> usize {
    if have < 2 {
        return 2;
    }
    let extended = match buf[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if buf[1] & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

fn decode(buf: &[u8; 14], len: usize) -> FrameHeader {
    let payload_len = match buf[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    FrameHeader {
        fin: buf[0] & 0x80 != 0,
        opcode: buf[0] & 0x0f,
        payload_len,
        header_len: len,
    }
}

impl FrameSplitter {
    /// Consumes a prefix of `input`: at least one byte when `input` is not
    /// empty, never past the end of the current header or frame.
    pub fn step(&mut self, input: &[u8]) -> Step {
        match &mut self.state {
            State::Header { buf, have } => {
                let mut consumed = 0;
                while consumed < input.len() && *have < header_len(buf, *have) {
                    let need = header_len(buf, *have) - *have;
                    let take = need.min(input.len() - consumed);
                    buf[*have..*have + take].copy_from_slice(&input[consumed..consumed + take]);
                    *have += take;
                    consumed += take;
                }
                let len = header_len(buf, *have);
                if *have < len {
                    return Step::Header {
                        consumed,
                        header: None,
                    };
                }
                let header = decode(buf, len);
                self.state = if header.payload_len == 0 {
                    State::Header {
                        buf: [0; 14],
                        have: 0,
                    }
                } else {
                    State::Payload {
                        remaining: header.payload_len,
                    }
                };
                Step::Header {
                    consumed,
                    header: Some(header),
                }
            }
            State::Payload { remaining } => {
                let take = (*remaining).min(input.len() as u64);
                *remaining -= take;
                let frame_end = *remaining == 0;
                if frame_end {
                    self.state = State::Header {
                        buf: [0; 14],
                        have: 0,
                    };
                }
                Step::Payload {
                    consumed: take as usize,
                    frame_end,
                }
            }
        }
    }
}

/// Why a frame was refused at its header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("{TOO_BIG_MARK}: a frame declares {declared} bytes, the limit is {limit}")]
    FrameTooBig { declared: u64, limit: usize },
    #[error("{TOO_BIG_MARK}: a fragmented message reaches {declared} bytes, the limit is {limit}")]
    MessageTooBig { declared: u64, limit: usize },
    #[error("{FRAMING_MARK}: a fragmented message has more than {limit} fragments")]
    TooManyFragments { limit: usize },
    #[error("{FRAMING_MARK}: {0}")]
    Framing(&'static str),
}

impl Refusal {
    /// Whether this is a size refusal (close 1009) rather than a framing one.
    pub fn is_size(&self) -> bool {
        matches!(
            self,
            Refusal::FrameTooBig { .. } | Refusal::MessageTooBig { .. }
        )
    }
}

/// A message in fragments: what its headers declared so far.
#[derive(Debug, Clone, Copy)]
struct Fragmented {
    declared: u64,
    fragments: usize,
}

/// An endpoint's limits on frames and fragmented messages, judged header
/// by header.
#[derive(Debug, Clone)]
pub struct MessageRules {
    max_message: usize,
    max_fragments: usize,
    open: Option<Fragmented>,
}

impl MessageRules {
    /// Frames and whole messages of at most `max_message` bytes, messages
    /// of at most `max_fragments` frames.
    pub fn new(max_message: usize, max_fragments: usize) -> Self {
        MessageRules {
            max_message,
            max_fragments,
            open: None,
        }
    }

    /// Judges one complete header.
    pub fn judge(&mut self, h: &FrameHeader) -> Result<(), Refusal> {
        let limit = self.max_message;
        match h.opcode {
            0x8..=0xa => {
                if !h.fin {
                    return Err(Refusal::Framing("a control frame is fragmented"));
                }
                if h.payload_len > 125 {
                    return Err(Refusal::Framing("a control frame carries over 125 bytes"));
                }
                Ok(())
            }
            0x1 | 0x2 => {
                if self.open.is_some() {
                    return Err(Refusal::Framing(
                        "a new message started before the fragmented one ended",
                    ));
                }
                if h.payload_len > limit as u64 {
                    return Err(Refusal::FrameTooBig {
                        declared: h.payload_len,
                        limit,
                    });
                }
                if !h.fin {
                    self.open = Some(Fragmented {
                        declared: h.payload_len,
                        fragments: 1,
                    });
                }
                Ok(())
            }
            0x0 => {
                let Some(open) = self.open.as_mut() else {
                    return Err(Refusal::Framing(
                        "a continuation frame without a first fragment",
                    ));
                };
                open.declared = open.declared.saturating_add(h.payload_len);
                open.fragments += 1;
                if open.declared > limit as u64 {
                    return Err(Refusal::MessageTooBig {
                        declared: open.declared,
                        limit,
                    });
                }
                if open.fragments > self.max_fragments {
                    return Err(Refusal::TooManyFragments {
                        limit: self.max_fragments,
                    });
                }
                if h.fin {
                    self.open = None;
                }
                Ok(())
            }
            _ => Err(Refusal::Framing("a frame with a reserved opcode")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client frame: header (masked) and `len` payload bytes.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=65_535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(0x5a, len));
        out
    }

    /// Offsets (from the start) where frames end, and the headers seen,
    /// feeding `input` in pieces cut at `cuts`.
    fn boundaries(input: &[u8], cuts: &[usize]) -> (Vec<usize>, Vec<FrameHeader>) {
        let mut splitter = FrameSplitter::default();
        let mut ends = Vec::new();
        let mut headers = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        let (mut offset, mut start) = (0usize, 0usize);
        for end in points {
            let piece = &input[start..end];
            start = end;
            let mut pos = 0;
            while pos < piece.len() {
                let step = splitter.step(&piece[pos..]);
                let (consumed, ended) = match step {
                    Step::Header { consumed, header } => {
                        if let Some(h) = header {
                            headers.push(h);
                        }
                        (consumed, header.is_some_and(|h| h.payload_len == 0))
                    }
                    Step::Payload {
                        consumed,
                        frame_end,
                    } => (consumed, frame_end),
                };
                assert!(consumed > 0, "a step always makes progress");
                pos += consumed;
                offset += consumed;
                if ended {
                    ends.push(offset);
                }
            }
        }
        (ends, headers)
    }

    #[test]
    fn headers_of_every_length_form() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536] {
            let f = frame(true, 2, len);
            let (ends, headers) = boundaries(&f, &[]);
            assert_eq!(ends, vec![f.len()], "len {len}");
            assert_eq!(headers[0].payload_len, len as u64);
            assert_eq!(headers[0].header_len, f.len() - len);
        }
    }

    #[test]
    fn a_huge_declared_length_is_read_from_the_header_alone() {
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        header.extend_from_slice(&[0; 4]);
        let mut s = FrameSplitter::default();
        let Step::Header {
            header: Some(h), ..
        } = s.step(&header)
        else {
            panic!("header not complete");
        };
        assert_eq!(h.payload_len, 1 << 40);
        let mut rules = MessageRules::new(1024, 8);
        assert!(rules.judge(&h).is_err_and(|r| r.is_size()));
    }

    #[test]
    fn fragments_are_counted_and_summed() {
        let h = |fin, opcode, len| FrameHeader {
            fin,
            opcode,
            payload_len: len,
            header_len: 6,
        };
        let mut rules = MessageRules::new(100, 3);
        assert_eq!(rules.judge(&h(false, 1, 40)), Ok(()));
        assert_eq!(rules.judge(&h(true, 9, 0)), Ok(()), "a ping in between");
        assert_eq!(rules.judge(&h(false, 0, 40)), Ok(()));
        assert!(rules.judge(&h(true, 0, 40)).is_err_and(|r| r.is_size()));

        let mut rules = MessageRules::new(100, 3);
        assert_eq!(rules.judge(&h(false, 1, 0)), Ok(()));
        assert_eq!(rules.judge(&h(false, 0, 0)), Ok(()));
        assert_eq!(rules.judge(&h(false, 0, 0)), Ok(()));
        assert_eq!(
            rules.judge(&h(false, 0, 0)),
            Err(Refusal::TooManyFragments { limit: 3 })
        );

        let mut rules = MessageRules::new(100, 3);
        assert!(rules.judge(&h(true, 0, 1)).is_err(), "no first fragment");
        assert!(rules.judge(&h(false, 9, 1)).is_err(), "fragmented ping");
        assert!(rules.judge(&h(true, 9, 126)).is_err(), "long ping");
        assert!(rules.judge(&h(true, 3, 1)).is_err(), "reserved opcode");
        assert_eq!(rules.judge(&h(false, 2, 1)), Ok(()));
        assert!(rules.judge(&h(true, 1, 1)).is_err(), "interleaved message");
    }

    fn frames() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            (
                any::<bool>(),
                0u8..16,
                prop_oneof![0usize..130, 120usize..70_000],
            ),
            0..6,
        )
        .prop_map(|fs| {
            fs.into_iter()
                .flat_map(|(fin, op, len)| frame(fin, op, len))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The same stream cut anywhere gives the same frame boundaries and
        /// headers as the stream in one piece.
        #[test]
        fn cutting_the_stream_never_moves_a_boundary(
            input in frames(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let whole = boundaries(&input, &[]);
            let cut = boundaries(&input, &cuts);
            prop_assert_eq!(&whole, &cut);
            prop_assert_eq!(whole.0.last().copied().unwrap_or(0), input.len());
        }

        /// Any bytes, cut anywhere: no panic, progress on every step, and
        /// judging every header is fine.
        #[test]
        fn any_bytes_are_handled(
            input in prop::collection::vec(any::<u8>(), 0..400),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let (ends, headers) = boundaries(&input, &cuts);
            prop_assert_eq!(&(ends.clone(), headers.clone()), &boundaries(&input, &[]));
            prop_assert!(ends.windows(2).all(|w| w[0] < w[1]));
            let mut rules = MessageRules::new(64, 4);
            for h in &headers {
                let _ = rules.judge(h);
            }
        }
    }
}
