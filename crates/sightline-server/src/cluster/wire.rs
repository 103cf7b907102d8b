//! What instances of a cluster say to each other, as JSON on the
//! [`sightline_cluster::Bus`]: hand-overs, changes and questions for a
//! session another instance owns, and app-to-app messaging.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sightline_cluster::Owner;
use sightline_runtime::handoff::Handoff;

/// "Hand me this user's session": from the instance the user's glasses
/// reached to the instance that owns the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandoverAsk {
    pub user: String,
    pub to: Owner,
}

/// The owner's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HandoverAnswer {
    /// The lease is the asker's from `revision` on; the session comes with
    /// it (`None`: the owner had no session for the user any more).
    Accepted {
        revision: u64,
        handoff: Option<Handoff>,
    },
    /// This instance does not own the user (any more): claim again.
    NotOwner,
    /// A lease renewal is in flight: ask again in a moment.
    Retry,
    /// It cannot hand over now (the ownership bucket is unavailable).
    Refused { reason: String },
}

/// A change or a question for `user`'s session, sent to its owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAsk {
    pub user: String,
    pub command: SessionCommand,
}

/// What another instance may ask of a session. Each is what a REST
/// handler or an admin view of this instance would ask a local session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SessionCommand {
    /// The user changed MentraOS settings (`PUT /api/mentraos-settings`).
    MentraosSettingsChanged { changes: Map<String, Value> },
    /// The user uninstalled an app: it stops now.
    AppUninstalled { package: String },
    /// The user changed an app's settings; answered with whether the
    /// app was told.
    AppSettingsChanged {
        package: String,
        stored: Value,
        settings: Value,
    },
    /// Whether the app runs with an accepted connection (answers `bool`).
    AppIsConnected { package: String },
    /// The session as `GET /sessions/{user}` shows it.
    Describe,
    /// The supervision tree of the user's actors, as `GET /actors?user=`.
    Actors { package: Option<String> },
    /// The app's socket reached another instance: send the app a fresh
    /// `session_request` naming the owner.
    RepointApp { package: String },
}

/// The owner's answer to a [`SessionAsk`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SessionAnswer {
    Done {
        value: Value,
    },
    /// The owner has no session for the user (it just ended, or moved).
    NoSession,
}
