//! The user session: one actor per user, owning all of that user's state.
//!
//! Everything that happens to a user — glasses frames, app frames, timers,
//! webhook results — arrives here as a message and is handled one at a time,
//! so no two changes to the session can interleave. Connections are known
//! only by their [`ConnectionLink`]; a message from a connection that is no
//! longer the current one for its role (a replaced glasses socket, an app
//! socket superseded by a reconnect) is recognised by its [`ConnectionId`]
//! and ignored.
//!
//! This file holds the state and the messages with their handlers; the work
//! is in [`glasses`] (the glasses side), [`apps`] (app lifecycle) and
//! [`routing`] (events, audio, subscriptions and app requests) and
//! [`screen`] (the display manager and the dashboard).

mod apps;
mod glasses;
mod replay;
mod routing;
mod screen;
mod transcription;
mod view;

pub use transcription::TranscriptionStatus;
pub use view::{AppView, DescribeSession, DisplayView, SessionView};
mod settings;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, SpawnHandle};
use bytes::Bytes;
use sightline_protocol::app::AppMessage;
use sightline_protocol::glasses::GlassesMessage;
use sightline_store::{AppRecord, Store, UserRecord};

use crate::config::RuntimeConfig;
use crate::dashboard::Dashboard;
use crate::display::{DisplayConfig, DisplayManager};
use crate::figures::RuntimeHealth;
use crate::health::{
    ConnectionRole, GetSessionFigures, HealthMonitor, HealthTimings, StopMonitoring, Unwatch, Watch,
};
use crate::link::{ConnectionId, ConnectionLink};
use crate::supervisor::SessionSupervisor;
use sightline_probe::{ActorKind, ActorProbe, ProbeGuard};

use apps::AppEntry;
pub use apps::AppState;
pub use settings::{AppIsConnected, AppSettingsChanged};

/// The actor holding one user's session.
pub struct UserSession {
    user: UserRecord,
    seq: u64,
    config: Arc<RuntimeConfig>,
    store: Arc<dyn Store>,
    supervisor: Addr<SessionSupervisor>,
    started_at: String,
    /// The current glasses connection, if the glasses are connected.
    glasses: Option<ConnectionLink>,
    /// Running while the glasses are away; when it fires the session ends.
    glasses_grace: Option<SpawnHandle>,
    /// Whether glasses ever connected (persisted apps start on the first).
    ever_connected: bool,
    /// Apps loading, running or reconnecting, by package name.
    apps: BTreeMap<String, AppEntry>,
    /// Counter that tags timers and webhook results with the app state they
    /// were started for, so a stale one recognises itself.
    next_generation: u64,
    /// Last microphone state told to the glasses.
    mic: Option<(bool, Vec<&'static str>)>,
    /// Decides what the glasses' main view shows.
    screen: DisplayManager,
    /// The system dashboard of this session.
    dashboard: Dashboard,
    /// Apps whose `stop_request` is still under way.
    pending_stops: HashSet<String>,
    /// Starts waiting for one of those stops to be answered.
    deferred_starts: HashSet<String>,
    /// Watches this session's connections; started with the session.
    monitor: Option<Addr<HealthMonitor>>,
    /// Figures and webhook breakers shared with every other session.
    health: Arc<RuntimeHealth>,
    /// This session's own figures.
    figures: SessionFigures,
    /// Transcription streams (see `transcription.rs`).
    transcription: transcription::Streams,
    /// This session's entry in the actor registry.
    probe: ProbeGuard,
    /// Span of every message this session handles: `user` and `session`
    /// fields on each log line, so one user's story can be followed.
    span: tracing::Span,
}

/// What happened in one session, for the stats and the logs.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionFigures {
    pub glasses_reconnects: u64,
    pub app_reconnects: u64,
    pub resurrections: u64,
    pub replayed_events: u64,
    pub dropped_events: u64,
    pub connection_timeouts: u64,
}

impl UserSession {
    pub fn new(
        user: UserRecord,
        seq: u64,
        config: Arc<RuntimeConfig>,
        store: Arc<dyn Store>,
        supervisor: Addr<SessionSupervisor>,
        health: Arc<RuntimeHealth>,
        probe: ProbeGuard,
    ) -> Self {
        probe.set_user(&user.email);
        let user_email = user.email.clone();
        let screen = DisplayManager::new(DisplayConfig {
            dashboard_package: config.dashboard_package.clone(),
            ..DisplayConfig::default()
        });
        let mut dashboard = Dashboard::new(&config.dashboard_package);
        if let Some(zone) = user.timezone.as_deref() {
            dashboard.set_timezone(zone);
        }
        let transcription = transcription::Streams::new(config.asr.build_provider());
        UserSession {
            user,
            seq,
            config,
            store,
            supervisor,
            started_at: crate::now_iso(),
            glasses: None,
            glasses_grace: None,
            ever_connected: false,
            apps: BTreeMap::new(),
            next_generation: 0,
            mic: None,
            screen,
            dashboard,
            pending_stops: HashSet::new(),
            deferred_starts: HashSet::new(),
            monitor: None,
            health,
            figures: SessionFigures::default(),
            span: tracing::info_span!("session", user = %user_email, session = seq),
            transcription,
            probe,
        }
    }

    /// Registers an actor this session supervises.
    fn child_probe(&self, kind: ActorKind, state: &'static str) -> ProbeGuard {
        let guard = self
            .health
            .actors
            .register(kind, Some(self.probe.id()), state);
        guard.set_user(&self.user.email);
        guard
    }

    fn user_id(&self) -> &str {
        &self.user.email
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Has the health monitor watch a connection.
    fn watch(&self, role: ConnectionRole, link: &ConnectionLink) {
        if let Some(m) = &self.monitor {
            m.do_send(Watch {
                role,
                link: link.clone(),
            });
        }
    }

    /// Tells the health monitor a connection is no longer the session's.
    fn unwatch(&self, id: ConnectionId) {
        if let Some(m) = &self.monitor {
            m.do_send(Unwatch { id });
        }
    }
}

impl Actor for UserSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.transcription.bind(ctx.address().recipient());
        tracing::debug!(user = %self.user.email, "user session started");
        self.health.figures.session_lives(1);
        let timings = HealthTimings {
            heartbeat_interval: self.config.heartbeat_interval,
            connection_timeout: self.config.connection_timeout,
            stats_interval: self.config.stats_interval,
        };
        let monitor = HealthMonitor::new(
            self.user.email.clone(),
            ctx.address(),
            timings,
            self.health.clone(),
            self.child_probe(ActorKind::HealthMonitor, "watching"),
        );
        self.monitor = Some(monitor.start());
        self.schedule_dashboard_clock(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.health.figures.session_lives(-1);
        if let Some(m) = self.monitor.take() {
            m.do_send(StopMonitoring);
        }
        tracing::info!(user = %self.user.email, figures = ?self.figures, "user session stopped");
    }
}

// --------------------------------------------------------------- handle --

/// A connection's handle on its session: the address, and the session's
/// probe, so that every message a connection sends is counted into the
/// session's mailbox depth. Request-response messages go through
/// [`SessionHandle::addr`] uncounted.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    addr: Addr<UserSession>,
    probe: Arc<ActorProbe>,
}

impl PartialEq for SessionHandle {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl SessionHandle {
    pub(crate) fn new(addr: Addr<UserSession>, probe: Arc<ActorProbe>) -> Self {
        SessionHandle { addr, probe }
    }

    /// Queues a message for the session, counted.
    pub fn do_send<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        UserSession: Handler<Counted<M>>,
    {
        self.probe.sent();
        self.addr.do_send(Counted(msg));
    }

    /// Asks the session something and waits for the answer (not counted
    /// into the mailbox depth: questions are rare and come from outside the
    /// message path).
    pub fn send<M>(&self, msg: M) -> actix::dev::Request<UserSession, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        UserSession: Handler<M>,
    {
        self.addr.send(msg)
    }

    pub fn addr(&self) -> &Addr<UserSession> {
        &self.addr
    }

    /// Whether the session actor is still running.
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }

    /// The session's id in the actor registry.
    pub fn actor_id(&self) -> u64 {
        self.probe.id()
    }

    pub(crate) fn probe(&self) -> &Arc<ActorProbe> {
        &self.probe
    }
}

/// A message sent through a [`SessionHandle`]: counted out of the mailbox
/// when the session handles it.
pub struct Counted<M>(M);

impl<M: Message<Result = ()>> Message for Counted<M> {
    type Result = ();
}

/// Lets the session take these messages through a [`SessionHandle`].
macro_rules! counted {
    ($($msg:ty),* $(,)?) => {$(
        impl Handler<Counted<$msg>> for UserSession {
            type Result = ();
            fn handle(&mut self, Counted(msg): Counted<$msg>, ctx: &mut Context<Self>) {
                let span = self.span.clone();
                let _in_session = span.enter();
                self.probe.received();
                <UserSession as Handler<$msg>>::handle(self, msg, ctx);
            }
        }
    )*};
}

counted!(
    GlassesDisconnected,
    FromGlasses,
    GlassesAudio,
    AttachApp,
    AppDisconnected,
    FromApp,
    Dispose,
);

// ------------------------------------------------------------- messages --

/// A glasses connection opened for this user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GlassesConnected {
    pub link: ConnectionLink,
}

impl Handler<GlassesConnected> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: GlassesConnected, ctx: &mut Context<Self>) {
        self.glasses_connected(msg.link, ctx);
    }
}

/// A glasses connection closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GlassesDisconnected {
    pub id: ConnectionId,
}

impl Handler<GlassesDisconnected> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: GlassesDisconnected, ctx: &mut Context<Self>) {
        self.glasses_disconnected(msg.id, ctx);
    }
}

/// A parsed text frame from the glasses.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromGlasses {
    pub id: ConnectionId,
    pub msg: GlassesMessage,
    /// When the frame arrived (for the fan-out latency).
    pub received: std::time::Instant,
    /// Counts the frame against its connection's inbound backlog until handled.
    pub ticket: crate::inbound::InboundTicket,
}

impl Handler<FromGlasses> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: FromGlasses, ctx: &mut Context<Self>) {
        if self.is_current_glasses(msg.id) {
            self.glasses_message(msg.msg, msg.received, ctx);
        }
    }
}

/// A binary (audio) frame from the glasses.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GlassesAudio {
    pub id: ConnectionId,
    pub data: Bytes,
    /// Counts the frame against its connection's inbound backlog until handled.
    pub ticket: crate::inbound::InboundTicket,
}

impl Handler<GlassesAudio> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: GlassesAudio, _: &mut Context<Self>) {
        if self.is_current_glasses(msg.id) {
            self.route_audio(msg.data);
        }
    }
}

/// An app connection whose `tpa_connection_init` carried a valid API key
/// asks to be bound to this session. The session answers on the link:
/// `InitAccepted` and the ack, or `InitRejected`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachApp {
    /// The app, as the store knows it.
    pub app: AppRecord,
    pub link: ConnectionLink,
}

impl Handler<AttachApp> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: AttachApp, ctx: &mut Context<Self>) {
        self.attach_app(msg.app, msg.link, ctx);
    }
}

/// An app connection closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppDisconnected {
    pub package_name: String,
    pub id: ConnectionId,
    /// The close code the app sent, if any.
    pub code: Option<u16>,
}

impl Handler<AppDisconnected> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: AppDisconnected, ctx: &mut Context<Self>) {
        self.app_disconnected(&msg.package_name, msg.id, msg.code, ctx);
    }
}

/// A parsed text frame from a bound app connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromApp {
    pub package_name: String,
    pub id: ConnectionId,
    pub msg: AppMessage,
    /// Counts the frame against its connection's inbound backlog until handled.
    pub ticket: crate::inbound::InboundTicket,
}

impl Handler<FromApp> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: FromApp, ctx: &mut Context<Self>) {
        self.app_message(&msg.package_name, msg.id, msg.msg, ctx);
    }
}

/// The health monitor closed a connection that fell silent (or found it
/// gone): the session treats it as disconnected, in the same step.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectionTimedOut {
    pub id: ConnectionId,
    pub role: ConnectionRole,
}

impl Handler<ConnectionTimedOut> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: ConnectionTimedOut, ctx: &mut Context<Self>) {
        self.figures.connection_timeouts += 1;
        match msg.role {
            ConnectionRole::Glasses => self.glasses_disconnected(msg.id, ctx),
            ConnectionRole::App { package } => {
                self.app_disconnected(&package, msg.id, Some(crate::link::close::GOING_AWAY), ctx)
            }
        }
    }
}

/// Asks a session for its figures and its health monitor, for the stats
/// endpoint.
#[derive(Message)]
#[rtype(result = "(SessionFigures, Option<Addr<HealthMonitor>>)")]
pub struct GetSessionHealth;

impl Handler<GetSessionHealth> for UserSession {
    type Result = MessageResult<GetSessionHealth>;
    fn handle(&mut self, _: GetSessionHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.figures, self.monitor.clone()))
    }
}

impl Handler<GetSessionFigures> for UserSession {
    type Result = MessageResult<GetSessionFigures>;
    fn handle(&mut self, _: GetSessionFigures, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.figures)
    }
}

/// Tells the session to end now: apps are told "User session ended" and
/// every connection is closed. Sent by the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispose;

impl Handler<Dispose> for UserSession {
    type Result = ();
    fn handle(&mut self, _: Dispose, ctx: &mut Context<Self>) {
        self.dispose(ctx);
    }
}

/// Makes the session actor panic. Only for fault-injection tests, which
/// prove that one failing session leaves the others untouched.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

#[cfg(feature = "fault-injection")]
impl Handler<InjectPanic> for UserSession {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, _: &mut Context<Self>) {
        panic!("fault injected into the session of {}", self.user.email);
    }
}
