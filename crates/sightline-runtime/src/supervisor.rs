//! The session supervisor: the one actor that knows which user sessions
//! exist.
//!
//! It creates a [`UserSession`] when a user's glasses first connect, spreads
//! sessions over a pool of arbiter threads, hands out session addresses to
//! connections, and retires a session when its glasses grace period runs
//! out. It touches no per-message traffic: it is asked only on connect,
//! disconnect and for stats. A session whose actor has died (its address is
//! no longer connected) is replaced by a fresh one on the next lookup.
//!
//! It also keeps the one minute ticker of the dashboards' clocks: at every
//! minute boundary each session is told to re-render its dashboard (one
//! timer here instead of one polled by every session on every message).
//!
//! A session knows the supervisor only as a recipient of
//! [`RetireSession`], so sessions never depend on this module.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{
    Actor, Addr, Arbiter, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
};
use sightline_store::{Store, UserRecord};

use crate::config::RuntimeConfig;
use crate::messaging::AppMessaging;
use crate::session::{
    DashboardClockTick, Dispose, RetireSession, SessionHandle, SessionLinks, UserSession,
};
use crate::shared::RuntimeShared;
use sightline_probe::{ActorKind, ProbeGuard};

/// Supervisor of all user sessions.
pub struct SessionSupervisor {
    config: Arc<RuntimeConfig>,
    store: Arc<dyn Store>,
    shared: Arc<RuntimeShared>,
    /// Where sessions' apps reach other users of the same app.
    messaging: Addr<AppMessaging>,
    sessions: HashMap<String, SessionEntry>,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    next_seq: u64,
    /// The supervisor's entry in the actor registry: the root of the tree.
    probe: ProbeGuard,
    /// Told of every retired session (the cluster member releases the
    /// user's lease).
    retirements: Option<Recipient<SessionRetired>>,
}

struct SessionEntry {
    handle: SessionHandle,
    seq: u64,
}

impl SessionSupervisor {
    pub fn new(
        config: Arc<RuntimeConfig>,
        store: Arc<dyn Store>,
        shared: Arc<RuntimeShared>,
        messaging: Addr<AppMessaging>,
    ) -> Self {
        let probe = shared
            .actors
            .register(ActorKind::Supervisor, None, "running");
        SessionSupervisor {
            probe,
            retirements: None,
            config,
            store,
            shared,
            messaging,
            sessions: HashMap::new(),
            arbiters: Vec::new(),
            next_arbiter: 0,
            next_seq: 0,
        }
    }

    /// The supervisor's id in the actor registry, the parent of every
    /// session and of app connections not yet bound to one.
    pub fn actor_id(&self) -> u64 {
        self.probe.id()
    }

    fn spawn_session(&mut self, user: UserRecord, me: Addr<SessionSupervisor>) -> SessionEntry {
        if self.arbiters.is_empty() {
            let n = self.config.session_threads.max(1);
            self.arbiters = (0..n).map(|_| Arbiter::new()).collect();
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let idx = self.next_arbiter % self.arbiters.len();
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        let config = self.config.clone();
        let store = self.store.clone();
        let shared = self.shared.clone();
        let retire = me.recipient();
        let messaging = self.messaging.clone();
        let guard =
            self.shared
                .actors
                .register(ActorKind::UserSession, Some(self.probe.id()), "starting");
        let probe = guard.probe();
        let addr = UserSession::start_in_arbiter(&self.arbiters[idx].handle(), move |_| {
            let links = SessionLinks {
                supervisor: retire,
                messaging,
            };
            UserSession::new(user, seq, config, store, links, shared, guard)
        });
        tracing::info!(session_seq = seq, "user session created");
        SessionEntry {
            handle: SessionHandle::new(addr, probe),
            seq,
        }
    }
}

impl SessionSupervisor {
    /// Tells every live session a minute boundary has passed, and waits for
    /// the next one.
    fn schedule_dashboard_clock(&mut self, ctx: &mut Context<Self>) {
        let delay = crate::dashboard::until_next_minute(chrono::Utc::now());
        ctx.run_later(delay, |act, ctx| {
            for entry in act.sessions.values() {
                entry.handle.do_send(DashboardClockTick);
            }
            act.schedule_dashboard_clock(ctx);
        });
    }
}

impl Actor for SessionSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.schedule_dashboard_clock(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

/// Returns the user's session, creating it if there is none (or if the one
/// there has died).
#[derive(Message)]
#[rtype(result = "SessionHandle")]
pub struct OpenSession {
    pub user: UserRecord,
}

impl Handler<OpenSession> for SessionSupervisor {
    type Result = MessageResult<OpenSession>;

    fn handle(&mut self, msg: OpenSession, ctx: &mut Context<Self>) -> Self::Result {
        let email = msg.user.email.clone();
        let mut died = None;
        if let Some(entry) = self.sessions.get(&email) {
            if entry.handle.connected() {
                return MessageResult(entry.handle.clone());
            }
            tracing::warn!(user = %email, "user session had died; starting a new one");
            died = Some(entry.handle.probe().clone());
        }
        let entry = self.spawn_session(msg.user, ctx.address());
        if let Some(previous) = died {
            let probe = entry.handle.probe();
            probe.inherit(&previous);
            probe.failed();
            probe.restarted();
        }
        let handle = entry.handle.clone();
        self.sessions.insert(email, entry);
        MessageResult(handle)
    }
}

/// Looks up a user's live session without creating one.
#[derive(Message)]
#[rtype(result = "Option<SessionHandle>")]
pub struct FindSession {
    pub user_id: String,
}

impl Handler<FindSession> for SessionSupervisor {
    type Result = Option<SessionHandle>;

    fn handle(&mut self, msg: FindSession, _: &mut Context<Self>) -> Self::Result {
        let entry = self.sessions.get(&msg.user_id)?;
        if entry.handle.connected() {
            Some(entry.handle.clone())
        } else {
            self.sessions.remove(&msg.user_id);
            None
        }
    }
}

/// The supervisor forgets a retiring session first, so any connection
/// arriving from now on gets a fresh session, then tells it to dispose of
/// itself.
impl Handler<RetireSession> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: RetireSession, _: &mut Context<Self>) {
        match self.sessions.get(&msg.user_id) {
            Some(e) if e.seq == msg.seq => {
                if let Some(e) = self.sessions.remove(&msg.user_id) {
                    e.handle.do_send(Dispose);
                }
                tracing::info!(user = %msg.user_id, "user session retired");
                if let Some(r) = &self.retirements {
                    r.do_send(SessionRetired {
                        user_id: msg.user_id.clone(),
                    });
                }
            }
            _ => {}
        }
    }
}

/// A user's session was retired (its glasses grace period ran out).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SessionRetired {
    pub user_id: String,
}

/// Asks the supervisor to tell `to` of every retired session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchRetirements {
    pub to: Recipient<SessionRetired>,
}

impl Handler<WatchRetirements> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: WatchRetirements, _: &mut Context<Self>) {
        self.retirements = Some(msg.to);
    }
}

/// The users with a session, for stats and inspection.
#[derive(Message)]
#[rtype(result = "Vec<(String, Addr<UserSession>)>")]
pub struct ListSessions;

impl Handler<ListSessions> for SessionSupervisor {
    type Result = MessageResult<ListSessions>;

    fn handle(&mut self, _: ListSessions, _: &mut Context<Self>) -> Self::Result {
        self.sessions.retain(|_, e| e.handle.connected());
        let mut out: Vec<_> = self
            .sessions
            .iter()
            .map(|(u, e)| (u.clone(), e.handle.addr().clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        MessageResult(out)
    }
}

/// Asks every session to close its glasses connection with `code`, so the
/// phones reconnect (to another instance of a cluster being drained).
/// Answers how many sessions were asked.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SendGlassesAway {
    pub code: u16,
    pub reason: &'static str,
}

impl Handler<SendGlassesAway> for SessionSupervisor {
    type Result = usize;

    fn handle(&mut self, msg: SendGlassesAway, _: &mut Context<Self>) -> usize {
        for e in self.sessions.values() {
            e.handle.addr().do_send(crate::session::CloseGlasses {
                code: msg.code,
                reason: msg.reason,
            });
        }
        self.sessions.len()
    }
}

/// Tells every session of an app's changed registration.
impl Handler<crate::session::AppRecordChanged> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: crate::session::AppRecordChanged, _: &mut Context<Self>) {
        for e in self.sessions.values() {
            e.handle.addr().do_send(msg.clone());
        }
    }
}
