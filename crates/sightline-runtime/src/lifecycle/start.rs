//! Starting an app: the intent, the lookup, the `session_request` webhook
//! with its retries, and the start timeout.

use std::time::Instant;

use backoff::backoff::Backoff;
use sightline_protocol::webhook::StopReason;
use sightline_store::{AppRecord, AppType};

use super::{
    AppLink, AppState, AppTable, Count, Effect, Effects, Timer, TimerKind, MAX_STARTS_UNDER_WAY,
};

impl<L: AppLink> AppTable<L> {
    /// The user (or the glasses coming back with persisted apps) asks for
    /// `package` to start.
    pub fn start(&mut self, _now: Instant, package: &str) -> Effects<L> {
        if self.apps.contains_key(package) || self.lookups.contains_key(package) {
            return vec![Effect::AppStates { error: None }];
        }
        if self.pending_stops.contains(package) {
            tracing::debug!(user = %self.user_id, package, "start waits for the app's stop webhook");
            self.deferred_starts.insert(package.to_string());
            return Vec::new();
        }
        if self.lookups.len() >= MAX_STARTS_UNDER_WAY {
            tracing::warn!(user = %self.user_id, package, "too many app starts under way; start refused");
            return vec![Effect::AppStates {
                error: Some(format!(
                    "App {package} not started: {MAX_STARTS_UNDER_WAY} starts are already under way"
                )),
            }];
        }
        let intent = self.next_generation();
        self.lookups.insert(package.to_string(), intent);
        vec![Effect::LookUp {
            package: package.to_string(),
            intent,
        }]
    }

    /// The store answered the lookup of a start. A stop that came in the
    /// meantime removed the lookup: the answer then does nothing.
    pub fn looked_up(
        &mut self,
        now: Instant,
        package: &str,
        intent: u64,
        found: Result<Option<AppRecord>, String>,
    ) -> Effects<L> {
        if self.lookups.get(package) != Some(&intent) {
            return Vec::new(); // a stop came after this start
        }
        self.lookups.remove(package);
        let record = match found {
            Ok(Some(r)) => r,
            Ok(None) => {
                tracing::warn!(user = %self.user_id, package, "start of an unknown app refused");
                return vec![
                    Effect::Persist {
                        package: package.to_string(),
                        running: false,
                    },
                    Effect::AppStates {
                        error: Some(format!("App {package} is not registered")),
                    },
                ];
            }
            Err(e) => {
                tracing::error!(user = %self.user_id, package, error = %e, "app lookup failed");
                return vec![Effect::AppStates {
                    error: Some(format!("App {package} could not be started: {e}")),
                }];
            }
        };
        if self.apps.contains_key(package) {
            return Vec::new(); // connected meanwhile (the system dashboard)
        }
        let mut out = Vec::new();
        if record.app_type == AppType::Standard {
            let others: Vec<String> = self
                .apps
                .iter()
                .filter(|(p, e)| p.as_str() != package && e.record.app_type == AppType::Standard)
                .map(|(p, _)| p.clone())
                .collect();
            for other in others {
                tracing::info!(user = %self.user_id, package = %other, "stopping the running standard app for {package}");
                out.extend(self.stop(now, &other, StopReason::SystemStop));
            }
        }
        let app = self.new_app(record, AppState::Loading);
        tracing::info!(user = %self.user_id, package, correlation_id = %app.correlation_id, "starting app");
        out.push(Effect::ScreenStarted {
            package: package.to_string(),
            name: app.record.name.clone(),
            app_type: app.record.app_type,
        });
        self.apps.insert(package.to_string(), app);
        out.push(Effect::Persist {
            package: package.to_string(),
            running: true,
        });
        out.extend(self.launch(now, package));
        out.push(Effect::AppStates { error: None });
        out
    }

    /// Puts an app into Loading: arms the start timeout and sends the
    /// session webhook.
    pub(super) fn launch(&mut self, now: Instant, package: &str) -> Effects<L> {
        let generation = self.next_generation();
        let backoff = self.new_backoff();
        let timeout = self.config.start_timeout;
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        app.state = AppState::Loading;
        app.generation = generation;
        app.backoff = Some(backoff);
        app.launched_at.get_or_insert(now);
        vec![
            Effect::Arm {
                at: now + timeout,
                timer: Timer {
                    package: package.to_string(),
                    generation,
                    kind: TimerKind::StartTimeout,
                },
            },
            Effect::PostSessionRequest {
                package: package.to_string(),
                generation,
                target: app.target(),
            },
        ]
    }

    /// A `session_request` was answered. A failure is retried with backoff
    /// while the app is still loading the same launch and the start timeout
    /// leaves room; an answer for an app that moved on does nothing (the
    /// SDK answers only after connecting, so a late failure must never
    /// unload a running app).
    pub fn webhook_answered(
        &mut self,
        now: Instant,
        package: &str,
        generation: u64,
        result: Result<(), String>,
    ) -> Effects<L> {
        let user = self.user_id.clone();
        let timeout = self.config.start_timeout;
        let Some(app) = self.apps.get_mut(package) else {
            return Vec::new();
        };
        if app.generation != generation || app.state != AppState::Loading {
            return Vec::new();
        }
        let Err(err) = result else {
            return Vec::new();
        };
        let deadline = app.launched_at.map_or(now, |t| t + timeout);
        let delay = app
            .backoff
            .as_mut()
            .and_then(|b| b.next_backoff())
            .filter(|d| now + *d < deadline);
        match delay {
            Some(delay) => {
                tracing::warn!(user = %user, package, correlation_id = %app.correlation_id, error = %err, retry_in_ms = delay.as_millis() as u64, "session webhook failed; retrying");
                vec![Effect::Arm {
                    at: now + delay,
                    timer: Timer {
                        package: package.to_string(),
                        generation,
                        kind: TimerKind::RetryWebhook,
                    },
                }]
            }
            None => {
                tracing::warn!(user = %user, package, correlation_id = %app.correlation_id, error = %err, "session webhook failed; no more retries before the start timeout");
                Vec::new()
            }
        }
    }

    /// A timer the table armed fired. One armed for a generation the app
    /// has left does nothing.
    pub fn timer_fired(&mut self, now: Instant, timer: &Timer) -> Effects<L> {
        let current = self
            .apps
            .get(&timer.package)
            .is_some_and(|a| a.generation == timer.generation);
        if !current {
            return Vec::new();
        }
        match timer.kind {
            TimerKind::StartTimeout => self.start_timed_out(&timer.package),
            TimerKind::RetryWebhook => self.retry_webhook(&timer.package),
            TimerKind::ReconnectGrace => self.grace_expired(now, &timer.package),
        }
    }

    fn retry_webhook(&mut self, package: &str) -> Effects<L> {
        match self.apps.get(package) {
            Some(app) if app.state == AppState::Loading => vec![Effect::PostSessionRequest {
                package: package.to_string(),
                generation: app.generation,
                target: app.target(),
            }],
            _ => Vec::new(),
        }
    }

    fn start_timed_out(&mut self, package: &str) -> Effects<L> {
        if self.apps.get(package).map(|a| a.state) != Some(AppState::Loading) {
            return Vec::new();
        }
        tracing::warn!(user = %self.user_id, package, "app did not connect in time; start abandoned");
        let dropped = self
            .apps
            .remove(package)
            .and_then(|a| a.replay)
            .map_or(0, |r| r.len());
        vec![
            Effect::Count(Count::Dropped(dropped as u64)),
            Effect::Persist {
                package: package.to_string(),
                running: false,
            },
            Effect::ScreenStopped {
                package: package.to_string(),
            },
            Effect::AppStates {
                error: Some(format!(
                    "App {package} did not connect within {} ms",
                    self.config.start_timeout.as_millis()
                )),
            },
            Effect::MicrophoneMayChange,
        ]
    }
}
