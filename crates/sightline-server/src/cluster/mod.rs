//! This instance's part in a cluster (`SIGHTLINE_NATS_URL`).
//!
//! - [`member`]: the users this instance owns — claims, lease renewals,
//!   fencing, and hand-overs in both directions;
//! - [`sessions`]: a user's session wherever it lives — REST changes and
//!   admin views reach the owner's session over NATS;
//! - [`messaging`]: app-to-app messaging between users on different
//!   instances;
//! - [`roster`]: which instances there are, for the admin views;
//! - [`wire`]: what instances say to each other.
//!
//! Without cluster mode none of this runs and no NATS is needed.

pub mod member;
pub mod messaging;
pub mod roster;
pub mod sessions;
pub mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use sightline_cluster::{Bus, BusError, Owner, OwnershipBucket, OwnershipError};

/// How long a request to another instance waits for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// What the rest of the server holds of the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub member: Addr<member::ClusterMember>,
    pub bucket: OwnershipBucket,
    pub bus: Bus,
    /// This instance, as the bucket names it.
    pub me: Owner,
    /// Set when the instance is being drained (`SIGTERM`): `/ready`
    /// answers 503 and glasses are sent to the others.
    pub draining: Arc<AtomicBool>,
}

impl Cluster {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Drains this instance: every session moves to the other instances as
    /// its glasses reconnect there; returns once none is left here or
    /// `within` has passed, and gives up the leases of those left (their
    /// next owners restore them from the store). Answers how many were left.
    pub async fn drain(&self, within: Duration) -> usize {
        self.draining.store(true, Ordering::Relaxed);
        let deadline = std::time::Instant::now() + within;
        let mut left = self.member.send(member::Drain).await.unwrap_or(0);
        while left > 0 && std::time::Instant::now() < deadline {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            left = self.member.send(member::Drain).await.unwrap_or(0);
        }
        if left > 0 {
            let _ = self.member.send(member::ReleaseAll).await;
        }
        left
    }
}

/// Why something could not be done across the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
}

impl From<ClusterError> for crate::error::ApiError {
    fn from(e: ClusterError) -> Self {
        crate::error::ApiError::Cluster(e.to_string())
    }
}
