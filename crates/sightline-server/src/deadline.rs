//! A deadline on reading each request's body.
//!
//! actix-web bounds the time to read a request's head
//! (`HttpServer::client_request_timeout`, set by [`crate::serve_on`]) but
//! not its body: a client that declares a large body and sends it a byte a
//! second holds its connection and a handler for as long as it likes.
//! [`body_deadline`] wraps the request payload so that the whole body must
//! arrive within [`ServerConfig::request_body_timeout`](crate::ServerConfig)
//! of the request's start; past it the payload ends with an error and the
//! client gets HTTP 408 `REQUEST_TIMEOUT`, and the connection is closed.
//!
//! [`Sightline::configure`](crate::Sightline::configure) wraps every REST
//! route with it but `/health`, so embedders get it too. (`/health` reads no
//! body: it answers at once, and actix closes a connection whose body was
//! left unread.) The WebSocket routes are not wrapped: their payload is the
//! socket's stream, bounded by [`crate::frame_guard`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::error::PayloadError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

use crate::SharedState;

/// A request payload that must end before its deadline.
struct DeadlineBody {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.done = true;
            this.expired.store(true, Ordering::Relaxed);
            let error = io::Error::new(
                io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            );
            return Poll::Ready(Some(Err(PayloadError::Io(error))));
        }
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(None) = polled {
            this.done = true;
        }
        polled
    }
}

/// Middleware (for `actix_web::middleware::from_fn`): the request's body
/// must be read within the configured time, else HTTP 408.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let timeout = req
        .app_data::<web::Data<SharedState>>()
        .map(|s| s.config.request_body_timeout)
        .unwrap_or(Duration::from_secs(10));
    let expired = Arc::new(AtomicBool::new(false));
    let body = DeadlineBody {
        inner: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        expired: expired.clone(),
        done: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    let res = next.call(req).await?;
    if !expired.load(Ordering::Relaxed) {
        return Ok(res.map_into_boxed_body());
    }
    tracing::info!(
        timeout_ms = timeout.as_millis() as u64,
        "request body not received in time; answering 408"
    );
    let (req, _) = res.into_parts();
    // Sightline's REST error shape (see `error.rs`).
    let mut timed_out = HttpResponse::RequestTimeout().json(serde_json::json!({
        "error": {
            "code": "REQUEST_TIMEOUT",
            "message": format!("The request body did not arrive within {} ms", timeout.as_millis()),
        }
    }));
    timed_out
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(req, timed_out))
}
