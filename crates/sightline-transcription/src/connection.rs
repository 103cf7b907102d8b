//! One WebSocket to a speech provider, run as a task on the stream's
//! thread: the same for every [`Provider`], which only says what to send
//! and how to read the replies.
//!
//! The stream actor talks to the task through two channels: audio and "end
//! of audio" in, [`FromProvider`] out. Every way a connection can end comes
//! out as exactly one [`FromProvider::Closed`], with the failure classed
//! when it was one. Dropping the audio sender closes the socket.

use std::sync::Arc;
use std::time::Duration;

use awc::error::WsClientError;
use awc::ws::{CloseCode, Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::error::AsrError;
use crate::provider::{EndOfAudio, Provider, ProviderEvent, StreamSpec};

/// To the provider task.
#[derive(Debug)]
pub enum ToProvider {
    Audio(Bytes),
    /// No more audio: ask for the last results, then close.
    End,
}

/// From the provider task.
#[derive(Debug)]
pub enum FromProvider {
    /// The WebSocket is open and configured.
    Opened,
    Event(ProviderEvent),
    /// The connection is over: `None` after a clean end, else why it failed.
    Closed(Option<AsrError>),
}

/// Timings of a provider connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionTimings {
    pub connect_timeout: Duration,
    pub drain_timeout: Duration,
}

/// Handles to a running provider connection.
pub struct ProviderConnection {
    pub to: mpsc::UnboundedSender<ToProvider>,
    pub from: mpsc::UnboundedReceiver<FromProvider>,
}

/// Opens a connection in a task on the current actix arbiter.
pub fn open(
    provider: Arc<dyn Provider>,
    spec: StreamSpec,
    timings: ConnectionTimings,
) -> ProviderConnection {
    let (to_tx, to_rx) = mpsc::unbounded_channel();
    let (from_tx, from_rx) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        let outcome = run(provider.as_ref(), &spec, timings, to_rx, &from_tx).await;
        let _ = from_tx.send(FromProvider::Closed(outcome.err()));
    });
    ProviderConnection {
        to: to_tx,
        from: from_rx,
    }
}

async fn run(
    provider: &dyn Provider,
    spec: &StreamSpec,
    timings: ConnectionTimings,
    mut audio: mpsc::UnboundedReceiver<ToProvider>,
    events: &mpsc::UnboundedSender<FromProvider>,
) -> Result<(), AsrError> {
    let name = provider.name();
    let client = awc::Client::builder()
        .timeout(timings.connect_timeout)
        .finish();
    let mut request = client.ws(provider.url(spec)).max_frame_size(1 << 20);
    for (k, v) in provider.headers() {
        request = request.header(k, v);
    }
    let connecting = tokio::time::timeout(timings.connect_timeout, request.connect()).await;
    let (_, mut socket) = match connecting {
        Err(_) => return Err(AsrError::transient(name, "timed out opening the WebSocket")),
        Ok(Err(WsClientError::InvalidResponseStatus(status))) => {
            return Err(AsrError::from_status(name, status.as_u16(), ""))
        }
        Ok(Err(e)) => return Err(AsrError::transient(name, format!("could not connect: {e}"))),
        Ok(Ok(pair)) => pair,
    };
    let send_failed =
        |e: awc::error::WsProtocolError| AsrError::transient(name, format!("send failed: {e}"));
    if let Some(text) = provider.opening(spec) {
        socket
            .send(Message::Text(text.into()))
            .await
            .map_err(send_failed)?;
    }
    let _ = events.send(FromProvider::Opened);
    let mut reader = provider.reader(spec);
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        let deadline =
            draining.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            cmd = audio.recv(), if draining.is_none() => match cmd {
                Some(ToProvider::Audio(pcm)) => {
                    socket.send(Message::Binary(pcm)).await.map_err(send_failed)?;
                }
                Some(ToProvider::End) => {
                    let end = match provider.end_of_audio() {
                        EndOfAudio::Text(t) => Message::Text(t.into()),
                        EndOfAudio::EmptyBinary => Message::Binary(Bytes::new()),
                    };
                    socket.send(end).await.map_err(send_failed)?;
                    draining = Some(tokio::time::Instant::now() + timings.drain_timeout);
                }
                None => {
                    // The stream went away: close politely and stop.
                    let _ = socket.send(Message::Close(Some(CloseCode::Normal.into()))).await;
                    return Ok(());
                }
            },
            _ = tokio::time::sleep_until(deadline), if draining.is_some() => {
                tracing::warn!(provider = name, "no end of results from the provider in time; closing");
                return Ok(());
            }
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    let Ok(text) = std::str::from_utf8(&text) else { continue };
                    for ev in reader.read(text) {
                        match ev {
                            ProviderEvent::Error(e) => return Err(e),
                            ProviderEvent::Finished => return Ok(()),
                            other => { let _ = events.send(FromProvider::Event(other)); }
                        }
                    }
                }
                Some(Ok(Frame::Ping(p))) => {
                    socket.send(Message::Pong(p)).await.map_err(send_failed)?;
                }
                Some(Ok(Frame::Close(reason))) => {
                    if draining.is_some() {
                        return Ok(());
                    }
                    let code = reason.as_ref().map(|r| u16::from(r.code));
                    let text = reason.and_then(|r| r.description).unwrap_or_default();
                    let message = format!("provider closed the stream ({code:?}) {text}");
                    return Err(match code {
                        // Policy violation, bad data, or an application code:
                        // the provider refuses this stream as configured.
                        Some(1003 | 1007 | 1008) | Some(4000..=4999) => AsrError::permanent(name, message),
                        _ => AsrError::transient(name, message),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(AsrError::transient(name, format!("WebSocket error: {e}"))),
                None => {
                    return if draining.is_some() {
                        Ok(())
                    } else {
                        Err(AsrError::transient(name, "connection lost"))
                    };
                }
            }
        }
    }
}
