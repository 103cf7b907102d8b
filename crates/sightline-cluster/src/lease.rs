//! The leases one instance holds: when to renew each, and when a lease
//! must be given up at once (fencing).
//!
//! Timing, for a bucket whose keys live `ttl` after their last write:
//! - a renewal is due `renew_every` after the last confirmed one (a third
//!   of the ttl by default), and at most one is in flight per lease;
//! - a lease whose last confirmed renewal is older than `ttl - margin` is
//!   **fenced**: the session stops before the key can expire and another
//!   instance claim it, so two owners never act at once (the margin covers
//!   clock drift between this instance and the NATS server, and the time a
//!   stop takes);
//! - a renewal refused because the key's revision moved (someone else
//!   wrote it) fences at once: another instance owns the user.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Timings of the leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a key lives in the bucket after its last write.
    pub ttl: Duration,
    /// A renewal is due this long after the last confirmed one.
    pub renew_every: Duration,
    /// A lease is fenced when its last confirmed renewal is older than
    /// `ttl - margin`.
    pub margin: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: Duration::from_secs(6),
            renew_every: Duration::from_secs(2),
            margin: Duration::from_millis(1500),
        }
    }
}

impl LeaseConfig {
    /// The age of the last confirmed renewal at which a lease is fenced.
    pub fn fence_after(&self) -> Duration {
        self.ttl.saturating_sub(self.margin)
    }

    /// Whether the timings can work: renewals come before the fence, and
    /// the fence before the key expires.
    pub fn check(&self) -> Result<(), String> {
        if self.margin.is_zero() || self.margin >= self.ttl {
            return Err(format!(
                "the lease margin ({:?}) must be above zero and below the ttl ({:?})",
                self.margin, self.ttl
            ));
        }
        if self.renew_every.is_zero() || self.renew_every >= self.fence_after() {
            return Err(format!(
                "renewals ({:?}) must come before the fence ({:?} after the last one)",
                self.renew_every,
                self.fence_after()
            ));
        }
        Ok(())
    }
}

/// One lease held by this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The revision at which the claim was created: the owner's epoch.
    pub epoch: u64,
    /// The key's revision after the last confirmed write (the
    /// compare-and-set token of the next renewal).
    pub revision: u64,
    /// When the last write was confirmed.
    pub confirmed_at: Instant,
    /// A renewal has been sent and not answered.
    pub renewing: bool,
}

/// What the server must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Write the user's key again if its revision is still `revision`.
    Renew { user: String, revision: u64 },
    /// Stop the user's session now: the lease can no longer be trusted
    /// (nothing it does from here is acted on by others).
    Fence { user: String, epoch: u64 },
}

/// Why a renewal did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewRefusal {
    /// The key's revision is not the one held: another instance wrote it.
    Conflict,
    /// NATS did not answer (or answered an error): the lease is kept
    /// until it is too old to trust.
    Unavailable,
}

/// Every lease this instance holds.
#[derive(Debug, Default)]
pub struct Leases {
    config: LeaseConfig,
    held: HashMap<String, Lease>,
}

impl Leases {
    pub fn new(config: LeaseConfig) -> Self {
        Leases {
            config,
            held: HashMap::new(),
        }
    }

    /// A claim was created (or handed over to this instance) at `revision`.
    pub fn claimed(&mut self, user: &str, revision: u64, now: Instant) {
        self.held.insert(
            user.to_string(),
            Lease {
                epoch: revision,
                revision,
                confirmed_at: now,
                renewing: false,
            },
        );
    }

    /// The lease on `user`, if this instance holds it.
    pub fn get(&self, user: &str) -> Option<&Lease> {
        self.held.get(user)
    }

    /// Every user whose lease is held.
    pub fn users(&self) -> Vec<String> {
        self.held.keys().cloned().collect()
    }

    /// How many leases are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The renewals due and the leases to fence at `now`. A fenced lease
    /// is forgotten.
    pub fn tick(&mut self, now: Instant) -> Vec<LeaseAction> {
        let mut actions = Vec::new();
        let fence_after = self.config.fence_after();
        self.held.retain(|user, lease| {
            let age = now.saturating_duration_since(lease.confirmed_at);
            if age >= fence_after {
                actions.push(LeaseAction::Fence {
                    user: user.clone(),
                    epoch: lease.epoch,
                });
                return false;
            }
            if !lease.renewing && age >= self.config.renew_every {
                lease.renewing = true;
                actions.push(LeaseAction::Renew {
                    user: user.clone(),
                    revision: lease.revision,
                });
            }
            true
        });
        actions.sort_by(|a, b| action_user(a).cmp(action_user(b)));
        actions
    }

    /// A renewal was confirmed: the key now has `revision`. `sent_at` is
    /// when the renewal was sent, the latest moment the key is known to
    /// have been written (an answer that took long does not extend the
    /// lease past what the server saw).
    pub fn renewed(&mut self, user: &str, from: u64, revision: u64, sent_at: Instant) {
        if let Some(lease) = self.held.get_mut(user) {
            if lease.revision == from {
                lease.revision = revision;
                lease.confirmed_at = lease.confirmed_at.max(sent_at);
                lease.renewing = false;
            }
        }
    }

    /// The lease on `user` is about to be handed to another instance: the
    /// revision to transfer it from, with renewals held back meanwhile (a
    /// renewal racing the transfer would fence the session being handed
    /// over). `None` if it is not held, or a renewal is in flight (try
    /// again in a moment). The transfer's outcome is told with
    /// [`Leases::released`] or [`Leases::renew_failed`].
    pub fn begin_transfer(&mut self, user: &str) -> Option<u64> {
        let lease = self.held.get_mut(user)?;
        if lease.renewing {
            return None;
        }
        lease.renewing = true;
        Some(lease.revision)
    }

    /// A renewal did not go through. A conflict fences at once; NATS being
    /// unavailable leaves the lease to the next tick (fenced when too old).
    pub fn renew_failed(&mut self, user: &str, why: RenewRefusal) -> Option<LeaseAction> {
        match why {
            RenewRefusal::Conflict => self.held.remove(user).map(|l| LeaseAction::Fence {
                user: user.to_string(),
                epoch: l.epoch,
            }),
            RenewRefusal::Unavailable => {
                if let Some(lease) = self.held.get_mut(user) {
                    lease.renewing = false;
                }
                None
            }
        }
    }

    /// The session was handed over or ended: the lease is given up (the
    /// server deletes or transfers the key).
    pub fn released(&mut self, user: &str) -> Option<Lease> {
        self.held.remove(user)
    }
}

fn action_user(a: &LeaseAction) -> &str {
    match a {
        LeaseAction::Renew { user, .. } | LeaseAction::Fence { user, .. } => user,
    }
}

#[cfg(test)]
mod tests;
