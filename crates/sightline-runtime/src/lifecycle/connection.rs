//! An app's connection: accepted, lost, waited for, restarted; what it
//! subscribes to; and the events kept for it while it is away.

use std::time::Instant;

use sightline_protocol::outbound::{self, PermissionDenied};
use sightline_protocol::stream::{parse_list, permission_granted, SubscriptionItem};
use sightline_protocol::webhook::StopReason;
use sightline_store::AppRecord;

use super::replay::ReplayBuffer;
use super::{AfterStop, AppLink, AppState, AppTable, Count, Effect, Effects, Timer, TimerKind};
use crate::link::ConnectionId;
use crate::now_iso;

impl<L: AppLink> AppTable<L> {
    /// An app connection whose API key was checked asks to be bound to its
    /// app. The system dashboard is taken in without a start.
    pub fn connected(&mut self, now: Instant, record: AppRecord, link: L) -> Effects<L> {
        let package = record.package_name.clone();
        if package == self.config.dashboard_package && !self.apps.contains_key(&package) {
            tracing::info!(user = %self.user_id, "system dashboard app connected");
            let app = self.new_app(record, AppState::Loading);
            self.apps.insert(package.clone(), app);
        }
        let generation = self.next_generation();
        let user = self.user_id.clone();
        let Some(app) = self.apps.get_mut(&package) else {
            tracing::warn!(user = %user, package = %package, "app connected but was not started");
            return vec![Effect::Reject {
                link,
                code: "APP_NOT_STARTED",
                message: "App not started for this session".into(),
            }];
        };
        let mut out = Vec::new();
        let replaced = app
            .link
            .replace(link.clone())
            .filter(|old| old.id() != link.id());
        if let Some(old) = &replaced {
            out.push(Effect::Supersede { link: old.clone() });
        }
        let was = app.state;
        app.state = AppState::Running;
        app.generation = generation;
        app.connected_at = Some(now);
        app.ownership_released = false;
        tracing::info!(user = %user, package = %package, connection = %link.id(), was = was.as_str(), correlation_id = %app.correlation_id, "app connected");
        out.push(Effect::Accept {
            package: package.clone(),
            link: link.clone(),
        });
        if let Some(launched) = app.launched_at.take() {
            out.push(Effect::Count(Count::StartTook(
                now.saturating_duration_since(launched),
            )));
        }
        if was == AppState::Loading {
            app.resurrections = 0;
            app.replay_after_subscribe =
                app.handed_over || app.replay.as_ref().is_some_and(|r| !r.is_empty());
            app.handed_over = false;
        }
        if let Some(old) = replaced {
            out.push(Effect::Unwatch { id: old.id() });
        }
        out.push(Effect::Watch {
            package: package.clone(),
            link,
        });
        if matches!(was, AppState::Reconnecting | AppState::Dormant) {
            out.push(Effect::Count(Count::AppReconnected));
            out.extend(self.flush_replay(&package, false));
        }
        out.extend([
            Effect::ScreenBooted {
                package: package.clone(),
            },
            Effect::AppStates { error: None },
            Effect::MicrophoneMayChange,
        ]);
        out
    }

    /// An app's connection closed (or was found gone). An old socket of
    /// the app, already replaced, changes nothing. Otherwise the app waits
    /// for the SDK to reconnect, keeping its events.
    pub fn disconnected(
        &mut self,
        now: Instant,
        package: &str,
        id: ConnectionId,
        code: Option<u16>,
    ) -> Effects<L> {
        let glasses_here = self.glasses_here;
        let (max_events, max_bytes) = (self.config.replay_max_events, self.config.replay_max_bytes);
        let grace = self.config.reconnect_grace;
        let current = self
            .apps
            .get(package)
            .and_then(|a| a.link.as_ref())
            .is_some_and(|l| l.id() == id);
        if !current {
            return Vec::new();
        }
        let generation = self.next_generation();
        let user = self.user_id.clone();
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        app.link = None;
        app.generation = generation;
        app.state = AppState::Reconnecting;
        app.replay
            .get_or_insert_with(|| ReplayBuffer::new(max_events, max_bytes));
        tracing::info!(user = %user, package, ?code, released = app.ownership_released, glasses_here, "app connection lost; waiting for it to reconnect");
        vec![
            Effect::Unwatch { id },
            Effect::Arm {
                at: now + grace,
                timer: Timer {
                    package: package.to_string(),
                    generation,
                    kind: TimerKind::ReconnectGrace,
                },
            },
        ]
    }

    /// The reconnect grace ran out: the app is declared stopped, made
    /// dormant until the glasses return, or restarted.
    pub(super) fn grace_expired(&mut self, now: Instant, package: &str) -> Effects<L> {
        let max = self.config.max_resurrections;
        let is_dashboard = package == self.config.dashboard_package;
        let glasses_here = self.glasses_here;
        let user = self.user_id.clone();
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        if app.state != AppState::Reconnecting {
            return Vec::new();
        }
        if app.ownership_released || is_dashboard || app.resurrections >= max {
            let why = if app.ownership_released {
                "it released its session"
            } else if is_dashboard {
                "the system dashboard app is never restarted by Sightline"
            } else {
                "it could not be restarted"
            };
            tracing::warn!(user = %user, package, "app did not reconnect and {why}; marking it stopped");
            let lost = app.replay.as_ref().map_or(0, |r| r.len() as u64);
            self.apps.remove(package);
            return vec![
                Effect::Count(Count::Dropped(lost)),
                Effect::Persist {
                    package: package.to_string(),
                    running: false,
                },
                Effect::ScreenStopped {
                    package: package.to_string(),
                },
                Effect::AppStates {
                    error: Some(format!("App {package} stopped: {why}")),
                },
                Effect::MicrophoneMayChange,
            ];
        }
        if !glasses_here {
            app.state = AppState::Dormant;
            tracing::info!(user = %user, package, "app is dormant until the glasses return");
            return Vec::new();
        }
        self.resurrect(now, package)
    }

    /// Restarts an app that vanished: `stop_request` first, and only once
    /// it has been answered a fresh `session_request` (the SDK looks its
    /// sessions up by id, so a late stop would kill the new session).
    fn resurrect(&mut self, _now: Instant, package: &str) -> Effects<L> {
        let generation = self.next_generation();
        let user = self.user_id.clone();
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        app.resurrections += 1;
        app.generation = generation;
        app.state = AppState::Reconnecting;
        tracing::warn!(user = %user, package, attempt = app.resurrections, "resurrecting app");
        vec![
            Effect::Count(Count::Resurrected),
            Effect::PostStopRequest {
                package: package.to_string(),
                target: app.target(),
                reason: StopReason::Error,
                then: AfterStop::Relaunch { generation },
            },
        ]
    }

    /// The glasses connected: dormant apps are restarted.
    pub fn glasses_connected(&mut self, now: Instant) -> Effects<L> {
        self.glasses_here = true;
        let dormant: Vec<String> = self
            .apps
            .iter()
            .filter(|(_, a)| a.state == AppState::Dormant)
            .map(|(p, _)| p.clone())
            .collect();
        dormant
            .into_iter()
            .flat_map(|p| self.resurrect(now, &p))
            .collect()
    }

    /// The glasses went away: apps whose grace ends now become dormant.
    pub fn glasses_left(&mut self) {
        self.glasses_here = false;
    }

    /// The app announced (`ownership_release`) that its next close is
    /// deliberate.
    pub fn ownership_released(&mut self, package: &str, id: ConnectionId) {
        if let Some(app) = self.apps.get_mut(package) {
            if app.link.as_ref().is_some_and(|l| l.id() == id) {
                app.ownership_released = true;
            }
        }
    }

    /// The app's connection `id` sent a new subscription list. It replaces
    /// the old one, minus the streams the app has no permission for (one
    /// `permission_error` lists them) and past the per-app limit (one
    /// `SUBSCRIPTION_LIMIT` error). An empty list right after a reconnect
    /// is ignored, so a reconnect does not wipe the subscriptions.
    pub fn subscriptions_changed(
        &mut self,
        now: Instant,
        package: &str,
        id: ConnectionId,
        items: &[SubscriptionItem],
    ) -> Effects<L> {
        let guard = self.config.empty_subscription_guard;
        let max = self.config.max_subscriptions;
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        let Some(link) = app.link.clone().filter(|l| l.id() == id) else {
            return Vec::new();
        };
        let fresh = app
            .connected_at
            .is_some_and(|t| now.saturating_duration_since(t) < guard);
        if items.is_empty() && fresh && !app.subscriptions.is_empty() {
            tracing::debug!(
                package,
                "empty subscription update right after reconnect ignored"
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        let parsed = parse_list(items, max);
        if parsed.over_limit > 0 {
            tracing::info!(
                package,
                kept = max,
                left_out = parsed.over_limit,
                "subscription list over the limit"
            );
            out.push(Effect::Count(Count::SubscriptionsRefused));
            out.push(Effect::Send {
                link: link.clone(),
                text: outbound::tpa_connection_error(
                    "SUBSCRIPTION_LIMIT",
                    &format!(
                        "{} subscriptions left out: an app may hold at most {max} distinct subscriptions",
                        parsed.over_limit
                    ),
                    &now_iso(),
                ),
            });
        }
        let (allowed, denied): (Vec<_>, Vec<_>) =
            parsed.subscriptions.into_iter().partition(|sub| {
                sub.required_permission()
                    .is_none_or(|p| permission_granted(&app.record.permissions, p))
            });
        if !denied.is_empty() {
            let details: Vec<PermissionDenied> = denied
                .iter()
                .filter_map(|sub| {
                    let need = sub.required_permission()?;
                    Some(PermissionDenied {
                        stream: sub.raw.clone(),
                        required_permission: need.to_string(),
                        message: format!("{} needs the {need} permission", sub.raw),
                    })
                })
                .collect();
            tracing::info!(package, denied = ?details.iter().map(|d| &d.stream).collect::<Vec<_>>(), "subscriptions refused for missing permissions");
            out.push(Effect::Send {
                link,
                text: outbound::permission_error(&details, &now_iso()),
            });
        }
        app.subscriptions = allowed;
        tracing::debug!(package, subscriptions = ?app.subscriptions.iter().map(|s| &s.raw).collect::<Vec<_>>(), "subscriptions replaced");
        if app.replay_after_subscribe && !app.subscriptions.is_empty() {
            out.extend(self.flush_replay(package, true));
        }
        out.push(Effect::AppStates { error: None });
        out.push(Effect::MicrophoneMayChange);
        out
    }

    /// Sends an app the events kept while it was away, oldest first; with
    /// `subscribed_only`, only those its current subscriptions still ask
    /// for.
    fn flush_replay(&mut self, package: &str, subscribed_only: bool) -> Effects<L> {
        let user = self.user_id.clone();
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        app.replay_after_subscribe = false;
        let (Some(link), Some(mut replay)) = (app.link.clone(), app.replay.take()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut skipped = 0u64;
        for event in replay.drain() {
            let wanted =
                !subscribed_only || app.subscriptions.iter().any(|s| s.raw == event.stream_type);
            if wanted {
                out.push(Effect::Send {
                    link: link.clone(),
                    text: event.text,
                });
            } else {
                skipped += 1;
            }
        }
        let sent = out.len() as u64;
        if sent + skipped > 0 {
            tracing::info!(user = %user, package, replayed = sent, skipped, "events kept while the app was away delivered");
        }
        out.push(Effect::Count(Count::Replayed(sent)));
        out.push(Effect::Count(Count::Dropped(skipped)));
        out
    }
}
