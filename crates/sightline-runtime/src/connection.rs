//! What a connection is for, as the session, its health monitor and the
//! runtime's figures all speak of it. Plain data, so that each of them can
//! name a connection's role without importing the others.

use serde::Serialize;

/// What a connection is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionRole {
    Glasses,
    App { package: String },
}
