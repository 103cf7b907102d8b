//! The `TranscriptionStream` actor: one per (user session, language or
//! translation pair), started by the session when the first app subscribes
//! to it and stopped when the last one leaves or the glasses go.
//!
//! Inputs: PCM from the glasses ([`StreamAudio`]) and their voice-activity
//! state ([`StreamVad`]). While there is speech (or voice activity is
//! bypassed, or the glasses never reported any) the stream keeps a provider
//! connection open and sends it the audio; when the glasses report silence
//! it announces the end of the audio, collects the last results and closes,
//! so no audio reaches the provider during silence. Output: every interim
//! and final result as a [`StreamUpdate`] to the session, timed in
//! milliseconds from the start of the stream; or, once, a failure.
//!
//! Audio goes through a bounded [`ReplayBuffer`] until a final result covers
//! it. A transient failure (network, 5xx, timeout, the provider going away)
//! leaves it there: the stream reconnects with exponential backoff and sends
//! it again, so an utterance cut off by a provider restart is still
//! transcribed. A permanent failure (bad key, bad configuration) fails the
//! stream: the session is told once and no retry follows.

use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    StreamHandler,
};
use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::breaker::{CallPermit, Recorded};
use crate::config::AsrConfig;
use crate::connection::{self, ConnectionTimings, FromProvider, ToProvider};
use crate::error::AsrError;
use crate::provider::{Provider, ProviderEvent, StreamSpec, Transcript};
use crate::replay::{Chunk, ReplayBuffer};
use crate::timeline::Timeline;
use sightline_probe::ProbeGuard;

/// A result or failure of a stream, for the session to fan out.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StreamUpdate {
    pub spec: StreamSpec,
    pub event: StreamEvent,
}

#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// A result; times are milliseconds from the start of the stream.
    Transcript {
        transcript: Transcript,
        start_ms: u64,
        end_ms: u64,
        provider: &'static str,
    },
    /// The stream cannot work (a permanent provider error); it will not
    /// retry.
    Failed { reason: String },
}

/// Where the provider connection stands.
enum Conn {
    /// No connection; one opens when speech audio arrives.
    Idle,
    Connecting(mpsc::UnboundedSender<ToProvider>),
    Open(mpsc::UnboundedSender<ToProvider>),
    /// End of audio announced; waiting for the last results.
    Draining,
    /// Waiting out a backoff or an open circuit breaker.
    Waiting,
    Failed,
}

impl Conn {
    fn name(&self) -> &'static str {
        match self {
            Conn::Idle => "idle",
            Conn::Connecting(_) => "connecting",
            Conn::Open(_) => "open",
            Conn::Draining => "draining",
            Conn::Waiting => "waiting",
            Conn::Failed => "failed",
        }
    }
}

pub struct TranscriptionStream {
    spec: StreamSpec,
    provider: Arc<dyn Provider>,
    config: AsrConfig,
    out: Recipient<StreamUpdate>,
    started: Instant,
    /// Stream position (samples) where the next audio chunk starts.
    cursor: u64,
    /// Last voice-activity state from the glasses; `None` until they send
    /// one (then all audio is treated as speech).
    vad: Option<bool>,
    bypass_vad: bool,
    replay: ReplayBuffer,
    timeline: Timeline,
    conn: Conn,
    backoff: ExponentialBackoff,
    /// Tags provider events with the connection they came from.
    epoch: u64,
    /// Connection attempts so far.
    attempts: u64,
    /// The provider breaker's leave for the connection attempt under way;
    /// dropped with the stream, it gives a half-open turn back.
    permit: Option<CallPermit>,
    /// This stream's entry in the actor registry, when it has one.
    probe: Option<ProbeGuard>,
}

impl TranscriptionStream {
    pub fn new(
        spec: StreamSpec,
        provider: Arc<dyn Provider>,
        config: AsrConfig,
        bypass_vad: bool,
        out: Recipient<StreamUpdate>,
    ) -> TranscriptionStream {
        let capacity = (config.replay_capacity.as_millis() as usize) * 32; // 32 bytes per ms
        let backoff = ExponentialBackoff {
            initial_interval: config.initial_backoff,
            max_interval: config.max_backoff,
            multiplier: 2.0,
            randomization_factor: 0.5,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        TranscriptionStream {
            spec,
            provider,
            config,
            out,
            started: Instant::now(),
            cursor: 0,
            vad: None,
            bypass_vad,
            replay: ReplayBuffer::new(capacity),
            timeline: Timeline::default(),
            conn: Conn::Idle,
            backoff,
            epoch: 0,
            attempts: 0,
            permit: None,
            probe: None,
        }
    }

    /// Lists the stream in an actor registry: its state, the audio it
    /// handles, provider failures and reconnects.
    pub fn with_probe(mut self, probe: ProbeGuard) -> Self {
        probe.set_label(&self.spec.to_string());
        probe.set_state(self.conn.name());
        self.probe = Some(probe);
        self
    }

    fn set_conn(&mut self, conn: Conn) {
        self.probe(|p| p.set_state(conn.name()));
        self.conn = conn;
    }

    fn probe(&self, f: impl FnOnce(&ProbeGuard)) {
        if let Some(p) = &self.probe {
            f(p);
        }
    }

    fn wants_audio(&self) -> bool {
        self.bypass_vad || self.vad != Some(false)
    }

    /// Stream position of "now" by the wall clock, in samples.
    fn wall_position(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 * crate::SAMPLE_RATE as u64 / 1000
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        match &self.conn {
            Conn::Open(tx) => {
                for chunk in self.replay.take_unsent() {
                    self.timeline.sent(chunk.at, chunk.samples());
                    if tx.send(ToProvider::Audio(chunk.pcm)).is_err() {
                        break; // the task ended; its Closed is on the way
                    }
                }
            }
            Conn::Idle if self.replay.has_unsent() => self.connect(ctx),
            _ => {}
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.permit = None;
        match self.config.breaker.check(Instant::now()) {
            Ok(permit) => self.permit = Some(permit),
            Err(wait) => {
                self.set_conn(Conn::Waiting);
                ctx.run_later(wait, |act, ctx| act.retry(ctx));
                return;
            }
        }
        self.attempts += 1;
        if self.attempts > 1 {
            self.probe(|p| p.restarted());
        }
        self.epoch += 1;
        let epoch = self.epoch;
        let timings = ConnectionTimings {
            connect_timeout: self.config.connect_timeout,
            drain_timeout: self.config.drain_timeout,
        };
        let conn = connection::open(self.provider.clone(), self.spec.clone(), timings);
        let events = futures_util::stream::unfold(conn.from, |mut rx| async move {
            rx.recv().await.map(|ev| (ev, rx))
        })
        .map(move |ev| (epoch, ev));
        ctx.add_stream(events);
        self.set_conn(Conn::Connecting(conn.to));
        tracing::debug!(stream = %self.spec, attempt = self.attempts, "connecting to the speech provider");
    }

    fn retry(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.conn, Conn::Waiting) {
            self.set_conn(Conn::Idle);
            self.replay.rewind();
            self.pump(ctx);
        }
    }

    fn end_audio(&mut self) {
        if let Conn::Open(tx) = &self.conn {
            let _ = tx.send(ToProvider::End);
            self.set_conn(Conn::Draining);
        }
    }

    fn result(&mut self, t: Transcript) {
        // A result without times (a Vosk partial) covers the audio since
        // the last final result: the oldest audio still in the replay
        // buffer.
        let start_ms = t
            .start_ms
            .map(|ms| self.timeline.to_stream_ms(ms))
            .or_else(|| {
                self.replay
                    .start()
                    .map(|at| at * 1000 / crate::SAMPLE_RATE as u64)
            })
            .unwrap_or_else(|| self.timeline.to_stream_ms(0));
        let end_ms = t
            .end_ms
            .map(|ms| self.timeline.to_stream_ms(ms))
            .unwrap_or_else(|| self.timeline.end_ms())
            .max(start_ms);
        if t.is_final && t.end_ms.is_some() {
            self.replay
                .covered_until(end_ms * crate::SAMPLE_RATE as u64 / 1000);
        }
        self.out.do_send(StreamUpdate {
            spec: self.spec.clone(),
            event: StreamEvent::Transcript {
                transcript: t,
                start_ms,
                end_ms,
                provider: self.provider.name(),
            },
        });
    }

    /// Records a connection's outcome in the provider's breaker: through
    /// the attempt's permit while it connects, directly for an open
    /// connection that broke.
    fn breaker_outcome(&mut self, success: bool) {
        let now = Instant::now();
        let recorded = match self.permit.take() {
            Some(permit) => permit.record(success, now),
            None => self.config.breaker.record(success, now),
        };
        if let Recorded::Opened { failures } | Recorded::Reopened { failures } = recorded {
            tracing::warn!(
                failures,
                cooldown_ms = self.config.breaker.policy().cooldown.as_millis() as u64,
                "speech provider circuit breaker open"
            );
        }
    }

    fn closed(&mut self, error: Option<AsrError>, ctx: &mut Context<Self>) {
        let draining = matches!(self.conn, Conn::Draining);
        let error = match error {
            None if draining => {
                self.replay.forget_sent();
                self.set_conn(Conn::Idle);
                if self.wants_audio() {
                    self.pump(ctx);
                }
                return;
            }
            None => AsrError::transient(self.provider.name(), "the provider ended the stream"),
            Some(e) => e,
        };
        self.probe(|p| p.failed());
        if error.is_permanent() {
            self.permit = None;
            tracing::error!(stream = %self.spec, error = %error, "speech provider refused the stream; not retrying");
            self.set_conn(Conn::Failed);
            self.replay = ReplayBuffer::new(0);
            self.out.do_send(StreamUpdate {
                spec: self.spec.clone(),
                event: StreamEvent::Failed {
                    reason: error.to_string(),
                },
            });
            return;
        }
        self.breaker_outcome(false);
        let delay = self
            .backoff
            .next_backoff()
            .unwrap_or(self.config.max_backoff);
        tracing::warn!(stream = %self.spec, error = %error, retry_ms = delay.as_millis() as u64, "speech provider connection failed; will reconnect");
        self.set_conn(Conn::Waiting);
        ctx.run_later(delay, |act, ctx| act.retry(ctx));
    }
}

impl Actor for TranscriptionStream {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        tracing::info!(stream = %self.spec, provider = self.provider.name(), "transcription stream started");
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        tracing::info!(stream = %self.spec, attempts = self.attempts, "transcription stream stopped");
    }
}

impl StreamHandler<(u64, FromProvider)> for TranscriptionStream {
    fn handle(&mut self, (epoch, ev): (u64, FromProvider), ctx: &mut Context<Self>) {
        self.probe(|p| p.handled());
        if epoch != self.epoch {
            return; // a connection this stream has moved on from
        }
        match ev {
            FromProvider::Opened => {
                let Conn::Connecting(tx) = std::mem::replace(&mut self.conn, Conn::Idle) else {
                    return;
                };
                self.breaker_outcome(true);
                self.backoff.reset();
                self.set_conn(Conn::Open(tx));
                self.timeline.reset();
                self.replay.rewind();
                self.pump(ctx);
                if !self.wants_audio() {
                    self.end_audio();
                }
            }
            FromProvider::Event(ProviderEvent::Transcript(t)) => self.result(t),
            FromProvider::Event(_) => {}
            FromProvider::Closed(error) => self.closed(error, ctx),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // One provider connection ended; the stream lives on.
    }
}

/// PCM (16 kHz s16le mono) from the glasses.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamAudio(pub Bytes);

impl Handler<StreamAudio> for TranscriptionStream {
    type Result = ();
    fn handle(&mut self, StreamAudio(pcm): StreamAudio, ctx: &mut Context<Self>) {
        self.probe(|p| p.received());
        if pcm.len() < 2 || matches!(self.conn, Conn::Failed) {
            return;
        }
        let chunk = Chunk {
            at: self.cursor,
            pcm,
        };
        self.cursor = chunk.end();
        if self.wants_audio() {
            self.replay.push(chunk);
            self.pump(ctx);
        }
    }
}

/// The glasses' voice-activity state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamVad {
    pub speaking: bool,
}

impl Handler<StreamVad> for TranscriptionStream {
    type Result = ();
    fn handle(&mut self, msg: StreamVad, ctx: &mut Context<Self>) {
        self.probe(|p| p.handled());
        let was = self.wants_audio();
        self.vad = Some(msg.speaking);
        match (was, self.wants_audio()) {
            (true, false) => self.end_audio(),
            (false, true) => {
                // Silence may not have been sent as audio: keep stream time
                // in step with the clock across the gap.
                self.cursor = self.cursor.max(self.wall_position());
                self.pump(ctx);
            }
            _ => {}
        }
    }
}

/// Stop now (the last subscriber left, or the glasses went away).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopStream;

impl Handler<StopStream> for TranscriptionStream {
    type Result = ();
    fn handle(&mut self, _: StopStream, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// What a stream is doing, for status pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    pub state: &'static str,
    pub attempts: u64,
    pub dropped_bytes: u64,
}

#[derive(Message)]
#[rtype(result = "StreamStatus")]
pub struct GetStreamStatus;

impl Handler<GetStreamStatus> for TranscriptionStream {
    type Result = MessageResult<GetStreamStatus>;
    fn handle(&mut self, _: GetStreamStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(StreamStatus {
            state: self.conn.name(),
            attempts: self.attempts,
            dropped_bytes: self.replay.dropped_bytes,
        })
    }
}
