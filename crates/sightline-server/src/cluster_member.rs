//! This instance's membership of a cluster: the users it owns.
//!
//! Glasses that connect here ask [`ClaimUser`] before their session is
//! opened: a user nobody owns is claimed in the ownership bucket (NATS
//! JetStream key-value), a user this instance already owns is let in, and
//! a user owned by another instance is refused with that instance's name
//! (handing the session over is not built yet). Every 250 ms the lease
//! table ([`sightline_cluster::Leases`]) says which leases to renew and
//! which to fence; a fenced user's session is disposed of at once. A
//! session the supervisor retires gives its lease up.

use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseActFuture, WrapFuture,
};
use sightline_cluster::{
    Claim, LeaseAction, LeaseConfig, Leases, Owner, OwnershipBucket, OwnershipError,
};
use sightline_runtime::session::Dispose;
use sightline_runtime::supervisor::{FindSession, SessionRetired, WatchRetirements};
use sightline_runtime::SessionSupervisor;

/// How often the lease table is asked what is due.
const TICK: Duration = Duration::from_millis(250);

/// The cluster member actor.
pub struct ClusterMember {
    bucket: OwnershipBucket,
    me: Owner,
    leases: Leases,
    supervisor: actix::Addr<SessionSupervisor>,
}

impl ClusterMember {
    pub fn new(
        bucket: OwnershipBucket,
        me: Owner,
        lease: LeaseConfig,
        supervisor: actix::Addr<SessionSupervisor>,
    ) -> Self {
        ClusterMember {
            bucket,
            me,
            leases: Leases::new(lease),
            supervisor,
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
                    Ok(next) => act.leases.renewed(&user, revision, next, sent),
                    Err(why) => {
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

/// Whether glasses of `user` may open the user's session here.
#[derive(Message)]
#[rtype(result = "Result<Admission, OwnershipError>")]
pub struct ClaimUser {
    pub user: String,
}

/// The answer to [`ClaimUser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// This instance owns the user.
    Here,
    /// Another instance does.
    Elsewhere(Owner),
}

impl Handler<ClaimUser> for ClusterMember {
    type Result = ResponseActFuture<Self, Result<Admission, OwnershipError>>;

    fn handle(&mut self, msg: ClaimUser, _: &mut Context<Self>) -> Self::Result {
        if self.leases.get(&msg.user).is_some() {
            return Box::pin(actix::fut::ready(Ok(Admission::Here)));
        }
        let (bucket, me) = (self.bucket.clone(), self.me.clone());
        let user = msg.user.clone();
        let claim = async move { bucket.claim(&user, &me).await };
        Box::pin(claim.into_actor(self).map(move |result, act, _| {
            let now = Instant::now();
            match result? {
                Claim::Won { epoch } => {
                    act.leases.claimed(&msg.user, epoch, now);
                    tracing::info!(user = %msg.user, epoch, "user claimed");
                    Ok(Admission::Here)
                }
                // Written by this instance (a claim of the same user in
                // flight, or this instance before a restart): its lease.
                Claim::Owned { by, epoch } if by == act.me => {
                    if act.leases.get(&msg.user).is_none() {
                        act.leases.claimed(&msg.user, epoch, now);
                    }
                    Ok(Admission::Here)
                }
                Claim::Owned { by, .. } => Ok(Admission::Elsewhere(by)),
            }
        }))
    }
}
