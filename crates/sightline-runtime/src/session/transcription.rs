//! Transcription inside a user session: which [`TranscriptionStream`]s run,
//! what they are fed, and where their results go.
//!
//! A stream runs per language (or translation pair) that at least one
//! running app subscribes to, and only while the glasses are connected: the
//! first subscription starts it, the last unsubscribe (or the glasses
//! leaving, or the session ending) stops it. Two apps on the same language
//! share one stream. Decoded PCM and the glasses' `VAD` events are fed to
//! every stream; each result goes to every app with a matching
//! subscription, as a `data_stream` whose `streamType` is that app's exact
//! subscription string (with its `?hints=` or other query).
//!
//! A translation pair is served by the speech provider itself when it can
//! (Soniox: any pair; the local recogniser: speech → English). Otherwise,
//! when a text translator is configured, the pair's source language is
//! transcribed by an ordinary stream (shared with that language's
//! transcription subscribers) and a [`TranslationRelay`] translates its
//! results; else the pair's apps are told `TRANSCRIPTION_UNSUPPORTED`.
//!
//! The session calls [`UserSession::sync_transcription`] whenever
//! subscriptions, app states or the glasses link change. Streams start at
//! once; a stream that lost its last subscriber through a subscription
//! change stops only once the change has settled (see
//! [`crate::microphone`]), so an app that re-subscribes keeps its stream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult, Recipient};
use bytes::Bytes;
use serde_json::{json, value::RawValue, Value};
use sightline_protocol::glasses::GlassesEvent;
use sightline_protocol::outbound;
use sightline_protocol::stream::StreamKind;
use sightline_transcription::stream::{StopStream, StreamAudio, StreamVad};
use sightline_transcription::{
    Provider, StreamEvent, StreamSpec, StreamUpdate, TranscriptionStream, TranslationRelay,
};

use super::{AppState, UserSession};
use crate::now_iso;
use sightline_probe::{ActorKind, ActorProbe};

/// The session's transcription streams.
pub(crate) struct Streams {
    provider: Option<Arc<dyn Provider>>,
    /// The session itself, where results are sent (set when it starts).
    me: Option<Recipient<StreamUpdate>>,
    running: BTreeMap<StreamSpec, RunningStream>,
    /// Translation pairs served by translating a speech stream's text, by
    /// pair.
    relays: BTreeMap<StreamSpec, Addr<TranslationRelay>>,
    /// Streams the provider cannot serve, already reported to their apps.
    unsupported: BTreeSet<StreamSpec>,
}

/// How a subscription's stream is served.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// By a speech stream of its own.
    Speech,
    /// By translating the text of the speech stream of its source language.
    Relay,
    /// Not at all with this configuration.
    Unsupported,
}

fn route(provider: &dyn Provider, has_translator: bool, spec: &StreamSpec) -> Route {
    if provider.supports(spec) {
        Route::Speech
    } else if spec.target.is_some() && has_translator && provider.supports(&spec.source()) {
        Route::Relay
    } else {
        Route::Unsupported
    }
}

/// A running stream: its address, and its probe for counting the audio sent
/// into its mailbox.
struct RunningStream {
    addr: Addr<TranscriptionStream>,
    probe: Arc<ActorProbe>,
}

impl Streams {
    pub(crate) fn new(provider: Option<Arc<dyn Provider>>) -> Streams {
        Streams {
            provider,
            me: None,
            running: BTreeMap::new(),
            relays: BTreeMap::new(),
            unsupported: BTreeSet::new(),
        }
    }

    pub(crate) fn bind(&mut self, me: Recipient<StreamUpdate>) {
        self.me = Some(me);
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        for (_, stream) in std::mem::take(&mut self.running) {
            stream.addr.do_send(StopStream);
        }
        for (_, relay) in std::mem::take(&mut self.relays) {
            relay.do_send(StopStream);
        }
    }
}

/// The stream a subscription needs, if it needs one.
fn spec_of(kind: &StreamKind) -> Option<StreamSpec> {
    match kind {
        StreamKind::Transcription { language } => Some(StreamSpec::transcription(language)),
        StreamKind::Translation { source, target } => Some(StreamSpec::translation(source, target)),
        _ => None,
    }
}

impl UserSession {
    /// Starts the streams running apps need and, with `stop_unwanted`,
    /// stops the others.
    pub(super) fn sync_transcription(&mut self, stop_unwanted: bool) {
        let mut subscribed = BTreeSet::new();
        if self.glasses.is_some() {
            for entry in self.apps.values().filter(|e| e.state == AppState::Running) {
                subscribed.extend(entry.subscriptions.iter().filter_map(|s| spec_of(&s.kind)));
            }
        }
        let translator = match &self.transcription.provider {
            Some(p) if subscribed.iter().any(|s| !p.supports(s)) => {
                self.config.asr.translate.build()
            }
            _ => None,
        };
        // Speech streams and relays wanted, and the pairs nothing serves.
        let mut speech = BTreeSet::new();
        let mut relayed = BTreeSet::new();
        let mut unsupported = BTreeSet::new();
        if let Some(provider) = &self.transcription.provider {
            for spec in subscribed {
                match route(provider.as_ref(), translator.is_some(), &spec) {
                    Route::Speech => {
                        speech.insert(spec);
                    }
                    Route::Relay => {
                        speech.insert(spec.source());
                        relayed.insert(spec);
                    }
                    Route::Unsupported => {
                        unsupported.insert(spec);
                    }
                }
            }
        }
        let stale: Vec<StreamSpec> = self
            .transcription
            .running
            .keys()
            .filter(|s| stop_unwanted && !speech.contains(*s))
            .cloned()
            .collect();
        for spec in stale {
            if let Some(stream) = self.transcription.running.remove(&spec) {
                tracing::info!(user = %self.user.email, stream = %spec, "last subscriber left; stopping transcription stream");
                stream.addr.do_send(StopStream);
            }
        }
        let stale: Vec<StreamSpec> = self
            .transcription
            .relays
            .keys()
            .filter(|s| stop_unwanted && !relayed.contains(*s))
            .cloned()
            .collect();
        for spec in stale {
            if let Some(relay) = self.transcription.relays.remove(&spec) {
                tracing::info!(user = %self.user.email, stream = %spec, "last subscriber left; stopping translation relay");
                relay.do_send(StopStream);
            }
        }
        self.transcription
            .unsupported
            .retain(|s| unsupported.contains(s));
        let (Some(provider), Some(me)) = (
            self.transcription.provider.clone(),
            self.transcription.me.clone(),
        ) else {
            return;
        };
        for spec in unsupported {
            if self.transcription.unsupported.contains(&spec) {
                continue;
            }
            let reason = format!(
                "{spec} is not available: the speech provider ({}) does not support it and no text translator is configured (SIGHTLINE_TRANSLATE_PROVIDER)",
                provider.name()
            );
            self.tell_subscribers(&spec, "TRANSCRIPTION_UNSUPPORTED", &reason);
            self.transcription.unsupported.insert(spec);
        }
        let bypass_vad = self
            .user
            .mentraos_settings
            .get("bypassVad")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        for spec in speech {
            if self.transcription.running.contains_key(&spec) {
                continue;
            }
            let guard = self.child_probe(ActorKind::TranscriptionStream, "idle");
            let probe = guard.probe();
            let addr = TranscriptionStream::new(
                spec.clone(),
                provider.clone(),
                self.config.asr.clone(),
                bypass_vad,
                me.clone(),
            )
            .with_probe(guard)
            .start();
            self.transcription
                .running
                .insert(spec, RunningStream { addr, probe });
        }
        if let Some(translator) = translator {
            for spec in relayed {
                if self.transcription.relays.contains_key(&spec) {
                    continue;
                }
                let addr = TranslationRelay::new(
                    spec.clone(),
                    translator.clone(),
                    self.config.asr.translate.relay,
                    me.clone(),
                )
                .start();
                self.transcription.relays.insert(spec, addr);
            }
        }
    }

    /// The streams running now, by name.
    pub(super) fn transcription_specs(&self) -> Vec<String> {
        self.transcription
            .running
            .keys()
            .map(|s| s.to_string())
            .collect()
    }

    /// Feeds decoded PCM to every stream.
    pub(super) fn feed_transcription(&self, pcm: &Bytes) {
        for stream in self.transcription.running.values() {
            stream.probe.sent();
            stream.addr.do_send(StreamAudio(pcm.clone()));
        }
    }

    /// Passes the glasses' voice-activity state to every stream.
    pub(super) fn transcription_vad(&self, ev: &GlassesEvent) {
        if ev.kind != "VAD" {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(ev.json.get()) else {
            return;
        };
        let speaking = match &v["status"] {
            Value::Bool(b) => *b,
            Value::String(s) => s == "true",
            _ => return,
        };
        for stream in self.transcription.running.values() {
            stream.addr.do_send(StreamVad { speaking });
        }
    }

    /// Sends `tpa_connection_error` to every app subscribed to `spec`.
    fn tell_subscribers(&self, spec: &StreamSpec, code: &str, message: &str) {
        let text = outbound::tpa_connection_error(code, message, &now_iso());
        for entry in self.apps.values() {
            let Some(link) = &entry.link else { continue };
            if entry
                .subscriptions
                .iter()
                .any(|s| spec_of(&s.kind).as_ref() == Some(spec))
            {
                link.text(text.clone());
            }
        }
    }

    fn fan_out(&self, spec: &StreamSpec, data: &Value) {
        let Ok(raw) = RawValue::from_string(data.to_string()) else {
            return;
        };
        let ts = now_iso();
        for entry in self.apps.values() {
            let Some(link) = &entry.link else { continue };
            if entry.state != AppState::Running {
                continue;
            }
            for sub in &entry.subscriptions {
                if spec_of(&sub.kind).as_ref() == Some(spec) {
                    link.text(outbound::data_stream(
                        &entry.session_id,
                        &sub.raw,
                        &raw,
                        &ts,
                    ));
                }
            }
        }
    }
}

/// The `data` of a result's `data_stream` (protocol §5.4).
fn result_data(spec: &StreamSpec, event: &StreamEvent) -> Option<Value> {
    let StreamEvent::Transcript {
        transcript: t,
        start_ms,
        end_ms,
        provider,
    } = event
    else {
        return None;
    };
    // For `all-to-<lang>`: the language heard, when the provider says.
    let spoken = match (&t.detected_language, spec.detects_language()) {
        (Some(l), true) => l.as_str(),
        _ => spec.language.as_str(),
    };
    let mut data = match &spec.target {
        None => json!({
            "type": "transcription",
            "text": t.text,
            "isFinal": t.is_final,
            "startTime": start_ms,
            "endTime": end_ms,
            "transcribeLanguage": spoken,
            "provider": provider,
        }),
        Some(target) => json!({
            "type": "translation",
            "text": t.text,
            "originalText": t.original_text.clone().unwrap_or_default(),
            "isFinal": t.is_final,
            "startTime": start_ms,
            "endTime": end_ms,
            "transcribeLanguage": spoken,
            "translateLanguage": target,
            "didTranslate": !t.untranslated,
            "provider": provider,
        }),
    };
    if t.is_final {
        data["duration"] = json!(end_ms.saturating_sub(*start_ms));
    }
    if let Some(s) = &t.speaker {
        data["speakerId"] = json!(s);
    }
    if let Some(c) = t.confidence {
        data["confidence"] = json!(c);
    }
    Some(data)
}

impl Handler<StreamUpdate> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: StreamUpdate, _: &mut Context<Self>) {
        if self.transcription.running.contains_key(&msg.spec) {
            // A speech stream: its text also feeds the pairs translated from it.
            for (pair, relay) in &self.transcription.relays {
                if pair.source() == msg.spec {
                    relay.do_send(msg.clone());
                }
            }
        } else if !self.transcription.relays.contains_key(&msg.spec) {
            return; // a stream or relay that was stopped meanwhile
        }
        match &msg.event {
            StreamEvent::Failed { reason } => {
                self.tell_subscribers(
                    &msg.spec,
                    "TRANSCRIPTION_FAILED",
                    &format!("{} stopped: {reason}", msg.spec),
                );
            }
            event => {
                if let Some(data) = result_data(&msg.spec, event) {
                    self.fan_out(&msg.spec, &data);
                }
            }
        }
    }
}

/// The session's running transcription streams (as `transcription:<lang>`
/// or `translation:<src>-to-<tgt>`) with their addresses, for status pages
/// and tests.
#[derive(Message)]
#[rtype(result = "Vec<(String, Addr<TranscriptionStream>)>")]
pub struct TranscriptionStatus;

impl Handler<TranscriptionStatus> for UserSession {
    type Result = MessageResult<TranscriptionStatus>;

    fn handle(&mut self, _: TranscriptionStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.transcription
                .running
                .iter()
                .map(|(s, r)| (s.to_string(), r.addr.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_transcription::Transcript;

    #[test]
    fn transcription_data_has_the_fields_the_sdk_reads() {
        let spec = StreamSpec::transcription("en-US");
        let mut t = Transcript::new("hello", true);
        t.confidence = Some(0.5);
        let ev = StreamEvent::Transcript {
            transcript: t,
            start_ms: 100,
            end_ms: 900,
            provider: "vosk",
        };
        let d = result_data(&spec, &ev).unwrap();
        assert_eq!(d["type"], "transcription");
        assert_eq!(d["isFinal"], true);
        assert_eq!(d["startTime"], 100);
        assert_eq!(d["endTime"], 900);
        assert_eq!(d["duration"], 800);
        assert_eq!(d["transcribeLanguage"], "en-US");
    }

    #[test]
    fn translation_data_has_the_fields_the_sdk_reads() {
        let spec = StreamSpec::translation("all", "en-US");
        let mut t = Transcript::new("Good morning.", true);
        t.original_text = Some("Guten Morgen.".into());
        t.detected_language = Some("de".into());
        let ev = StreamEvent::Transcript {
            transcript: t.clone(),
            start_ms: 0,
            end_ms: 1200,
            provider: "vosk",
        };
        let d = result_data(&spec, &ev).unwrap();
        assert_eq!(d["type"], "translation");
        assert_eq!(d["text"], "Good morning.");
        assert_eq!(d["originalText"], "Guten Morgen.");
        assert_eq!(d["transcribeLanguage"], "de");
        assert_eq!(d["translateLanguage"], "en-US");
        assert_eq!(d["didTranslate"], true);
        assert_eq!(d["duration"], 1200);
        t.untranslated = true;
        let ev = StreamEvent::Transcript {
            transcript: t,
            start_ms: 0,
            end_ms: 1200,
            provider: "vosk",
        };
        let d = result_data(&StreamSpec::translation("de-DE", "en-US"), &ev).unwrap();
        assert_eq!(d["didTranslate"], false);
        assert_eq!(d["transcribeLanguage"], "de-DE");
    }

    #[test]
    fn pairs_are_routed_to_the_provider_or_the_translator() {
        let vosk = sightline_transcription::vosk::Vosk::new("ws://x".into());
        let to_en = StreamSpec::translation("es-ES", "en-US");
        let to_es = StreamSpec::translation("en-US", "es-ES");
        assert_eq!(route(&vosk, false, &to_en), Route::Speech);
        assert_eq!(route(&vosk, true, &to_en), Route::Speech);
        assert_eq!(route(&vosk, true, &to_es), Route::Relay);
        assert_eq!(route(&vosk, false, &to_es), Route::Unsupported);
        let deepgram =
            sightline_transcription::deepgram::Deepgram::new("wss://x".into(), "k".into());
        assert_eq!(route(&deepgram, true, &to_en), Route::Relay);
        assert_eq!(route(&deepgram, false, &to_en), Route::Unsupported);
        assert_eq!(
            route(&deepgram, false, &StreamSpec::transcription("en-US")),
            Route::Speech
        );
        assert_eq!(to_es.source(), StreamSpec::transcription("en-US"));
    }

    #[test]
    fn subscriptions_map_to_streams() {
        use sightline_protocol::stream::Subscription;
        let s = |x: &str| spec_of(&Subscription::parse(x).kind);
        assert_eq!(
            s("transcription:en-US?hints=ja"),
            Some(StreamSpec::transcription("en-US"))
        );
        assert_eq!(s("transcription"), Some(StreamSpec::transcription("en-US")));
        assert_eq!(
            s("translation:es-ES-to-en-US"),
            Some(StreamSpec::translation("es-ES", "en-US"))
        );
        assert_eq!(s("audio_chunk"), None);
    }
}
