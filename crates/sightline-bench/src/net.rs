//! Client sockets over loopback. Every client socket binds to one of
//! several 127.0.0.x source addresses in turn, so tens of thousands of
//! connections to one server port never run out of ephemeral ports.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// How many source addresses client sockets are spread over
/// (127.0.0.2 ...).
pub const SOURCE_ADDRESSES: usize = 16;

static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

/// Microseconds since the first call in this process: the clock senders
/// stamp events with and receivers read latency from.
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A TCP connection to `dst` from the next source address.
pub async fn connect_tcp(dst: SocketAddr) -> Result<TcpStream> {
    let n = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed) % SOURCE_ADDRESSES;
    let src = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2 + n as u8), 0));
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(src)
        .with_context(|| format!("binding the client socket to {src}"))?;
    let stream = socket
        .connect(dst)
        .await
        .with_context(|| format!("connecting {src} -> {dst}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens a WebSocket to `ws://<dst><path>`, with a bearer token if given.
pub async fn ws_connect(dst: SocketAddr, path: &str, bearer: Option<&str>) -> Result<Ws> {
    let mut req = format!("ws://{dst}{path}").into_client_request()?;
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse()?);
    }
    let stream = connect_tcp(dst).await?;
    let (ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .with_context(|| format!("WebSocket upgrade at {path}"))?;
    Ok(ws)
}

/// Splits `ws://host:port/path` into the address and the path.
pub fn parse_ws_url(url: &str) -> Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("not a ws:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let addr = host
        .parse()
        .with_context(|| format!("not an address: {host}"))?;
    Ok((addr, path))
}

/// One HTTP/1.1 request with a JSON body; returns status and body.
pub async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Reads one HTTP request from `stream`; returns its JSON body.
pub async fn read_json_request(stream: &mut TcpStream) -> Result<serde_json::Value> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            bail!("connection closed before the request was complete");
        }
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let body = &buf[end + 4..];
        if body.len() >= len {
            return Ok(serde_json::from_slice(&body[..len])?);
        }
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts connections at `addr`.
pub async fn wait_listening(addr: SocketAddr, within: std::time::Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listening at {addr} after {within:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
