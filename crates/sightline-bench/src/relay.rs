//! The transport ceiling: a WebSocket relay on tokio-tungstenite with no
//! session logic at all. Glasses connect to `/glasses?user=<id>`, apps to
//! `/app?user=<id>`; every frame a user's glasses send is written as it is
//! to each of that user's app sockets. Nothing is parsed, authenticated or
//! kept. Run by the suite as its own process (`sightline-bench relay`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

type AppSenders = RwLock<Vec<mpsc::UnboundedSender<Message>>>;

/// Users by id; touched only when a socket connects.
#[derive(Default)]
struct Registry {
    users: Mutex<HashMap<String, Arc<AppSenders>>>,
}

impl Registry {
    fn user(&self, id: &str) -> Arc<AppSenders> {
        let mut users = match self.users.lock() {
            Ok(u) => u,
            Err(poisoned) => poisoned.into_inner(),
        };
        users.entry(id.to_string()).or_default().clone()
    }
}

/// Serves the relay on `127.0.0.1:port` until the process ends.
pub async fn run(port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let registry = Arc::new(Registry::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let registry = registry.clone();
        tokio::spawn(async move {
            let _ = serve(stream, registry).await;
        });
    }
}

// The callback's error type is tungstenite's, large by its design.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, registry: Arc<Registry>) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut path = String::new();
    let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
        path = req.uri().to_string();
        Ok(resp)
    })
    .await?;
    let user = path
        .split_once("user=")
        .map(|(_, u)| u.split('&').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let apps = registry.user(&user);
    let (mut sink, mut stream) = ws.split();
    if path.starts_with("/app") {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        if let Ok(mut list) = apps.write() {
            list.push(tx);
        }
        // Writer: everything queued goes out in one flush.
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.feed(m).await.is_err() {
                    return;
                }
                while let Ok(m) = rx.try_recv() {
                    if sink.feed(m).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        });
        // Reader: only keeps the socket alive (pongs, close).
        while let Some(Ok(m)) = stream.next().await {
            if m.is_close() {
                break;
            }
        }
        writer.abort();
        if let Ok(mut list) = apps.write() {
            list.retain(|tx| !tx.is_closed());
        }
    } else {
        while let Some(Ok(m)) = stream.next().await {
            match m {
                Message::Text(_) | Message::Binary(_) => {
                    if let Ok(list) = apps.read() {
                        for tx in list.iter() {
                            let _ = tx.send(m.clone());
                        }
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = sink.close().await;
    }
    Ok(())
}
