//! One actor's probe: the counters it keeps about itself.
//!
//! Each actor owns one [`ActorProbe`]. The actor itself bumps
//! [`ActorProbe::handled`] (or [`ActorProbe::received`] for a message that
//! was counted into its mailbox) for each message it handles; whoever sends
//! it a counted message bumps [`ActorProbe::sent`] first. Every counter is a
//! relaxed atomic of this one actor, so counting costs a few uncontended
//! atomic adds and never a lock shared across sessions. The rarely changing
//! parts (state, user, package, parent) sit behind a per-actor mutex.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::totals::KindTotals;

/// What kind of actor a probe belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorKind {
    Supervisor,
    UserSession,
    GlassesConnection,
    AppConnection,
    HealthMonitor,
    TranscriptionStream,
}

impl ActorKind {
    pub const ALL: [ActorKind; 6] = [
        ActorKind::Supervisor,
        ActorKind::UserSession,
        ActorKind::GlassesConnection,
        ActorKind::AppConnection,
        ActorKind::HealthMonitor,
        ActorKind::TranscriptionStream,
    ];

    /// The name used in JSON and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Supervisor => "supervisor",
            ActorKind::UserSession => "user-session",
            ActorKind::GlassesConnection => "glasses-connection",
            ActorKind::AppConnection => "app-connection",
            ActorKind::HealthMonitor => "health-monitor",
            ActorKind::TranscriptionStream => "transcription-stream",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Width of one rate bucket, and how many make up the rate window.
const BUCKET_MS: u64 = 5_000;
const BUCKETS: usize = 12;
/// The rate window: one minute.
pub const RATE_WINDOW: Duration = Duration::from_millis(BUCKET_MS * BUCKETS as u64);

/// Milliseconds since the first probe of the process: the clock every probe
/// stamps activity with.
pub(crate) fn clock_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Wall-clock time of a [`clock_ms`] stamp.
pub(crate) fn wall_time(stamp_ms: u64) -> SystemTime {
    let now = clock_ms();
    SystemTime::now() - Duration::from_millis(now.saturating_sub(stamp_ms))
}

/// The rarely changing description of an actor.
#[derive(Debug, Clone, Default)]
pub(crate) struct Description {
    pub parent: Option<u64>,
    pub user: Option<String>,
    pub package: Option<String>,
    pub label: Option<String>,
    pub state: &'static str,
}

/// The counters of one actor.
#[derive(Debug)]
pub struct ActorProbe {
    id: u64,
    kind: ActorKind,
    started_at: SystemTime,
    pub(crate) description: Mutex<Description>,
    handled: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    failures: AtomicU64,
    restarts: AtomicU64,
    last_activity_ms: AtomicU64,
    /// Messages per 5-second slot: the slot number in the high 32 bits,
    /// the count in the low 32.
    buckets: [AtomicU64; BUCKETS],
    totals: Arc<KindTotals>,
}

impl ActorProbe {
    pub(crate) fn new(
        id: u64,
        kind: ActorKind,
        description: Description,
        totals: Arc<KindTotals>,
    ) -> Self {
        ActorProbe {
            id,
            kind,
            started_at: SystemTime::now(),
            description: Mutex::new(description),
            handled: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(clock_ms()),
            buckets: Default::default(),
            totals,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn kind(&self) -> ActorKind {
        self.kind
    }

    /// A message is on its way into this actor's mailbox.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// The actor took a message counted by [`ActorProbe::sent`] out of its
    /// mailbox and handled it.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.handled();
    }

    /// The actor handled a message (or a frame of its stream) that was not
    /// counted into its mailbox.
    pub fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let now = clock_ms();
        self.last_activity_ms.store(now, Ordering::Relaxed);
        let slot = now / BUCKET_MS;
        let bucket = &self.buckets[(slot as usize) % BUCKETS];
        let current = bucket.load(Ordering::Relaxed);
        if current >> 32 == slot & 0xFFFF_FFFF {
            bucket.fetch_add(1, Ordering::Relaxed);
        } else {
            bucket.store(((slot & 0xFFFF_FFFF) << 32) | 1, Ordering::Relaxed);
        }
    }

    /// Something went wrong in the actor (a refused frame, a failed
    /// provider connection, a failed webhook).
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.totals.failed();
    }

    /// The actor, or the thing it stands for, started over (a reconnect, a
    /// replaced session).
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Carries failures and restarts over from the actor this one replaces.
    pub fn inherit(&self, previous: &ActorProbe) {
        self.failures
            .fetch_add(previous.failures(), Ordering::Relaxed);
        self.restarts
            .fetch_add(previous.restarts(), Ordering::Relaxed);
    }

    /// The actor's state, in a word ("bound", "open", "glasses-away").
    pub fn set_state(&self, state: &'static str) {
        self.describe(|d| d.state = state);
    }

    pub fn set_parent(&self, parent: u64) {
        self.describe(|d| d.parent = Some(parent));
    }

    pub fn set_user(&self, user: &str) {
        self.describe(|d| d.user = Some(user.to_string()));
    }

    pub fn set_package(&self, package: &str) {
        self.describe(|d| d.package = Some(package.to_string()));
    }

    /// A short free-form identification (a connection id, a stream spec).
    pub fn set_label(&self, label: &str) {
        self.describe(|d| d.label = Some(label.to_string()));
    }

    fn describe(&self, change: impl FnOnce(&mut Description)) {
        if let Ok(mut d) = self.description.lock() {
            change(&mut d);
        }
    }

    pub fn handled_total(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Messages counted into the mailbox and not yet handled.
    pub fn mailbox(&self) -> u64 {
        // Read `received` first: a message handled between the two loads
        // can then only make the depth look one too high, never negative.
        let received = self.received.load(Ordering::Relaxed);
        self.sent.load(Ordering::Relaxed).saturating_sub(received)
    }

    /// Messages handled over the last minute (the current 5-second slot
    /// and the eleven before it).
    pub fn rate_last_minute(&self) -> u64 {
        let slot = clock_ms() / BUCKET_MS;
        let oldest = slot.saturating_sub(BUCKETS as u64 - 1) & 0xFFFF_FFFF;
        let slot = slot & 0xFFFF_FFFF;
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .filter(|v| {
                let s = v >> 32;
                s >= oldest && s <= slot
            })
            .map(|v| v & 0xFFFF_FFFF)
            .sum()
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub fn last_activity(&self) -> SystemTime {
        wall_time(self.last_activity_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn description(&self) -> Description {
        self.description
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }
}
