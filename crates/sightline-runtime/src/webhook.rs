//! Webhooks: the HTTP calls Sightline makes to app servers.
//!
//! A `session_request` asks the app server to connect to `/app-ws`; the SDK
//! answers it only after the app has connected and its `onSession` finished,
//! so the call runs *concurrently* with the app's WebSocket, never in front
//! of it. Retrying is the session's decision (it knows whether the app has
//! connected meanwhile); this module makes one attempt per call.

use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use crate::shared::RuntimeShared;

/// Header carrying the id that ties an app start to its log lines.
pub const CORRELATION_HEADER: &str = "x-sightline-correlation-id";

/// Why one webhook attempt failed.
#[derive(Debug, Error, Clone)]
pub enum WebhookError {
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not answer within {ms} ms")]
    Timeout { url: String, ms: u64 },
    #[error("not calling {origin}: it failed repeatedly; next try in {retry_in_ms} ms")]
    CircuitOpen { origin: String, retry_in_ms: u64 },
}

impl WebhookError {
    /// The failure's class, as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::Unreachable { .. } => "unreachable",
            WebhookError::Status { .. } => "status",
            WebhookError::Timeout { .. } => "timeout",
            WebhookError::CircuitOpen { .. } => "circuit_open",
        }
    }
}

/// Joins an app's public URL and a path, tolerating a trailing slash.
pub fn endpoint(public_url: &str, path: &str) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), path)
}

/// POSTs through the app server's circuit breaker: refused at once while
/// the breaker is open (counted), and the outcome recorded. Every call
/// Sightline makes to an app server goes this way.
pub async fn post_guarded<T: Serialize>(
    shared: &RuntimeShared,
    url: &str,
    body: &T,
    timeout: Duration,
    correlation_id: &str,
) -> Result<(), WebhookError> {
    let permit = match shared.breakers.check(url, Instant::now()) {
        Ok(permit) => permit,
        Err(open) => {
            shared.figures.webhook_fast_failure();
            shared.metrics.webhook(Duration::ZERO, Some("circuit_open"));
            return Err(WebhookError::CircuitOpen {
                origin: open.origin,
                retry_in_ms: open.retry_in.as_millis() as u64,
            });
        }
    };
    let started = Instant::now();
    let result = post_json(url, body, timeout, correlation_id).await;
    let failure = result.as_ref().err().map(WebhookError::reason);
    shared.metrics.webhook(started.elapsed(), failure);
    if permit.record(result.is_ok(), Instant::now()).opened() {
        tracing::warn!(url = %url, correlation_id = %correlation_id, "app server keeps failing; its circuit breaker is open and calls to it fail fast for a while");
    }
    result
}

/// POSTs `body` as JSON to `url` once. Success is any 2xx answer.
pub async fn post_json<T: Serialize>(
    url: &str,
    body: &T,
    timeout: Duration,
    correlation_id: &str,
) -> Result<(), WebhookError> {
    let client = awc::Client::builder().timeout(timeout).finish();
    let res = client
        .post(url)
        .insert_header((CORRELATION_HEADER, correlation_id))
        .send_json(body)
        .await;
    match res {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(WebhookError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        }),
        Err(awc::error::SendRequestError::Timeout) => Err(WebhookError::Timeout {
            url: url.to_string(),
            ms: timeout.as_millis() as u64,
        }),
        Err(e) => Err(WebhookError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_joins_paths() {
        assert_eq!(endpoint("http://a:1/", "/webhook"), "http://a:1/webhook");
        assert_eq!(endpoint("http://a:1", "/webhook"), "http://a:1/webhook");
    }

    #[actix_rt::test]
    async fn https_webhooks_have_a_tls_client() {
        // A closed port: the call must fail as unreachable, proving the TLS
        // connector was built (a missing crypto provider would panic).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let url = format!("https://127.0.0.1:{port}/webhook");
        let err = post_json(&url, &serde_json::json!({}), Duration::from_secs(2), "t")
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::Unreachable { .. }), "{err}");
    }
}
