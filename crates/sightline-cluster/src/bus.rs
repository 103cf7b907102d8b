//! Requests and announcements between the instances of a cluster, on NATS
//! core: request/reply to one instance (a hand-over, a change for a
//! session it owns), publish to all (app-to-app messaging). Every payload
//! is JSON; every request has a deadline, and "nobody listens" is told
//! apart from "nobody answered in time", so a caller can say which.
//!
//! Subjects name the instance they go to: `sightline.instance.<id>.<what>`.
//! Instance ids are therefore limited to letters, digits, `-` and `_`
//! ([`valid_instance_id`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Message, Request, RequestErrorKind, Subscriber};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The subject an instance takes hand-over requests on.
pub fn handover_subject(instance: &str) -> String {
    format!("sightline.instance.{instance}.handover")
}

/// The subject an instance takes requests for the sessions it owns on.
pub fn session_subject(instance: &str) -> String {
    format!("sightline.instance.{instance}.session")
}

/// Where every instance announces its app-to-app messaging.
pub const MESSAGING_SUBJECT: &str = "sightline.messaging";

/// Where a changed app registration is announced to every instance.
pub const APPS_SUBJECT: &str = "sightline.apps";

/// Where every instance answers "who is there" (the cluster's roster).
pub const ROSTER_SUBJECT: &str = "sightline.instances";

/// Whether `id` can name an instance (a NATS subject token, and a metric
/// label value): 1–64 letters, digits, `-` or `_`.
pub fn valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What can go wrong between instances.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No instance listens on the subject (the instance is gone).
    #[error("no instance answers on {0}")]
    NoResponders(String),
    #[error("no answer on {0} in time")]
    TimedOut(String),
    #[error("request on {subject} failed: {reason}")]
    Failed { subject: String, reason: String },
    #[error("malformed answer on {subject}: {reason}")]
    Malformed { subject: String, reason: String },
}

/// A NATS connection, for requests and announcements as JSON.
#[derive(Clone)]
pub struct Bus {
    client: Client,
    timeout: Duration,
    /// Set by [`Bus::close`]: every [`Listener`] ends.
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

/// A subscription of a [`Bus`]: messages until NATS closes or the bus is
/// closed, then it unsubscribes (while the runtime still runs, so a
/// stopping process leaves nothing behind).
pub struct Listener {
    subscriber: Subscriber,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl Listener {
    /// The next message, or `None` once the subscription ended.
    pub async fn next(&mut self) -> Option<Message> {
        let Listener { subscriber, closed } = self;
        let bus_closed = async {
            loop {
                let is_closed = *closed.borrow_and_update();
                if is_closed {
                    return;
                }
                if closed.changed().await.is_err() {
                    // The bus is gone without closing: NATS ends the rest.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            m = futures_util::StreamExt::next(subscriber) => m,
            _ = bus_closed => {
                let _ = subscriber.unsubscribe().await;
                None
            }
        }
    }
}

impl Bus {
    /// Requests on `client` wait at most `timeout` for their answer.
    pub fn new(client: Client, timeout: Duration) -> Self {
        Bus {
            client,
            timeout,
            closed: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Ends every listener (the instance leaves the cluster).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Asks whoever listens on `subject` and decodes the answer.
    pub async fn request<Q: Serialize, A: DeserializeOwned>(
        &self,
        subject: String,
        question: &Q,
    ) -> Result<A, BusError> {
        let payload = encode(question);
        let request = Request::new().payload(payload).timeout(Some(self.timeout));
        let answer = self
            .client
            .send_request(subject.clone(), request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders(subject.clone()),
                RequestErrorKind::TimedOut => BusError::TimedOut(subject.clone()),
                RequestErrorKind::Other => BusError::Failed {
                    subject: subject.clone(),
                    reason: e.to_string(),
                },
            })?;
        serde_json::from_slice(&answer.payload).map_err(|e| BusError::Malformed {
            subject,
            reason: e.to_string(),
        })
    }

    /// Asks everyone listening on `subject` and collects the answers that
    /// come within `within`, at most `max` of them (one per instance).
    pub async fn gather<Q: Serialize, A: DeserializeOwned>(
        &self,
        subject: String,
        question: &Q,
        within: Duration,
        max: usize,
    ) -> Result<Vec<A>, BusError> {
        let inbox = self.client.new_inbox();
        let mut answers = self.subscribe_raw(inbox.clone()).await?;
        self.client
            .publish_with_reply(subject.clone(), inbox, encode(question))
            .await
            .map_err(|e| BusError::Failed {
                subject,
                reason: e.to_string(),
            })?;
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < max {
            match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut answers))
                .await
            {
                Ok(Some(m)) => {
                    if let Ok(a) = serde_json::from_slice(&m.payload) {
                        out.push(a);
                    }
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Tells everyone listening on `subject` (nobody may).
    pub async fn publish<Q: Serialize>(
        &self,
        subject: String,
        message: &Q,
    ) -> Result<(), BusError> {
        self.client
            .publish(subject.clone(), encode(message))
            .await
            .map_err(|e| BusError::Failed {
                subject,
                reason: e.to_string(),
            })
    }

    /// Answers a request whose reply subject is `reply`.
    pub async fn reply<A: Serialize>(&self, reply: async_nats::Subject, answer: &A) {
        // An asker that gave up is no longer listening; nothing to do.
        let _ = self.client.publish(reply, encode(answer)).await;
    }

    /// Listens on `subject`, until [`Bus::close`].
    pub async fn subscribe(&self, subject: String) -> Result<Listener, BusError> {
        let subscriber = self.subscribe_raw(subject).await?;
        Ok(Listener {
            subscriber,
            closed: self.closed.subscribe(),
        })
    }

    async fn subscribe_raw(&self, subject: String) -> Result<Subscriber, BusError> {
        self.client
            .subscribe(subject.clone())
            .await
            .map_err(|e| BusError::Failed {
                subject,
                reason: e.to_string(),
            })
    }

    /// Sends everything published so far (a clean stop).
    pub async fn flush(&self) {
        let _ = self.client.flush().await;
    }
}

fn encode<Q: Serialize>(value: &Q) -> Bytes {
    // The payloads are plain data (strings, numbers, maps): serialising
    // them cannot fail; an empty payload is refused by the receiver.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_subject_tokens() {
        assert!(valid_instance_id("sightline-8080"));
        assert!(valid_instance_id("eu_1"));
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(!valid_instance_id(bad), "{bad:?}");
        }
        assert_eq!(handover_subject("a-1"), "sightline.instance.a-1.handover");
    }
}
