//! What one instance of a cluster hands the next when a user's session
//! moves between them: every app of the session with its subscriptions and
//! the events kept for it, and what the glasses' main view shows.
//!
//! The old owner builds it from its session ([`crate::session::HandOver`]),
//! the new owner opens the user's session from it
//! ([`crate::session::AdoptHandoff`]): each app is started again with a
//! fresh `session_request` naming the new owner, its subscriptions already
//! in place, so events that arrive before the app has subscribed again are
//! kept for it and delivered in order once it has (no event is lost across
//! the move). It is plain data, serialised as JSON between instances.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sightline_store::AppRecord;

/// The kept events a hand-off carries at most, in bytes over all apps (it
/// travels as one NATS message, whose default limit is 1 MiB). The oldest
/// go first and are counted as dropped.
pub const MAX_HANDOFF_KEPT_BYTES: usize = 768 * 1024;

/// A user's session on its way to another instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub user_id: String,
    pub apps: Vec<AppHandoff>,
    /// What an app had on the main view, if it is still worth showing.
    pub display: Option<DisplayHandoff>,
    /// Kept events left out to fit [`MAX_HANDOFF_KEPT_BYTES`].
    pub dropped: u64,
}

/// One app of the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppHandoff {
    pub record: AppRecord,
    /// The app's subscription strings, as it sent them.
    pub subscriptions: Vec<String>,
    /// Events kept for the app and not delivered yet, oldest first.
    pub kept: Vec<KeptEvent>,
}

/// One undelivered `data_stream`, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptEvent {
    pub stream_type: String,
    pub text: String,
}

/// An app's display on the main view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayHandoff {
    pub package: String,
    pub view: String,
    pub layout: Map<String, Value>,
    pub duration_ms: Option<u64>,
    pub force_display: bool,
}

impl Handoff {
    /// Keeps the kept events within [`MAX_HANDOFF_KEPT_BYTES`], dropping
    /// the oldest of each app first (apps in turn).
    pub fn bound(&mut self) {
        let mut total: usize = self
            .apps
            .iter()
            .flat_map(|a| a.kept.iter())
            .map(|e| e.text.len() + e.stream_type.len())
            .sum();
        while total > MAX_HANDOFF_KEPT_BYTES {
            let Some(app) = self.apps.iter_mut().max_by_key(|a| a.kept.len()) else {
                break;
            };
            if app.kept.is_empty() {
                break;
            }
            let old = app.kept.remove(0);
            total -= old.text.len() + old.stream_type.len();
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(package: &str, events: usize, size: usize) -> AppHandoff {
        AppHandoff {
            record: AppRecord {
                package_name: package.into(),
                name: package.into(),
                description: String::new(),
                public_url: "http://localhost".into(),
                hashed_api_key: String::new(),
                app_type: sightline_store::AppType::Standard,
                permissions: Vec::new(),
                settings_schema: Vec::new(),
                logo_url: None,
            },
            subscriptions: vec!["transcription:en-US".into()],
            kept: (0..events)
                .map(|i| KeptEvent {
                    stream_type: "t".into(),
                    text: format!("{i:0size$}"),
                })
                .collect(),
        }
    }

    #[test]
    fn a_handoff_over_the_limit_drops_its_oldest_events() {
        let mut h = Handoff {
            user_id: "u".into(),
            apps: vec![app("a", 1000, 1023), app("b", 10, 100)],
            ..Handoff::default()
        };
        h.bound();
        let kept: usize = h
            .apps
            .iter()
            .flat_map(|a| &a.kept)
            .map(|e| e.text.len() + 1)
            .sum();
        assert!(kept <= MAX_HANDOFF_KEPT_BYTES);
        assert_eq!(h.dropped, 1000 + 10 - h.apps[0].kept.len() as u64 - 10);
        // The newest survive, in order.
        let last = h.apps[0].kept.last().map(|e| e.text.clone());
        assert_eq!(last, Some(format!("{:01023}", 999)));
        assert_eq!(h.apps[1].kept.len(), 10);
    }

    #[test]
    fn a_handoff_travels_as_json() {
        let h = Handoff {
            user_id: "u@example.com".into(),
            apps: vec![app("a", 2, 4)],
            display: Some(DisplayHandoff {
                package: "a".into(),
                view: "main".into(),
                layout: Map::new(),
                duration_ms: None,
                force_display: false,
            }),
            dropped: 0,
        };
        let back: Handoff = serde_json::from_slice(&serde_json::to_vec(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
