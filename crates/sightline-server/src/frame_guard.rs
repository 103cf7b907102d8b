//! The WebSocket request stream as the connection's codec sees it: cut at
//! frame boundaries, with every frame judged at its header.
//!
//! actix's WebSocket stream reads every chunk available before decoding one
//! frame, and its codec checks a frame's size only once the whole frame is
//! buffered. [`FrameGuard`] sits between the socket's payload and that
//! stream:
//! - it reads each frame header as the bytes flow ([`FrameSplitter`]) and
//!   refuses a frame or fragmented message over the endpoint's limit, or
//!   with too many fragments, before its payload is read ([`MessageRules`]);
//! - it hands on the bytes up to the end of the current frame, then yields
//!   once (waking itself), so the codec decodes that frame before it gets
//!   more: the codec's buffer holds about one frame;
//! - its own buffer is the one chunk of the payload it is cutting, and it
//!   reads the next only when that is handed on, so a connection that stops
//!   reading stops the socket (TCP backpressure).
//!
//! A refusal ends the stream with an error whose text carries
//! [`TOO_BIG_MARK`](crate::frame_header::TOO_BIG_MARK) or
//! [`FRAMING_MARK`](crate::frame_header::FRAMING_MARK); the connection
//! closes 1009 or 1008 (`frames::protocol_error_code`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

use crate::frame_header::{FrameSplitter, MessageRules, Step};

/// A request payload cut at frame boundaries and judged header by header.
pub struct FrameGuard<S> {
    inner: S,
    splitter: FrameSplitter,
    rules: MessageRules,
    /// The rest of the chunk being cut.
    held: Bytes,
    /// A frame ended with the last bytes handed on: yield once first.
    pause: bool,
    /// A frame was refused: the stream has ended.
    refused: bool,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, rules: MessageRules) -> Self {
        FrameGuard {
            inner,
            splitter: FrameSplitter::default(),
            rules,
            held: Bytes::new(),
            pause: false,
            refused: false,
        }
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.refused {
            return Poll::Ready(None);
        }
        if this.pause {
            // The codec decodes the frame it has before asking again.
            this.pause = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.held.is_empty() {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.held = chunk,
                other => return other,
            }
        }
        let mut cut = 0;
        while cut < this.held.len() {
            let (consumed, frame_end) = match this.splitter.step(&this.held[cut..]) {
                Step::Header { consumed, header } => {
                    let mut empty = false;
                    if let Some(h) = header {
                        if let Err(refusal) = this.rules.judge(&h) {
                            this.refused = true;
                            this.held = Bytes::new();
                            let error = io::Error::new(io::ErrorKind::InvalidData, refusal);
                            return Poll::Ready(Some(Err(PayloadError::Io(error))));
                        }
                        empty = h.payload_len == 0;
                    }
                    (consumed, empty)
                }
                Step::Payload {
                    consumed,
                    frame_end,
                } => (consumed, frame_end),
            };
            cut += consumed;
            if frame_end {
                this.pause = true;
                break;
            }
        }
        Poll::Ready(Some(Ok(this.held.split_to(cut))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if len < 126 {
            out.push(0x80 | len as u8);
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&[0; 4]);
        out.extend(std::iter::repeat_n(b'a', len.min(1 << 20)));
        out
    }

    fn guard(
        chunks: Vec<Vec<u8>>,
        max: usize,
    ) -> FrameGuard<impl Stream<Item = Result<Bytes, PayloadError>> + Unpin> {
        let inner = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        FrameGuard::new(inner, MessageRules::new(max, 4))
    }

    #[actix_rt::test]
    async fn bytes_come_out_one_frame_at_a_time() {
        let mut all = frame(true, 1, 3);
        all.extend(frame(true, 2, 200));
        all.extend(frame(true, 9, 0));
        let mut g = guard(vec![all], 1000);
        let mut pieces = Vec::new();
        while let Some(p) = g.next().await {
            pieces.push(p.expect("accepted").len());
        }
        assert_eq!(pieces, vec![9, 214, 6]);
    }

    #[actix_rt::test]
    async fn a_frame_over_the_limit_is_refused_at_its_header() {
        let mut g = guard(vec![frame(true, 1, 10), frame(true, 1, 1 << 40)], 100);
        assert!(g.next().await.is_some_and(|r| r.is_ok()));
        let err = g.next().await.expect("an item").expect_err("refused");
        assert!(
            err.to_string().contains(crate::frame_header::TOO_BIG_MARK),
            "{err}"
        );
        assert!(g.next().await.is_none(), "the stream ends");
    }

    #[actix_rt::test]
    async fn endless_empty_fragments_are_refused() {
        let mut chunk = frame(false, 1, 0);
        for _ in 0..10 {
            chunk.extend(frame(false, 0, 0));
        }
        let mut g = guard(vec![chunk], 100);
        let mut refused = None;
        while let Some(item) = g.next().await {
            if let Err(e) = item {
                refused = Some(e.to_string());
            }
        }
        let refused = refused.expect("refused");
        assert!(
            refused.contains(crate::frame_header::FRAMING_MARK),
            "{refused}"
        );
    }
}
