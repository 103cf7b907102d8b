//! The life of every app in one user session, as a plain state machine.
//!
//! ```text
//!  start ─► (lookup) ─► Loading ──connected──► Running ──stop──► (gone)
//!                         │  ▲ webhook retried     │ socket lost
//!                         │  └──── resurrect ◄─────┤
//!          start timeout ─┘          Reconnecting ◄┘ (grace: the SDK retries)
//!                                     │ glasses away when the grace ends
//!                                     ▼
//!                                   Dormant ── glasses return ──► resurrect
//! ```
//!
//! [`AppTable`] owns each app's state, generation, link, subscriptions and
//! replay buffer, and the starts and stops under way. Every input — a start
//! or stop, a lookup or webhook answered, a timer fired, a connection that
//! came or went, a subscription list — takes the current time and returns
//! the [`Effect`]s the session must carry out, in order: webhooks to post,
//! timers to arm, messages to send, what to persist. The table does no I/O
//! and never sleeps, so every transition is tested without sockets
//! (`tests.rs`); the session actor (`session/apps.rs`) only carries effects
//! out and feeds the answers back.
//!
//! Every transition takes a new *generation* number; timers and webhook
//! answers carry the generation they were started for, and one that finds
//! the app moved on does nothing. Starts and stops are *intents*: a later
//! intent always wins over an earlier one still in flight (a stop cancels
//! a start whose lookup is under way; a start waits for the same app's
//! stop to be answered).

mod connection;
mod handoff;
pub mod replay;
mod start;
mod stop;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use sightline_protocol::session_id::app_session_id;
use sightline_protocol::stream::Subscription;
use sightline_protocol::webhook::StopReason;
use sightline_store::{AppRecord, AppType};

use crate::link::{ConnectionId, ConnectionLink};
use replay::ReplayBuffer;

/// App starts whose lookup may be under way at once in one session; more
/// are refused (each costs a store lookup, and the phone sends them).
pub const MAX_STARTS_UNDER_WAY: usize = 32;

/// What the table needs of a connection: who it is. The session's links
/// are [`ConnectionLink`]s; tests use plain ids.
pub trait AppLink: Clone {
    fn id(&self) -> ConnectionId;
}

impl AppLink for ConnectionLink {
    fn id(&self) -> ConnectionId {
        self.id
    }
}

/// Where an app is in its life within the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// Webhook sent, waiting for `tpa_connection_init`.
    Loading,
    /// Connected and acknowledged.
    Running,
    /// The socket dropped; waiting for the SDK to reconnect.
    Reconnecting,
    /// The socket dropped while the glasses were away; restarted when they
    /// return, and accepted if the SDK reconnects meanwhile.
    Dormant,
}

impl AppState {
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Loading => "loading",
            AppState::Running => "running",
            AppState::Reconnecting => "reconnecting",
            AppState::Dormant => "dormant",
        }
    }
}

/// Timings and bounds of the lifecycle.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// From start to the app's `tpa_connection_init`.
    pub start_timeout: Duration,
    /// First delay between `session_request` attempts (doubles, with jitter).
    pub webhook_initial_backoff: Duration,
    /// How long an app whose socket dropped waits for the SDK to reconnect.
    pub reconnect_grace: Duration,
    /// An empty subscription list this soon after a (re)connect is ignored.
    pub empty_subscription_guard: Duration,
    /// Restarts of a vanished app before it is declared stopped.
    pub max_resurrections: u32,
    /// The system dashboard's package: connects without a start, never
    /// restarted by Sightline.
    pub dashboard_package: String,
    pub replay_max_events: usize,
    pub replay_max_bytes: usize,
    /// Distinct subscriptions one app may hold.
    pub max_subscriptions: usize,
}

/// One app of the session.
#[derive(Debug)]
pub struct App<L> {
    pub record: AppRecord,
    /// `<userId>-<packageName>`.
    pub session_id: String,
    pub state: AppState,
    pub link: Option<L>,
    pub subscriptions: Vec<Subscription>,
    pub generation: u64,
    /// Delays between `session_request` attempts of the current launch.
    backoff: Option<ExponentialBackoff>,
    pub connected_at: Option<Instant>,
    /// When the current start was asked for, until the app connects.
    pub launched_at: Option<Instant>,
    /// The app announced (`ownership_release`) that its next close is
    /// deliberate.
    pub ownership_released: bool,
    pub resurrections: u32,
    /// Ties the log lines and webhook calls of one start together.
    pub correlation_id: String,
    /// Events kept for the app while its connection is away.
    pub replay: Option<ReplayBuffer>,
    /// A restarted app gets the kept events once it has subscribed again
    /// (before that, the SDK has no handlers for them).
    pub replay_after_subscribe: bool,
    /// Handed over by another instance: events are kept until the app has
    /// subscribed here (its subscriptions came with it, its handlers not).
    pub handed_over: bool,
}

impl<L: AppLink> App<L> {
    /// Whether events go to the app's socket now (not to its replay
    /// buffer).
    pub fn receives_live(&self) -> bool {
        self.state == AppState::Running && self.link.is_some() && !self.replay_after_subscribe
    }

    /// Where a webhook for this app goes.
    fn target(&self) -> WebhookTarget {
        WebhookTarget {
            public_url: self.record.public_url.clone(),
            session_id: self.session_id.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }
}

/// Where a webhook goes and what ties it to its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub public_url: String,
    pub session_id: String,
    pub correlation_id: String,
}

/// What to do once a `stop_request` has been answered (or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStop {
    /// The app was stopped: a start waiting for this stop may go.
    Release,
    /// The app is being restarted: launch it again if it is still waiting.
    Relaunch { generation: u64 },
}

/// A timer the table asked for, handed back when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub package: String,
    pub generation: u64,
    pub kind: TimerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// The app had `start_timeout` to connect.
    StartTimeout,
    /// Send the `session_request` again.
    RetryWebhook,
    /// The reconnect grace ran out.
    ReconnectGrace,
}

/// Something the table counts, for the session's figures and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Events an app will never get.
    Dropped(u64),
    /// Kept events delivered after a reconnect.
    Replayed(u64),
    AppReconnected,
    Resurrected,
    /// From start to connection.
    StartTook(Duration),
    /// Subscriptions left out over the limit.
    SubscriptionsRefused,
}

/// What the session must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<L> {
    /// Look the app up in the store; answer with [`AppTable::looked_up`].
    LookUp {
        package: String,
        intent: u64,
    },
    /// POST `session_request`; answer with [`AppTable::webhook_answered`].
    PostSessionRequest {
        package: String,
        generation: u64,
        target: WebhookTarget,
    },
    /// POST `stop_request`; when it is answered or failed, call
    /// [`AppTable::stop_answered`] with `then`.
    PostStopRequest {
        package: String,
        target: WebhookTarget,
        reason: StopReason,
        then: AfterStop,
    },
    /// Call [`AppTable::timer_fired`] with `timer` at `at`.
    Arm {
        at: Instant,
        timer: Timer,
    },
    /// Record in the store whether the app runs.
    Persist {
        package: String,
        running: bool,
    },
    /// Accept the connection: `InitAccepted`, then the ack for `package`.
    Accept {
        package: String,
        link: L,
    },
    /// Refuse the connection's init with this code.
    Reject {
        link: L,
        code: &'static str,
        message: String,
    },
    /// Another socket took over this app session.
    Supersede {
        link: L,
    },
    /// Send this JSON text to the app.
    Send {
        link: L,
        text: String,
    },
    /// Close the app's socket.
    Close {
        link: L,
        code: u16,
        reason: &'static str,
    },
    /// Have the health monitor watch (or stop watching) a connection.
    Watch {
        package: String,
        link: L,
    },
    Unwatch {
        id: ConnectionId,
    },
    /// Tell the display manager and the dashboard.
    ScreenStarted {
        package: String,
        name: String,
        app_type: AppType,
    },
    ScreenBooted {
        package: String,
    },
    ScreenStopped {
        package: String,
    },
    /// Tell the glasses the app states changed (with an error, if any).
    AppStates {
        error: Option<String>,
    },
    /// What apps want from the microphone (and speech) may have changed.
    MicrophoneMayChange,
    Count(Count),
}

/// Every app of one session.
#[derive(Debug)]
pub struct AppTable<L> {
    config: LifecycleConfig,
    apps: BTreeMap<String, App<L>>,
    /// Starts whose lookup is under way, with their intent number.
    lookups: BTreeMap<String, u64>,
    /// Apps whose `stop_request` is under way.
    pending_stops: BTreeSet<String>,
    /// Starts waiting for one of those stops to be answered.
    deferred_starts: BTreeSet<String>,
    next_generation: u64,
    glasses_here: bool,
    user_id: String,
}

/// The effects of one input.
pub type Effects<L> = Vec<Effect<L>>;

impl<L: AppLink> AppTable<L> {
    pub fn new(user_id: &str, config: LifecycleConfig) -> Self {
        AppTable {
            config,
            apps: BTreeMap::new(),
            lookups: BTreeMap::new(),
            pending_stops: BTreeSet::new(),
            deferred_starts: BTreeSet::new(),
            next_generation: 0,
            glasses_here: false,
            user_id: user_id.to_string(),
        }
    }

    // ------------------------------------------------------------ reading --

    pub fn get(&self, package: &str) -> Option<&App<L>> {
        self.apps.get(package)
    }

    pub fn get_mut(&mut self, package: &str) -> Option<&mut App<L>> {
        self.apps.get_mut(package)
    }

    pub fn contains_key(&self, package: &str) -> bool {
        self.apps.contains_key(package)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &App<L>)> {
        self.apps.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut App<L>)> {
        self.apps.iter_mut()
    }

    pub fn values(&self) -> impl Iterator<Item = &App<L>> {
        self.apps.values()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The app's link, if `id` is its current connection (a superseded
    /// socket no longer speaks for the app).
    pub fn current_link(&self, package: &str, id: ConnectionId) -> Option<&L> {
        self.apps
            .get(package)?
            .link
            .as_ref()
            .filter(|l| l.id() == id)
    }

    /// Whether the app runs with a connection whose API key was accepted.
    pub fn is_connected(&self, package: &str) -> bool {
        self.apps
            .get(package)
            .is_some_and(|e| e.state == AppState::Running && e.link.is_some())
    }

    // ----------------------------------------------------------- internal --

    fn next_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn new_app(&self, record: AppRecord, state: AppState) -> App<L> {
        App {
            session_id: app_session_id(&self.user_id, &record.package_name),
            record,
            state,
            link: None,
            subscriptions: Vec::new(),
            generation: 0,
            backoff: None,
            connected_at: None,
            launched_at: None,
            ownership_released: false,
            resurrections: 0,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            replay: None,
            replay_after_subscribe: false,
            handed_over: false,
        }
    }

    fn new_backoff(&self) -> ExponentialBackoff {
        ExponentialBackoff {
            initial_interval: self.config.webhook_initial_backoff,
            current_interval: self.config.webhook_initial_backoff,
            randomization_factor: 0.3,
            multiplier: 2.0,
            max_interval: Duration::from_secs(2),
            // The start timeout bounds the attempts; the table checks it
            // against the time it is given, not the backoff's own clock.
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        }
    }
}
