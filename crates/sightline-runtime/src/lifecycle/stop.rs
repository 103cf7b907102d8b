//! Stopping apps: a user's stop, the answer to a `stop_request`, and the
//! end of the whole session.

use std::time::Instant;

use sightline_protocol::outbound;
use sightline_protocol::webhook::StopReason;

use super::{AfterStop, AppLink, AppState, AppTable, Count, Effect, Effects};
use crate::link::close;
use crate::now_iso;

impl<L: AppLink> AppTable<L> {
    /// Stops an app: `stop_request` to its server, `app_stopped` and a 1000
    /// "App stopped" close to its socket. A start of the same app that has
    /// not reached the app server yet (its lookup under way, or waiting for
    /// an earlier stop) is cancelled instead: the later intent wins.
    pub fn stop(&mut self, _now: Instant, package: &str, reason: StopReason) -> Effects<L> {
        let Some(app) = self.apps.remove(package) else {
            let looking_up = self.lookups.remove(package).is_some();
            let mut out = Vec::new();
            if looking_up || self.deferred_starts.remove(package) {
                tracing::info!(user = %self.user_id, package, "start cancelled by a stop before the app server was contacted");
                out.push(Effect::Persist {
                    package: package.to_string(),
                    running: false,
                });
            }
            out.push(Effect::AppStates { error: None });
            return out;
        };
        tracing::info!(user = %self.user_id, package, reason = reason.as_str(), "app stopped");
        // A start of the same app waits for this call to be answered: a
        // stop_request arriving after the new session_request would make
        // the SDK drop the new session.
        self.pending_stops.insert(package.to_string());
        let mut out = vec![Effect::PostStopRequest {
            package: package.to_string(),
            target: app.target(),
            reason,
            then: AfterStop::Release,
        }];
        let kept = app.replay.as_ref().map_or(0, |r| r.len() as u64);
        out.push(Effect::Count(Count::Dropped(kept)));
        if let Some(link) = app.link {
            out.push(Effect::Unwatch { id: link.id() });
            out.push(Effect::Send {
                link: link.clone(),
                text: outbound::app_stopped(reason.as_str(), &now_iso()),
            });
            out.push(Effect::Close {
                link,
                code: close::NORMAL,
                reason: "App stopped",
            });
        }
        out.extend([
            Effect::Persist {
                package: package.to_string(),
                running: false,
            },
            Effect::ScreenStopped {
                package: package.to_string(),
            },
            Effect::AppStates { error: None },
            Effect::MicrophoneMayChange,
        ]);
        out
    }

    /// A `stop_request` was answered or failed (the app is stopped either
    /// way).
    pub fn stop_answered(&mut self, now: Instant, package: &str, then: &AfterStop) -> Effects<L> {
        match *then {
            AfterStop::Release => {
                self.pending_stops.remove(package);
                if self.deferred_starts.remove(package) {
                    self.start(now, package)
                } else {
                    Vec::new()
                }
            }
            AfterStop::Relaunch { generation } => {
                let waiting = self.apps.get(package).is_some_and(|a| {
                    a.generation == generation && a.state == AppState::Reconnecting
                });
                if !waiting {
                    return Vec::new();
                }
                let mut out = self.launch(now, package);
                out.push(Effect::AppStates { error: None });
                out
            }
        }
    }

    /// Ends the session: every app hears "User session ended" (no stop
    /// webhooks: the apps restart when the user returns).
    pub fn dispose(&mut self) -> Effects<L> {
        tracing::info!(user = %self.user_id, apps = self.apps.len(), "user session ending");
        let mut out = Vec::new();
        for app in std::mem::take(&mut self.apps).into_values() {
            if let Some(link) = app.link {
                out.push(Effect::Send {
                    link: link.clone(),
                    text: outbound::app_stopped("user_session_ended", &now_iso()),
                });
                out.push(Effect::Close {
                    link,
                    code: close::NORMAL,
                    reason: "User session ended",
                });
            }
        }
        self.lookups.clear();
        self.deferred_starts.clear();
        out
    }
}
