//! Subscriptions and the exact-match rule for `data_stream`.
//!
//! An app subscribes with a list of strings (or `{stream, rate}` objects).
//! The SDK delivers a `data_stream` only when its `streamType` is *identical*
//! to one of the app's handler keys, so Sightline never invents a stream type:
//! it finds the subscription strings of each app that match an event and
//! sends one message per string, with that string as `streamType`.
//!
//! Parsing never fails: an unknown string is kept as an event subscription
//! and simply never matches anything the glasses do not send.

use serde::{Deserialize, Serialize};

/// The longest subscription string Sightline keeps; longer ones are cut off
/// from matching (they can only be noise).
pub const MAX_SUBSCRIPTION_LEN: usize = 256;

/// One entry of a `subscription_update` list as it arrives on the wire.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SubscriptionItem {
    Name(String),
    Rate {
        stream: String,
        #[serde(default)]
        rate: Option<String>,
    },
    /// Anything else (a number, a nested list): kept so that the update is
    /// still applied, but it matches nothing.
    Other(serde_json::Value),
}

impl SubscriptionItem {
    /// The entry a JSON value is, exactly as deserialising it would decide
    /// (a string, a `{stream, rate}` object, or anything else), without
    /// copying it: a long list costs one pass.
    pub fn from_value(v: serde_json::Value) -> SubscriptionItem {
        use serde_json::Value;
        let Value::Object(obj) = &v else {
            return match v {
                Value::String(s) => SubscriptionItem::Name(s),
                other => SubscriptionItem::Other(other),
            };
        };
        let rate = match obj.get("rate") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) => Some(r.clone()),
            Some(_) => return SubscriptionItem::Other(v),
        };
        match obj.get("stream") {
            Some(Value::String(stream)) => SubscriptionItem::Rate {
                stream: stream.clone(),
                rate,
            },
            _ => SubscriptionItem::Other(v),
        }
    }
}

/// What a subscription asks for, decoded from its string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamKind {
    /// `all` or `*`: every glasses event.
    All,
    /// `transcription:<lang>[?query]`; a bare `transcription` means `en-US`.
    Transcription { language: String },
    /// `translation:<src>-to-<tgt>[?query]`.
    Translation { source: String, target: String },
    /// `touch_event` (no gesture) or `touch_event:<gesture>`.
    Touch { gesture: Option<String> },
    /// `audio_chunk`: raw audio as binary frames.
    AudioChunk,
    /// Any other event type, matched by name (with the documented aliases).
    Event(String),
    /// An entry that is not a string: matches nothing.
    Invalid,
}

/// A subscription: the exact string the app sent and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The string to echo back as `streamType`.
    pub raw: String,
    pub kind: StreamKind,
    /// The `rate` of a `{stream, rate}` object, if one was given.
    pub rate: Option<String>,
}

impl Subscription {
    /// Decodes one wire entry. Never fails.
    pub fn from_item(item: &SubscriptionItem) -> Subscription {
        match item {
            SubscriptionItem::Name(s) => Subscription::parse(s),
            SubscriptionItem::Rate { stream, rate } => Subscription {
                rate: rate.clone(),
                ..Subscription::parse(stream)
            },
            SubscriptionItem::Other(v) => Subscription {
                raw: truncate(&v.to_string()).to_string(),
                kind: StreamKind::Invalid,
                rate: None,
            },
        }
    }

    /// Decodes a subscription string. Never fails.
    pub fn parse(s: &str) -> Subscription {
        let raw = truncate(s).to_string();
        let base = raw.split('?').next().unwrap_or_default();
        let kind = match base {
            "all" | "*" => StreamKind::All,
            "audio_chunk" => StreamKind::AudioChunk,
            "transcription" => StreamKind::Transcription {
                language: "en-US".into(),
            },
            "touch_event" => StreamKind::Touch { gesture: None },
            "location_stream" => StreamKind::Event("location_update".into()),
            _ => {
                if let Some(lang) = base.strip_prefix("transcription:") {
                    StreamKind::Transcription {
                        language: lang.to_string(),
                    }
                } else if let Some(pair) = base.strip_prefix("translation:") {
                    match pair.split_once("-to-") {
                        Some((src, tgt)) => StreamKind::Translation {
                            source: src.to_string(),
                            target: tgt.to_string(),
                        },
                        None => StreamKind::Event(base.to_string()),
                    }
                } else if let Some(g) = base.strip_prefix("touch_event:") {
                    StreamKind::Touch {
                        gesture: Some(g.to_string()),
                    }
                } else {
                    StreamKind::Event(base.to_string())
                }
            }
        };
        Subscription {
            raw,
            kind,
            rate: None,
        }
    }

    /// Does this subscription want a glasses event of type `event_type`?
    /// `gesture` is the `gesture_name` of a touch event.
    pub fn matches_event(&self, event_type: &str, gesture: Option<&str>) -> bool {
        match &self.kind {
            StreamKind::All => true,
            StreamKind::Touch { gesture: want } => {
                event_type == "touch_event"
                    && match want {
                        None => true,
                        Some(w) => gesture == Some(w.as_str()),
                    }
            }
            StreamKind::Event(name) => canonical_event(name) == canonical_event(event_type),
            _ => false,
        }
    }

    /// Does this subscription want transcripts in `language`?
    pub fn matches_transcription(&self, language: &str) -> bool {
        matches!(&self.kind, StreamKind::Transcription { language: l } if l == language)
    }

    /// Does this subscription need raw audio from the microphone?
    pub fn needs_audio(&self) -> bool {
        matches!(self.kind, StreamKind::AudioChunk)
    }

    /// The permission an app must hold for this stream, if any
    /// (protocol.md §5.3).
    pub fn required_permission(&self) -> Option<&'static str> {
        match &self.kind {
            StreamKind::Transcription { .. } | StreamKind::Translation { .. } => Some("MICROPHONE"),
            StreamKind::AudioChunk => Some("MICROPHONE"),
            StreamKind::Event(name) => match canonical_event(name) {
                "VAD" => Some("MICROPHONE"),
                "location_update" | "location_stream" => Some("LOCATION"),
                "phone_notification" | "phone_notification_dismissed" => Some("READ_NOTIFICATIONS"),
                "calendar_event" => Some("CALENDAR"),
                _ => None,
            },
            _ => None,
        }
    }

    /// Does this subscription need speech recognition?
    pub fn needs_transcription(&self) -> bool {
        matches!(
            self.kind,
            StreamKind::Transcription { .. } | StreamKind::Translation { .. }
        )
    }
}

/// Whether a set of granted permission types covers `required`: `ALL`
/// grants everything, and the legacy `NOTIFICATIONS` implies
/// `READ_NOTIFICATIONS`.
pub fn permission_granted(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| {
        g == "ALL" || g == required || (required == "READ_NOTIFICATIONS" && g == "NOTIFICATIONS")
    })
}

/// Folds the names that mean the same event on the wire: the phone's
/// lowercase `vad`, and the older `notification_dismissed`.
pub fn canonical_event(name: &str) -> &str {
    match name {
        "vad" => "VAD",
        "notification_dismissed" => "phone_notification_dismissed",
        other => other,
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_SUBSCRIPTION_LEN {
        return s;
    }
    let mut end = MAX_SUBSCRIPTION_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A whole subscription list, decoded: each distinct string once, in the
/// order the app sent them, and at most `max` of them.
///
/// Linear in the list's length (distinct strings are found with a hash
/// set), so a hostile list costs the session no more than reading it.
pub fn parse_list(items: &[SubscriptionItem], max: usize) -> ParsedList {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut out = ParsedList::default();
    for item in items {
        if out.subscriptions.len() == max {
            // Full: what is left is only counted, by the string it would
            // echo, without decoding it.
            let other;
            let raw = match item {
                SubscriptionItem::Name(s) => truncate(s),
                SubscriptionItem::Rate { stream, .. } => truncate(stream),
                SubscriptionItem::Other(v) => {
                    other = v.to_string();
                    truncate(&other)
                }
            };
            if !seen.contains(raw) {
                seen.insert(raw.to_string());
                out.over_limit += 1;
            }
            continue;
        }
        let sub = Subscription::from_item(item);
        if !seen.insert(sub.raw.clone()) {
            continue;
        }
        out.subscriptions.push(sub);
    }
    out
}

/// What [`parse_list`] made of a list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedList {
    /// The distinct subscriptions kept, in the order sent.
    pub subscriptions: Vec<Subscription>,
    /// Distinct entries left out because the list had more than allowed.
    pub over_limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcription_keeps_the_exact_string() {
        let s = Subscription::parse("transcription:en-US?hints=ja,fr");
        assert_eq!(s.raw, "transcription:en-US?hints=ja,fr");
        assert!(s.matches_transcription("en-US"));
        assert!(!s.matches_transcription("fr-FR"));
        assert!(s.needs_transcription());
        assert!(Subscription::parse("transcription").matches_transcription("en-US"));
    }

    #[test]
    fn translation_pair() {
        let s = Subscription::parse("translation:all-to-es-ES");
        assert_eq!(
            s.kind,
            StreamKind::Translation {
                source: "all".into(),
                target: "es-ES".into()
            }
        );
    }

    #[test]
    fn touch_gestures() {
        let any = Subscription::parse("touch_event");
        let dbl = Subscription::parse("touch_event:double_tap");
        assert!(any.matches_event("touch_event", Some("single_tap")));
        assert!(dbl.matches_event("touch_event", Some("double_tap")));
        assert!(!dbl.matches_event("touch_event", Some("single_tap")));
        assert!(!dbl.matches_event("button_press", None));
    }

    #[test]
    fn events_match_by_name_and_alias() {
        assert!(Subscription::parse("button_press").matches_event("button_press", None));
        assert!(!Subscription::parse("button_press").matches_event("head_position", None));
        assert!(Subscription::parse("VAD").matches_event("vad", None));
        assert!(Subscription::parse("phone_notification_dismissed")
            .matches_event("notification_dismissed", None));
        assert!(Subscription::parse("*").matches_event("anything_new", None));
        assert!(Subscription::parse("some_future_event").matches_event("some_future_event", None));
    }

    #[test]
    fn rate_objects_and_garbage_are_accepted() {
        let items: Vec<SubscriptionItem> = serde_json::from_str(
            r#"["button_press", {"stream":"location_stream","rate":"high"}, 42, "button_press"]"#,
        )
        .unwrap();
        let subs = parse_list(&items, 100).subscriptions;
        assert_eq!(subs.len(), 3);
        assert!(subs[1].matches_event("location_update", None));
        assert_eq!(subs[1].rate.as_deref(), Some("high"));
        assert_eq!(subs[2].kind, StreamKind::Invalid);
    }

    #[test]
    fn a_list_keeps_at_most_max_distinct_entries() {
        let items: Vec<SubscriptionItem> = (0..10)
            .flat_map(|n| {
                let name = SubscriptionItem::Name(format!("button_press?{n}"));
                [name.clone(), name]
            })
            .collect();
        let parsed = parse_list(&items, 4);
        let raws: Vec<&str> = parsed
            .subscriptions
            .iter()
            .map(|s| s.raw.as_str())
            .collect();
        assert_eq!(
            raws,
            [
                "button_press?0",
                "button_press?1",
                "button_press?2",
                "button_press?3"
            ]
        );
        assert_eq!(parsed.over_limit, 6, "duplicates are not counted as over");
    }

    /// 100 000 distinct entries are decoded in linear time: well under a
    /// second even in a debug build (the quadratic version took minutes).
    #[test]
    fn a_huge_list_is_decoded_in_linear_time() {
        let items: Vec<SubscriptionItem> = (0..100_000)
            .map(|n| SubscriptionItem::Name(format!("stream_{n}")))
            .collect();
        let started = std::time::Instant::now();
        let parsed = parse_list(&items, usize::MAX);
        assert_eq!(parsed.subscriptions.len(), 100_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn permissions_per_stream() {
        let need = |s: &str| Subscription::parse(s).required_permission();
        assert_eq!(need("transcription:en-US?hints=x"), Some("MICROPHONE"));
        assert_eq!(need("translation:es-ES-to-en-US"), Some("MICROPHONE"));
        assert_eq!(need("audio_chunk"), Some("MICROPHONE"));
        assert_eq!(need("vad"), Some("MICROPHONE"));
        assert_eq!(need("location_stream"), Some("LOCATION"));
        assert_eq!(need("notification_dismissed"), Some("READ_NOTIFICATIONS"));
        assert_eq!(need("calendar_event"), Some("CALENDAR"));
        assert_eq!(need("button_press"), None);
        let granted = vec!["NOTIFICATIONS".to_string()];
        assert!(permission_granted(&granted, "READ_NOTIFICATIONS"));
        assert!(!permission_granted(&granted, "MICROPHONE"));
        assert!(permission_granted(&["ALL".to_string()], "CALENDAR"));
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary() {
        let s = "é".repeat(300);
        let sub = Subscription::parse(&s);
        assert!(sub.raw.len() <= MAX_SUBSCRIPTION_LEN);
    }
}
