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
mod devices;
mod glasses;
mod handover;
mod messaging;
mod persist;
mod persist_settings;
mod phone;
mod routing;
mod screen;
mod transcription;
mod view;

pub use devices::{PhotoDestination, PhotoUploaded};
pub use handover::{AdoptHandoff, CloseGlasses, HandOver, RepointApp};
pub use phone::MentraosSettingsChanged;
pub use screen::DashboardClockTick;
pub use transcription::TranscriptionStatus;
pub use view::{AppView, DescribeSession, DisplayView, SessionView};
mod settings;

use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient, SpawnHandle,
};
use bytes::Bytes;
use sightline_protocol::app::AppMessage;
use sightline_protocol::glasses::GlassesMessage;
use sightline_store::{AppRecord, Store, UserRecord};

use crate::config::RuntimeConfig;
use crate::dashboard::Dashboard;
use crate::device::GlassesDevice;
use crate::devices::DeviceRequests;
use crate::display::{DisplayConfig, DisplayManager};
use crate::health::{
    ConnectionRole, ConnectionTimedOut, GetSessionFigures, HealthMonitor, HealthTimings,
    SessionReplies, StopMonitoring, Unwatch, Watch,
};
use crate::link::{ConnectionId, ConnectionLink};
use crate::messaging::AppMessaging;
use crate::microphone::MicrophoneGate;
use crate::shared::RuntimeShared;
use sightline_probe::{ActorKind, ActorProbe, ProbeGuard};

use crate::figures::SessionEvent;
pub use crate::figures::SessionFigures;
pub use crate::lifecycle::AppState;
use crate::lifecycle::{AppTable, LifecycleConfig};
pub use settings::{AppIsConnected, AppRecordChanged, AppSettingsChanged, AppUninstalled};

/// The actor holding one user's session.
pub struct UserSession {
    user: UserRecord,
    seq: u64,
    config: Arc<RuntimeConfig>,
    store: Arc<dyn Store>,
    /// The supervisor, as the one message this session sends it.
    supervisor: Recipient<RetireSession>,
    started_at: String,
    /// The current glasses connection, if the glasses are connected.
    glasses: Option<ConnectionLink>,
    /// Running while the glasses are away; when it fires the session ends.
    glasses_grace: Option<SpawnHandle>,
    /// Whether glasses ever connected (persisted apps start on the first).
    ever_connected: bool,
    /// Every app of the session and its lifecycle (see [`crate::lifecycle`]).
    apps: AppTable<ConnectionLink>,
    /// When the glasses' microphone is switched (coalesced, debounced).
    mic: MicrophoneGate,
    /// Decides what the glasses' main view shows.
    screen: DisplayManager,
    /// The user's glasses: model, capabilities, state.
    device: GlassesDevice,
    /// What apps asked of the glasses' hardware and is not settled yet.
    devices: DeviceRequests,
    /// Where apps reach other users running the same app.
    messaging: Addr<AppMessaging>,
    /// When the user's location was last written to the store.
    location_written: Option<Instant>,
    /// Each app's budget of messages to other users.
    message_budgets: std::collections::HashMap<String, messaging::MessageBudget>,
    /// The system dashboard of this session.
    dashboard: Dashboard,
    /// Writes which apps run to the store, in order.
    running_writer: persist::RunningAppsWriter,
    /// Writes the MentraOS settings the phone changes, in order.
    settings_writer: persist_settings::SettingsWriter,
    /// Watches this session's connections; started with the session.
    monitor: Option<Addr<HealthMonitor>>,
    /// Figures, webhook breakers, actor registry and metrics shared with
    /// every other actor.
    health: Arc<RuntimeShared>,
    /// This session's own figures.
    figures: SessionFigures,
    /// Transcription streams (see `transcription.rs`).
    transcription: transcription::Streams,
    /// This session's entry in the actor registry.
    probe: ProbeGuard,
    /// Set once the session was handed over to another instance.
    moved: Option<handover::Moved>,
    /// Span of every message this session handles: `user` and `session`
    /// fields on each log line, so one user's story can be followed.
    span: tracing::Span,
}

impl UserSession {
    pub fn new(
        user: UserRecord,
        seq: u64,
        config: Arc<RuntimeConfig>,
        store: Arc<dyn Store>,
        links: SessionLinks,
        health: Arc<RuntimeShared>,
        probe: ProbeGuard,
    ) -> Self {
        let SessionLinks {
            supervisor,
            messaging,
        } = links;
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
        let apps = AppTable::new(
            &user.email,
            LifecycleConfig {
                start_timeout: config.app_start_timeout,
                webhook_initial_backoff: config.webhook_initial_backoff,
                reconnect_grace: config.app_reconnect_grace,
                empty_subscription_guard: config.empty_subscription_guard,
                max_resurrections: config.max_resurrections,
                dashboard_package: config.dashboard_package.clone(),
                replay_max_events: config.replay_max_events,
                replay_max_bytes: config.replay_max_bytes,
                max_subscriptions: config.max_subscriptions_per_app,
            },
        );
        let running_writer = persist::RunningAppsWriter::start(store.clone(), user_email.clone());
        let settings_writer =
            persist_settings::SettingsWriter::start(store.clone(), user_email.clone());
        let mut devices = DeviceRequests::new(config.devices.clone());
        devices.set_urls(
            config.sdk_https_url(),
            config.public_http_url(),
            format!(
                "{}/api/photos/{}",
                config.public_http_url(),
                percent_encoding::utf8_percent_encode(
                    &user_email,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ),
        );
        let mic = MicrophoneGate::new(config.mic_settle, config.mic_off_delay, Instant::now());
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
            apps,
            mic,
            screen,
            dashboard,
            device: GlassesDevice::default(),
            devices,
            messaging,
            message_budgets: std::collections::HashMap::new(),
            location_written: None,
            running_writer,
            settings_writer,
            monitor: None,
            health,
            figures: SessionFigures::default(),
            span: tracing::info_span!("session", user = %user_email, session = seq),
            transcription,
            probe,
            moved: None,
        }
    }

    /// Counts something that happened in this session, for the session and
    /// the runtime alike.
    fn record(&mut self, event: SessionEvent) {
        self.figures.record(event, &self.health.figures);
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
        let replies = SessionReplies {
            timed_out: ctx.address().recipient(),
            figures: ctx.address().recipient(),
        };
        let monitor = HealthMonitor::new(
            self.user.email.clone(),
            replies,
            timings,
            self.health.clone(),
            self.child_probe(ActorKind::HealthMonitor, "watching"),
        );
        self.monitor = Some(monitor.start());
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
    DashboardClockTick,
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
        if self.moved.is_some() {
            msg.link.close(
                crate::link::close::GOING_AWAY,
                "Session moved to another instance",
            );
            return;
        }
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
        if self.moved.is_some() {
            return self.moved_app_left(msg.id, ctx);
        }
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
        if self.moved.is_some() {
            tracing::debug!(package = %msg.package_name, "app message to a moved session not acted on");
            return;
        }
        self.app_message(&msg.package_name, msg.id, msg.msg, ctx);
    }
}

impl Handler<ConnectionTimedOut> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: ConnectionTimedOut, ctx: &mut Context<Self>) {
        if msg.silent {
            self.record(SessionEvent::ConnectionTimedOut(msg.role.clone()));
        }
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

/// The actors a session talks to beyond its own children: the supervisor
/// (only to retire) and app-to-app messaging.
pub struct SessionLinks {
    pub supervisor: Recipient<RetireSession>,
    pub messaging: Addr<AppMessaging>,
}

/// Sent to the supervisor by a session whose glasses grace period ran out:
/// the supervisor forgets the session and answers with [`Dispose`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetireSession {
    pub user_id: String,
    pub seq: u64,
}

/// Tells the session to end now: apps are told "User session ended" and
/// every connection is closed. Sent by the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispose;

impl Handler<Dispose> for UserSession {
    type Result = ();
    fn handle(&mut self, _: Dispose, ctx: &mut Context<Self>) {
        if self.moved.is_some() {
            return self.finish_move(ctx);
        }
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

/// Makes the session actor block its thread for a while, as a session
/// busy with something expensive would. Only for fault-injection tests,
/// which prove that connections stop reading instead of queueing without
/// bound while their session is slow.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectStall(pub std::time::Duration);

#[cfg(feature = "fault-injection")]
impl Handler<InjectStall> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: InjectStall, _: &mut Context<Self>) {
        std::thread::sleep(msg.0);
    }
}
