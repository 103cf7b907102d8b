//! A session moving to another instance of a cluster: the table gives its
//! apps up without stopping them, and the new owner's table takes them in.

use std::time::Instant;

use sightline_protocol::stream::Subscription;

use super::replay::ReplayBuffer;
use super::{AppLink, AppState, AppTable, Effect, Effects};
use crate::handoff::{AppHandoff, KeptEvent};

impl<L: AppLink> AppTable<L> {
    /// Gives every app up for the move: their records, subscriptions and
    /// kept events, and the connections they still have here (left open:
    /// the SDK closes them itself once the new owner's `session_request`
    /// reaches it). No webhook, no persisting: the apps keep running.
    pub fn hand_off(&mut self) -> (Vec<AppHandoff>, Vec<L>) {
        let mut apps = Vec::new();
        let mut links = Vec::new();
        for (_, app) in std::mem::take(&mut self.apps) {
            if let Some(link) = app.link {
                links.push(link);
            }
            let kept = app
                .replay
                .map(|mut r| {
                    r.drain()
                        .into_iter()
                        .map(|b| KeptEvent {
                            stream_type: b.stream_type,
                            text: b.text,
                        })
                        .collect()
                })
                .unwrap_or_default();
            apps.push(AppHandoff {
                record: app.record,
                subscriptions: app.subscriptions.into_iter().map(|s| s.raw).collect(),
                kept,
            });
        }
        self.lookups.clear();
        self.deferred_starts.clear();
        (apps, links)
    }

    /// Takes in an app handed over by the previous owner: it is started
    /// again here (a fresh `session_request` naming this instance) with its
    /// subscriptions in place, and every event for it is kept — the ones it
    /// missed during the move first — until it has subscribed again.
    pub fn adopt(&mut self, now: Instant, handed: AppHandoff) -> Effects<L> {
        let package = handed.record.package_name.clone();
        if self.apps.contains_key(&package) || self.lookups.contains_key(&package) {
            return Vec::new();
        }
        let mut replay =
            ReplayBuffer::new(self.config.replay_max_events, self.config.replay_max_bytes);
        let mut dropped = 0;
        for event in handed.kept {
            dropped += replay.push(&event.stream_type, event.text);
        }
        let mut app = self.new_app(handed.record, AppState::Loading);
        app.subscriptions = handed
            .subscriptions
            .iter()
            .take(self.config.max_subscriptions)
            .map(|s| Subscription::parse(s))
            .collect();
        app.replay = Some(replay);
        app.handed_over = true;
        tracing::info!(user = %self.user_id, package = %package, subscriptions = app.subscriptions.len(), kept = app.replay.as_ref().map_or(0, |r| r.len()), "app handed over from the previous owner; starting it here");
        let mut out = vec![
            Effect::Count(super::Count::Dropped(dropped)),
            Effect::ScreenStarted {
                package: package.clone(),
                name: app.record.name.clone(),
                app_type: app.record.app_type,
            },
        ];
        self.apps.insert(package.clone(), app);
        out.extend(self.launch(now, &package));
        out.push(Effect::AppStates { error: None });
        out
    }
}

impl<L: AppLink> AppTable<L> {
    /// The app's socket reached another instance of the cluster (an SDK
    /// reconnecting to where the session used to be): unless it is
    /// connected here, the app gets a fresh `session_request` naming this
    /// instance.
    pub fn repoint(&mut self, now: Instant, package: &str) -> Effects<L> {
        match self.apps.get(package) {
            Some(app) if app.link.is_none() => {
                tracing::info!(user = %self.user_id, package, "app reached another instance; pointing it here");
                self.launch(now, package)
            }
            _ => Vec::new(),
        }
    }
}

impl<L: AppLink> AppTable<L> {
    /// A developer changed the app's registration (name, URL, permissions):
    /// the running app takes the new record, and subscriptions its
    /// permissions no longer cover are dropped.
    pub fn record_changed(&mut self, record: sightline_store::AppRecord) -> Effects<L> {
        let user = self.user_id.clone();
        let Some(app) = self.apps.get_mut(&record.package_name) else {
            return Vec::new();
        };
        let before = app.subscriptions.len();
        app.subscriptions.retain(|s| {
            s.required_permission().is_none_or(|p| {
                sightline_protocol::stream::permission_granted(&record.permissions, p)
            })
        });
        let dropped = before - app.subscriptions.len();
        tracing::info!(user = %user, package = %record.package_name, dropped_subscriptions = dropped, "app registration changed");
        app.record = record;
        vec![
            Effect::AppStates { error: None },
            Effect::MicrophoneMayChange,
        ]
    }
}
