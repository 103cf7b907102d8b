//! The `TranslationRelay` actor: serves a translation subscription by
//! translating the results of a speech-only stream with a
//! [`TextTranslator`].
//!
//! The session runs one per translation pair the speech provider cannot
//! serve itself and forwards it every [`StreamUpdate`] of the pair's source
//! stream (`transcription:<src>`, shared with that language's transcription
//! subscribers). The relay sends each result, translated, back to the
//! session as a [`StreamUpdate`] of the pair, with the source text as
//! `original_text` and the source stream's times.
//!
//! One request is in flight at a time, so results come out in order. Final
//! results wait in a bounded queue (the oldest is dropped and counted when
//! it is full); of the interim results only the newest waits, and a final
//! result supersedes it. A transient failure of a final result's request is
//! retried a bounded number of times, after which the final result goes out
//! in the spoken language, marked untranslated, rather than being lost; an
//! interim result's is dropped. A permanent failure (bad key, quota, an
//! unsupported language) fails the relay once: the session tells the pair's
//! apps and nothing more is sent to the translator.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};

use actix::{ActorContext, Recipient};

use crate::provider::{base, StreamSpec, Transcript};
use crate::stream::{StopStream, StreamEvent, StreamUpdate};
use crate::translate_config::RelaySettings;
use crate::translator::{TextTranslator, TranslateRequest, Translation, TranslationError};

/// A source result waiting for its translation.
#[derive(Debug, Clone)]
struct Pending {
    transcript: Transcript,
    start_ms: u64,
    end_ms: u64,
    provider: &'static str,
}

pub struct TranslationRelay {
    spec: StreamSpec,
    translator: Arc<dyn TextTranslator>,
    settings: RelaySettings,
    out: Recipient<StreamUpdate>,
    finals: VecDeque<Pending>,
    interim: Option<Pending>,
    busy: bool,
    failed: bool,
    /// Final results dropped because the queue was full.
    pub dropped: u64,
}

impl TranslationRelay {
    /// `spec` is the translation pair served.
    pub fn new(
        spec: StreamSpec,
        translator: Arc<dyn TextTranslator>,
        settings: RelaySettings,
        out: Recipient<StreamUpdate>,
    ) -> TranslationRelay {
        TranslationRelay {
            spec,
            translator,
            settings,
            out,
            finals: VecDeque::new(),
            interim: None,
            busy: false,
            failed: false,
            dropped: 0,
        }
    }

    fn target(&self) -> &str {
        self.spec.target.as_deref().unwrap_or("en-US")
    }

    /// Whether the speech is known to be in the target language already.
    fn same_language(&self, t: &Transcript) -> bool {
        let spoken = if self.spec.detects_language() {
            match &t.detected_language {
                Some(l) => l.as_str(),
                None => return false,
            }
        } else {
            self.spec.language.as_str()
        };
        base(spoken).eq_ignore_ascii_case(base(self.target()))
    }

    fn emit(&self, p: Pending, translation: Option<Translation>) {
        let mut t = p.transcript;
        let original = std::mem::take(&mut t.text);
        match translation {
            Some(tr) => {
                t.text = tr.text;
                if t.detected_language.is_none() {
                    t.detected_language = tr.detected_source;
                }
            }
            None => {
                t.text = original.clone();
                t.untranslated = true;
            }
        }
        t.original_text = Some(original);
        self.out.do_send(StreamUpdate {
            spec: self.spec.clone(),
            event: StreamEvent::Transcript {
                transcript: t,
                start_ms: p.start_ms,
                end_ms: p.end_ms,
                provider: p.provider,
            },
        });
    }

    fn fail(&mut self, reason: String) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.finals.clear();
        self.interim = None;
        self.out.do_send(StreamUpdate {
            spec: self.spec.clone(),
            event: StreamEvent::Failed { reason },
        });
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        while !self.busy && !self.failed {
            let Some(next) = self.finals.pop_front().or_else(|| self.interim.take()) else {
                return;
            };
            if self.same_language(&next.transcript) {
                // Nothing to translate.
                self.emit(next, None);
                continue;
            }
            self.busy = true;
            self.request(next, 1, ctx);
        }
    }

    fn request(&mut self, p: Pending, attempt: u32, ctx: &mut Context<Self>) {
        let source = if self.spec.detects_language() {
            None
        } else {
            Some(self.spec.language.clone())
        };
        let request = TranslateRequest {
            text: p.transcript.text.clone(),
            source,
            target: self.target().to_string(),
        };
        let fut = self.translator.translate(request);
        ctx.spawn(
            fut.into_actor(self)
                .map(move |res, act, ctx| act.answered(p, attempt, res, ctx)),
        );
    }

    fn answered(
        &mut self,
        p: Pending,
        attempt: u32,
        res: Result<Translation, TranslationError>,
        ctx: &mut Context<Self>,
    ) {
        if self.failed {
            return;
        }
        match res {
            Ok(tr) => self.emit(p, Some(tr)),
            Err(e) if e.is_permanent() => {
                tracing::error!(stream = %self.spec, error = %e, "the translator refused; translation stopped");
                self.fail(e.to_string());
                self.busy = false;
                return;
            }
            Err(e) if p.transcript.is_final && attempt < self.settings.attempts => {
                let delay = self.settings.retry_delay * 2u32.saturating_pow(attempt - 1);
                tracing::warn!(stream = %self.spec, error = %e, attempt, retry_ms = delay.as_millis() as u64, "translation failed; retrying");
                ctx.run_later(delay, move |act, ctx| act.request(p, attempt + 1, ctx));
                return;
            }
            Err(e) if p.transcript.is_final => {
                tracing::warn!(stream = %self.spec, error = %e, attempt, "translation failed; sending the spoken text untranslated");
                self.emit(p, None);
            }
            Err(e) => {
                tracing::debug!(stream = %self.spec, error = %e, "interim translation failed; dropped");
            }
        }
        self.busy = false;
        self.pump(ctx);
    }
}

impl Actor for TranslationRelay {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        tracing::info!(stream = %self.spec, translator = self.translator.name(), "translation relay started");
    }
}

impl Handler<StreamUpdate> for TranslationRelay {
    type Result = ();

    fn handle(&mut self, msg: StreamUpdate, ctx: &mut Context<Self>) {
        if self.failed {
            return;
        }
        let (transcript, start_ms, end_ms, provider) = match msg.event {
            StreamEvent::Failed { reason } => return self.fail(reason),
            StreamEvent::Transcript {
                transcript,
                start_ms,
                end_ms,
                provider,
            } => (transcript, start_ms, end_ms, provider),
        };
        let p = Pending {
            transcript,
            start_ms,
            end_ms,
            provider,
        };
        if p.transcript.is_final {
            self.interim = None;
            if self.finals.len() >= self.settings.max_pending.max(1) {
                self.finals.pop_front();
                self.dropped += 1;
                tracing::warn!(stream = %self.spec, dropped = self.dropped, "translation queue full; oldest final result dropped");
            }
            self.finals.push_back(p);
        } else if self.settings.interim {
            self.interim = Some(p);
        }
        self.pump(ctx);
    }
}

impl Handler<StopStream> for TranslationRelay {
    type Result = ();
    fn handle(&mut self, _: StopStream, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
