//! This instance's membership of a cluster: the users it owns.
//!
//! Glasses that connect here ask [`ClaimUser`] before their session is
//! opened. A user nobody owns is claimed in the ownership bucket (NATS
//! JetStream key-value); a user this instance owns is let in; a user owned
//! by another instance is *handed over*: this instance asks the owner on
//! `sightline.instance.<owner>.handover`, the owner transfers the lease by
//! compare-and-set and answers with the session ([`Handoff`]), which the
//! new session adopts. An owner that does not answer (it died) keeps the
//! user until its lease lapses; the glasses are asked to retry.
//!
//! Every 250 ms the lease table ([`sightline_cluster::Leases`]) says which
//! leases to renew and which to fence; a fenced user's session is disposed
//! of at once. A session the supervisor retires gives its lease up.
//! [`Drain`] sends every user's glasses away so they reconnect elsewhere,
//! and the sessions follow them there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseActFuture, WrapFuture,
};
use sightline_cluster::bus::handover_subject;
use sightline_cluster::{
    Bus, BusError, Claim, LeaseAction, LeaseConfig, Leases, Owner, OwnershipBucket, OwnershipError,
    RenewRefusal,
};
use sightline_runtime::handoff::Handoff;
use sightline_runtime::session::{Dispose, HandOver};
use sightline_runtime::supervisor::{FindSession, SessionRetired, WatchRetirements};
use sightline_runtime::{RuntimeShared, SessionSupervisor};

use super::wire::{HandoverAnswer, HandoverAsk};

/// How often the lease table is asked what is due.
const TICK: Duration = Duration::from_millis(250);
/// Claims and hand-over requests one glasses connection may make before
/// it is asked to retry.
const ACQUIRE_ATTEMPTS: usize = 4;
/// The pause before asking an owner again whose renewal was in flight.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The cluster member actor.
pub struct ClusterMember {
    bucket: OwnershipBucket,
    bus: Bus,
    me: Owner,
    leases: Leases,
    supervisor: actix::Addr<SessionSupervisor>,
    shared: Arc<RuntimeShared>,
    /// Set by [`Drain`]: new users are not claimed here.
    draining: bool,
}

impl ClusterMember {
    pub fn new(
        bucket: OwnershipBucket,
        bus: Bus,
        me: Owner,
        lease: LeaseConfig,
        supervisor: actix::Addr<SessionSupervisor>,
        shared: Arc<RuntimeShared>,
    ) -> Self {
        ClusterMember {
            bucket,
            bus,
            me,
            leases: Leases::new(lease),
            supervisor,
            shared,
            draining: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        for action in self.leases.tick(Instant::now()) {
            match action {
                LeaseAction::Renew { user, revision } => self.renew(user, revision, ctx),
                LeaseAction::Fence { user, epoch } => self.fence(&user, epoch),
            }
        }
    }

    fn renew(&mut self, user: String, revision: u64, ctx: &mut Context<Self>) {
        let (bucket, me, sent) = (self.bucket.clone(), self.me.clone(), Instant::now());
        let key = user.clone();
        let renewal = async move { bucket.renew(&key, &me, revision).await };
        ctx.spawn(
            renewal
                .into_actor(self)
                .map(move |result, act, _| match result {
                    Ok(next) => {
                        act.shared.metrics.cluster_renewal("ok");
                        act.leases.renewed(&user, revision, next, sent)
                    }
                    Err(why) => {
                        act.shared.metrics.cluster_renewal(match why {
                            RenewRefusal::Conflict => "conflict",
                            RenewRefusal::Unavailable => "unavailable",
                        });
                        tracing::warn!(user = %user, ?why, "lease renewal failed");
                        if let Some(LeaseAction::Fence { user, epoch }) =
                            act.leases.renew_failed(&user, why)
                        {
                            act.fence(&user, epoch);
                        }
                    }
                }),
        );
    }

    /// The lease on `user` can no longer be trusted: its session stops now.
    fn fence(&mut self, user: &str, epoch: u64) {
        tracing::warn!(user = %user, epoch, "lease lost; stopping the user's session here");
        self.shared.metrics.cluster_moved("fenced");
        let supervisor = self.supervisor.clone();
        let user_id = user.to_string();
        actix::spawn(async move {
            if let Ok(Some(session)) = supervisor.send(FindSession { user_id }).await {
                session.do_send(Dispose);
            }
        });
    }
}

impl Actor for ClusterMember {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        self.supervisor.do_send(WatchRetirements {
            to: ctx.address().recipient(),
        });
    }
}

/// A retired session gives its user's lease up, so the user can be
/// claimed anywhere at once.
impl Handler<SessionRetired> for ClusterMember {
    type Result = ();

    fn handle(&mut self, msg: SessionRetired, ctx: &mut Context<Self>) {
        let Some(lease) = self.leases.released(&msg.user_id) else {
            return;
        };
        self.shared.metrics.cluster_moved("released");
        let bucket = self.bucket.clone();
        let user = msg.user_id;
        ctx.spawn(
            async move {
                if let Err(e) = bucket.release(&user, lease.revision).await {
                    // The key lapses by itself within the ttl.
                    tracing::warn!(user = %user, error = %e, "lease release failed");
                }
            }
            .into_actor(self),
        );
    }
}

/// Listens for other instances asking for this instance's users, until
/// the NATS connection closes.
pub async fn serve_handovers(
    bus: Bus,
    instance: &str,
    member: actix::Addr<ClusterMember>,
) -> Result<(), BusError> {
    let mut asks = bus.subscribe(handover_subject(instance)).await?;
    actix_rt::spawn(async move {
        while let Some(msg) = asks.next().await {
            let Some(reply) = msg.reply.clone() else {
                continue;
            };
            match serde_json::from_slice::<HandoverAsk>(&msg.payload) {
                Ok(ask) => member.do_send(ServeHandover { ask, reply }),
                Err(e) => {
                    tracing::warn!(error = %e, "malformed hand-over request");
                    let refused = HandoverAnswer::Refused {
                        reason: format!("malformed request: {e}"),
                    };
                    bus.reply(reply, &refused).await;
                }
            }
        }
    });
    Ok(())
}

// ------------------------------------------------------------ claiming --

/// Whether glasses of `user` may open the user's session here.
#[derive(Message)]
#[rtype(result = "Result<Admission, OwnershipError>")]
pub struct ClaimUser {
    pub user: String,
}

/// The answer to [`ClaimUser`].
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// This instance owns the user.
    Here,
    /// This instance owns the user now, and the previous owner handed the
    /// session over: open it from this.
    Adopt(Box<Handoff>),
    /// Another instance owns the user and would not hand it over.
    Elsewhere(Owner),
    /// The owner does not answer (it stopped): the user is free once its
    /// lease lapses.
    Unreachable(Owner),
    /// This instance is being drained and takes no new users.
    Draining,
}

/// What [`acquire`] achieved.
enum Acquired {
    Won(u64),
    Mine(u64),
    HandedOver {
        revision: u64,
        handoff: Option<Handoff>,
    },
    Elsewhere(Owner),
    Unreachable(Owner),
}

impl Handler<ClaimUser> for ClusterMember {
    type Result = ResponseActFuture<Self, Result<Admission, OwnershipError>>;

    fn handle(&mut self, msg: ClaimUser, _: &mut Context<Self>) -> Self::Result {
        if self.leases.get(&msg.user).is_some() {
            return Box::pin(actix::fut::ready(Ok(Admission::Here)));
        }
        if self.draining {
            return Box::pin(actix::fut::ready(Ok(Admission::Draining)));
        }
        let (bucket, bus, me) = (self.bucket.clone(), self.bus.clone(), self.me.clone());
        let user = msg.user.clone();
        let started = Instant::now();
        let work = async move { acquire(&bucket, &bus, &me, &user).await };
        Box::pin(work.into_actor(self).map(move |result, act, _| {
            let now = Instant::now();
            let user = msg.user;
            match result? {
                Acquired::Won(epoch) => {
                    act.leases.claimed(&user, epoch, now);
                    act.shared.metrics.cluster_moved("claimed");
                    tracing::info!(user = %user, epoch, "user claimed");
                    Ok(Admission::Here)
                }
                // Written by this instance (a claim of the same user in
                // flight, or this instance before a restart): its lease.
                Acquired::Mine(epoch) => {
                    if act.leases.get(&user).is_none() {
                        act.leases.claimed(&user, epoch, now);
                    }
                    Ok(Admission::Here)
                }
                Acquired::HandedOver { revision, handoff } => {
                    act.leases.claimed(&user, revision, now);
                    act.shared.metrics.cluster_moved("handed_in");
                    act.shared
                        .metrics
                        .cluster_handover
                        .observe(started.elapsed().as_secs_f64());
                    let apps = handoff.as_ref().map_or(0, |h| h.apps.len());
                    tracing::info!(user = %user, epoch = revision, apps, took_ms = started.elapsed().as_millis() as u64, "session handed over to this instance");
                    Ok(match handoff {
                        Some(h) => Admission::Adopt(Box::new(h)),
                        None => Admission::Here,
                    })
                }
                Acquired::Elsewhere(owner) => Ok(Admission::Elsewhere(owner)),
                Acquired::Unreachable(owner) => Ok(Admission::Unreachable(owner)),
            }
        }))
    }
}

/// Claims `user`, or has its owner hand it over.
async fn acquire(
    bucket: &OwnershipBucket,
    bus: &Bus,
    me: &Owner,
    user: &str,
) -> Result<Acquired, OwnershipError> {
    let mut last = None;
    for _ in 0..ACQUIRE_ATTEMPTS {
        let owner = match bucket.claim(user, me).await? {
            Claim::Won { epoch } => return Ok(Acquired::Won(epoch)),
            Claim::Owned { by, epoch } if by == *me => return Ok(Acquired::Mine(epoch)),
            Claim::Owned { by, .. } => by,
        };
        let ask = HandoverAsk {
            user: user.to_string(),
            to: me.clone(),
        };
        let answer = bus.request(handover_subject(&owner.instance), &ask).await;
        match answer {
            Ok(HandoverAnswer::Accepted { revision, handoff }) => {
                return Ok(Acquired::HandedOver { revision, handoff })
            }
            // Not the owner any more (its lease just ended): claim again.
            Ok(HandoverAnswer::NotOwner) => {}
            Ok(HandoverAnswer::Retry) => actix_rt::time::sleep(RETRY_PAUSE).await,
            Ok(HandoverAnswer::Refused { reason }) => {
                tracing::warn!(user, owner = %owner.instance, %reason, "owner refused to hand the session over");
                return Ok(Acquired::Elsewhere(owner));
            }
            Err(BusError::NoResponders(_) | BusError::TimedOut(_)) => {
                tracing::warn!(user, owner = %owner.instance, "owner does not answer; the user is free once its lease lapses");
                return Ok(Acquired::Unreachable(owner));
            }
            Err(e) => return Err(OwnershipError::Request(e.to_string())),
        }
        last = Some(owner);
    }
    Ok(match last {
        Some(owner) => Acquired::Unreachable(owner),
        None => Acquired::Elsewhere(me.clone()),
    })
}

/// Whether this instance still holds the lease on `user` (asked once a
/// session is open: a hand-over that came between the claim and the open
/// took the user away, and the session just opened must not run).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct HoldsLease {
    pub user: String,
}

impl Handler<HoldsLease> for ClusterMember {
    type Result = bool;
    fn handle(&mut self, msg: HoldsLease, _: &mut Context<Self>) -> bool {
        self.leases.get(&msg.user).is_some()
    }
}

// ---------------------------------------------------------- handing over --

/// Another instance asks for one of this instance's users.
#[derive(Message)]
#[rtype(result = "()")]
struct ServeHandover {
    ask: HandoverAsk,
    reply: sightline_cluster::Subject,
}

impl Handler<ServeHandover> for ClusterMember {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: ServeHandover, _: &mut Context<Self>) -> Self::Result {
        let ServeHandover { ask, reply } = msg;
        let bus = self.bus.clone();
        let Some(revision) = self.leases.begin_transfer(&ask.user) else {
            let answer = if self.leases.get(&ask.user).is_some() {
                HandoverAnswer::Retry
            } else {
                HandoverAnswer::NotOwner
            };
            return Box::pin(async move { bus.reply(reply, &answer).await }.into_actor(self));
        };
        let bucket = self.bucket.clone();
        let (user, to) = (ask.user.clone(), ask.to.clone());
        let transfer = async move { bucket.transfer(&user, revision, &to).await };
        Box::pin(transfer.into_actor(self).then(move |result, act, _| {
            let bus = act.bus.clone();
            let supervisor = act.supervisor.clone();
            let user = ask.user.clone();
            let answer: Option<u64> = match result {
                Ok(next) => {
                    act.leases.released(&user);
                    act.shared.metrics.cluster_moved("handed_out");
                    tracing::info!(user = %user, to = %ask.to.instance, "handing the session over");
                    Some(next)
                }
                Err(why) => {
                    tracing::warn!(user = %user, ?why, "lease transfer failed");
                    if let Some(LeaseAction::Fence { user, epoch }) =
                        act.leases.renew_failed(&user, why)
                    {
                        act.fence(&user, epoch);
                    }
                    None
                }
            };
            async move {
                let Some(revision) = answer else {
                    let refused = HandoverAnswer::Refused {
                        reason: "the lease could not be transferred".into(),
                    };
                    return bus.reply(reply, &refused).await;
                };
                let handoff = match supervisor.send(FindSession { user_id: user }).await {
                    Ok(Some(session)) => session.send(HandOver).await.ok(),
                    _ => None,
                };
                let accepted = HandoverAnswer::Accepted { revision, handoff };
                bus.reply(reply, &accepted).await;
            }
            .into_actor(act)
        }))
    }
}

// ------------------------------------------------------------- draining --

/// Stops taking new users and sends every glasses connection away, so
/// the phones reconnect to other instances, which ask for the sessions.
/// Answers how many users this instance still owns.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Drain;

impl Handler<Drain> for ClusterMember {
    type Result = usize;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> usize {
        if !self.draining {
            self.draining = true;
            tracing::info!(
                users = self.leases.len(),
                "draining: sending every user's glasses to the other instances"
            );
            self.supervisor
                .do_send(sightline_runtime::supervisor::SendGlassesAway {
                    code: sightline_runtime::link::close::RESTARTING,
                    reason: "This instance is restarting; reconnect",
                });
        }
        self.leases.len()
    }
}

/// Gives up every lease still held (the end of a drain): the users' next
/// owners restore their apps from the store.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseAll;

impl Handler<ReleaseAll> for ClusterMember {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: ReleaseAll, _: &mut Context<Self>) -> Self::Result {
        let users: Vec<(String, u64)> = self
            .leases
            .users()
            .into_iter()
            .filter_map(|u| self.leases.released(&u).map(|l| (u, l.revision)))
            .collect();
        let bucket = self.bucket.clone();
        Box::pin(
            async move {
                for (user, revision) in users {
                    if let Err(e) = bucket.release(&user, revision).await {
                        tracing::warn!(user = %user, error = %e, "lease release failed");
                    }
                }
            }
            .into_actor(self),
        )
    }
}
