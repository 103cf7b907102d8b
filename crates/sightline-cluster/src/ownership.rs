//! The ownership bucket: one NATS JetStream key-value entry per user
//! whose session lives somewhere in the cluster, naming the instance that
//! owns it.
//!
//! - A claim *creates* the user's key: JetStream refuses a create when the
//!   key exists, so of two instances racing for a user exactly one wins;
//!   the loser learns who did.
//! - A renewal *updates* the key only if its revision is still the one the
//!   owner last wrote (compare-and-set); any other write in between makes
//!   it a conflict, and the owner is fenced (see [`crate::lease`]).
//! - The bucket's `max_age` is the lease's time-to-live: a key that is not
//!   written again within it disappears, and the user can be claimed by
//!   another instance (after an instance dies, within `ttl`).
//! - A release deletes the key if it is still at the owner's revision.
//!
//! The revision a claim was created at is the owner's epoch: revisions are
//! the bucket stream's sequence numbers, so they only grow, across expired
//! and deleted keys too.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::lease::RenewRefusal;

/// Who owns a user's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The instance's id (on every log line and metric it writes).
    pub instance: String,
    /// Where apps reach that instance (`SIGHTLINE_PUBLIC_WS_URL`).
    pub url: String,
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This instance owns the user from `epoch` on.
    Won { epoch: u64 },
    /// Another instance does (since `epoch`).
    Owned { by: Owner, epoch: u64 },
}

/// What can go wrong talking to the bucket.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("cannot reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("ownership bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("ownership bucket request failed: {0}")]
    Request(String),
    #[error("user id is empty or longer than {MAX_USER_BYTES} bytes")]
    InvalidUser,
}

/// The longest user id a key is made for.
pub const MAX_USER_BYTES: usize = 320;

/// The ownership bucket of a cluster.
#[derive(Clone)]
pub struct OwnershipBucket {
    kv: kv::Store,
    client: async_nats::Client,
}

impl OwnershipBucket {
    /// Connects to NATS at `url` and opens (creating it if needed) the
    /// bucket `bucket`, whose keys live `ttl` after their last write.
    pub async fn open(url: &str, bucket: &str, ttl: Duration) -> Result<Self, OwnershipError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| OwnershipError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let config = kv::Config {
            bucket: bucket.to_string(),
            description: "Sightline: which instance owns each user's session".into(),
            history: 1,
            max_age: ttl,
            ..Default::default()
        };
        // Instances starting together race to create the bucket: the one
        // that loses opens what the other made.
        let kv = match js.create_key_value(config).await {
            Ok(kv) => kv,
            Err(create) => js
                .get_key_value(bucket)
                .await
                .map_err(|_| OwnershipError::Bucket {
                    bucket: bucket.to_string(),
                    reason: create.to_string(),
                })?,
        };
        Ok(OwnershipBucket { kv, client })
    }

    /// The NATS connection the bucket uses (for the [`crate::Bus`]).
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }

    /// Hands `user` from its owner, who last wrote the key at `revision`,
    /// to `to`: a compare-and-set like a renewal, so it fails if the lease
    /// changed meanwhile. Returns the revision the new owner renews from.
    pub async fn transfer(
        &self,
        user: &str,
        revision: u64,
        to: &Owner,
    ) -> Result<u64, RenewRefusal> {
        self.write_at(user, to, revision).await
    }

    /// Writes `owner` into `user`'s key if it is still at `revision`.
    async fn write_at(
        &self,
        user: &str,
        owner: &Owner,
        revision: u64,
    ) -> Result<u64, RenewRefusal> {
        let key = key_of(user).map_err(|_| RenewRefusal::Conflict)?;
        match self.kv.update(&key, encode(owner), revision).await {
            Ok(next) => Ok(next),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(RenewRefusal::Conflict)
            }
            Err(_) => Err(RenewRefusal::Unavailable),
        }
    }

    /// Claims `user` for `me`: won, or owned by someone else.
    pub async fn claim(&self, user: &str, me: &Owner) -> Result<Claim, OwnershipError> {
        let key = key_of(user)?;
        match self.kv.create(&key, encode(me)).await {
            Ok(epoch) => Ok(Claim::Won { epoch }),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match self.owner(user).await? {
                    Some((by, epoch)) => Ok(Claim::Owned { by, epoch }),
                    // Gone between the create and the read (released or
                    // expired): claim again, once.
                    None => match self.kv.create(&key, encode(me)).await {
                        Ok(epoch) => Ok(Claim::Won { epoch }),
                        Err(e) => Err(OwnershipError::Request(e.to_string())),
                    },
                }
            }
            Err(e) => Err(OwnershipError::Request(e.to_string())),
        }
    }

    /// Renews `me`'s lease on `user`, last written at `revision`; returns
    /// the key's new revision.
    pub async fn renew(&self, user: &str, me: &Owner, revision: u64) -> Result<u64, RenewRefusal> {
        self.write_at(user, me, revision).await
    }

    /// Gives `user` up, if the key is still at `revision`.
    pub async fn release(&self, user: &str, revision: u64) -> Result<(), OwnershipError> {
        let key = key_of(user)?;
        self.kv
            .delete_expect_revision(&key, Some(revision))
            .await
            .map_err(|e| OwnershipError::Request(e.to_string()))
    }

    /// The owner of `user` and the epoch of its claim, if anyone owns it.
    pub async fn owner(&self, user: &str) -> Result<Option<(Owner, u64)>, OwnershipError> {
        let key = key_of(user)?;
        let entry = self
            .kv
            .entry(&key)
            .await
            .map_err(|e| OwnershipError::Request(e.to_string()))?;
        Ok(entry.and_then(|e| match e.operation {
            kv::Operation::Put => serde_json::from_slice::<Owner>(&e.value)
                .ok()
                .map(|o| (o, e.revision)),
            kv::Operation::Delete | kv::Operation::Purge => None,
        }))
    }
}

fn encode(owner: &Owner) -> Bytes {
    // Serialising two strings cannot fail.
    Bytes::from(serde_json::to_vec(owner).unwrap_or_default())
}

/// A user id as a key: hex of its bytes (key characters are limited;
/// user ids are e-mail addresses).
fn key_of(user: &str) -> Result<String, OwnershipError> {
    if user.is_empty() || user.len() > MAX_USER_BYTES {
        return Err(OwnershipError::InvalidUser);
    }
    let mut key = String::with_capacity(2 + 2 * user.len());
    key.push_str("u.");
    for b in user.bytes() {
        key.push_str(&format!("{b:02x}"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_become_valid_bounded_keys() {
        assert_eq!(key_of("a@b.c").ok().as_deref(), Some("u.6140622e63"));
        assert!(key_of("").is_err());
        assert!(key_of(&"x".repeat(MAX_USER_BYTES + 1)).is_err());
        let k = key_of("Ünïcode user+tag@example.com").unwrap_or_default();
        assert!(k
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'u' || b == b'.'));
    }
}
