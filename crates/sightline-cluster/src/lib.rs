//! The rules of a Sightline cluster, as plain state.
//!
//! In cluster mode every user's session lives on exactly one instance at a
//! time. Ownership is a lease in a NATS JetStream key-value bucket (one key
//! per user): an instance *claims* a user by creating the key, keeps it by
//! *renewing* it (a compare-and-set on the key's revision) well inside the
//! bucket's time-to-live, and loses it when a renewal is refused or when it
//! has not confirmed one for longer than is safe. The revision at which a
//! claim was created is the lease's **epoch**: JetStream revisions grow
//! across the whole bucket, expired keys included, so a later owner always
//! has a larger epoch than every earlier one. Everything an owner sends to
//! other instances carries its epoch; a message from an older epoch than
//! the one known for that user is not acted on (fencing).
//!
//! - [`lease`]: the decisions, in the style of the display manager: each
//!   input takes the time and returns what to do, so the rules are tested
//!   without sockets, NATS or sleeping;
//! - [`ownership`]: the bucket itself, on NATS JetStream (claim, renew,
//!   transfer, release, look up), tested against a real `nats-server`;
//! - [`bus`]: requests and announcements between instances (hand-overs,
//!   changes for another instance's sessions, app-to-app messaging).
//!
//! The server carries the lease's actions out with the bucket.

pub mod bus;
pub mod lease;
pub mod ownership;

pub use async_nats::Subject;
pub use bus::{Bus, BusError, Listener};
pub use lease::{Lease, LeaseAction, LeaseConfig, Leases, RenewRefusal};
pub use ownership::{Claim, Owner, OwnershipBucket, OwnershipError};
