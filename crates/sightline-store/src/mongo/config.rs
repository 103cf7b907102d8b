//! How Sightline connects to MongoDB: the URI plus the pool and timeout
//! settings that decide how the server behaves when the database is slow or
//! gone.
//!
//! Options written in the URI (`maxPoolSize=...`, `connectTimeoutMS=...`)
//! are read first; the fields set here override them. The defaults are tuned
//! for fail-fast behaviour: a store call that cannot complete within
//! [`MongoConfig::operation_timeout`] fails with a clear error instead of
//! holding a user's session or an HTTP request.

use std::time::Duration;

/// Database used when neither the URI (`mongodb://host/<db>`) nor
/// [`MongoConfig::database`] names one.
pub const DEFAULT_DATABASE: &str = "sightline";

/// Connection settings of [`MongoStore`](super::MongoStore).
#[derive(Clone)]
pub struct MongoConfig {
    /// `mongodb://` or `mongodb+srv://` connection string.
    pub uri: String,
    /// Database name; `None` takes the URI's, else [`DEFAULT_DATABASE`].
    pub database: Option<String>,
    /// Most connections the pool opens to each server.
    pub max_pool_size: u32,
    /// Connections the pool keeps open even when idle.
    pub min_pool_size: u32,
    /// Timeout of establishing one TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Deadline of every store call (server selection, queueing for a pooled
    /// connection and the round trip together). Also used as the driver's
    /// server-selection timeout, so an unreachable database is reported
    /// within this time.
    pub operation_timeout: Duration,
    /// How often the driver checks a server it is connected to; a database
    /// that comes back is noticed within this time (and immediately when a
    /// call is waiting for it).
    pub heartbeat_interval: Duration,
}

impl MongoConfig {
    /// Defaults for `uri`: pool of 1..=20 connections per server, 2 s
    /// connect timeout, 3 s per call, 2 s heartbeat.
    pub fn new(uri: impl Into<String>) -> Self {
        MongoConfig {
            uri: uri.into(),
            database: None,
            max_pool_size: 20,
            min_pool_size: 1,
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(2),
        }
    }

    /// The URI with any password replaced, for logs and error messages.
    pub fn redacted_uri(&self) -> String {
        redact_uri(&self.uri)
    }
}

impl std::fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoConfig")
            .field("uri", &self.redacted_uri())
            .field("database", &self.database)
            .field("max_pool_size", &self.max_pool_size)
            .field("min_pool_size", &self.min_pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish()
    }
}

/// `mongodb://user:secret@host/db` → `mongodb://user:***@host/db`.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{hosts}{tail}")
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_uri("mongodb://app:s3cret@db1:27017,db2/sightline?tls=true"),
            "mongodb://app:***@db1:27017,db2/sightline?tls=true"
        );
        assert_eq!(redact_uri("mongodb://db:27017"), "mongodb://db:27017");
        let c = MongoConfig::new("mongodb+srv://u:p@cluster.example.net/x");
        assert!(!format!("{c:?}").contains(":p@"));
    }
}
