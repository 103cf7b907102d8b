//! Hostile clients at the WebSocket wire, measured by the server's memory:
//! a frame header declaring a terabyte, an endless fragmented message, a
//! flood of large valid messages faster than the session handles them, and
//! a flood of pings from a client that never reads. Each is refused or
//! slowed while the server's resident memory stays within a stated bound.
//! And the pongs a server writes count in the client's send backlog: a
//! client that took a lot of pongs is still closed at the bound.
//!
//! The server runs in this process, so its memory is this process's; the
//! tests here run one at a time, in their own test binary, and the
//! attacking clients write the same prepared bytes over and over, buffering
//! nothing. Each attack stops early once memory grows past the bound, so a
//! server without these defences fails the test instead of the machine.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use sightline::runtime::session::InjectStall;
use sightline::runtime::supervisor::FindSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

/// One memory test at a time: they share the process they measure.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Growth of resident memory a test allows while the attack runs.
const RSS_BOUND: u64 = 100 * 1024 * 1024;

/// Resident memory of this process (the server's), from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// A raw WebSocket upgrade on `path`; returns the socket after the 101.
async fn upgrade(addr: SocketAddr, path: &str, bearer: Option<&str>) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("read upgrade");
        assert_eq!(n, 1, "connection closed during the upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// A masked client frame header (mask key zero, so the payload goes as is).
fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=65_535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out
}

/// Reads server frames until a close frame; its code (1006 when the
/// connection ends without one, 0 on timeout).
async fn close_code(mut r: OwnedReadHalf, within: Duration) -> u16 {
    let read = async {
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 64 * 1024];
        loop {
            // Parse whole frames out of `buf`.
            while buf.len() >= 2 {
                let (len, at) = match buf[1] & 0x7f {
                    126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                    127 if buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => break,
                    n => (n as usize, 2),
                };
                if buf.len() < at + len {
                    break;
                }
                if buf[0] & 0x0f == 8 {
                    return if len >= 2 {
                        u16::from_be_bytes([buf[at], buf[at + 1]])
                    } else {
                        1005
                    };
                }
                buf.drain(..at + len);
            }
            match r.read(&mut tmp).await {
                Ok(0) | Err(_) => return 1006,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.unwrap_or(0)
}

/// Writes `chunk` over and over for up to `duration`, stopping early when
/// the server stops taking it or the memory grows past the bound. Returns
/// the largest growth seen.
async fn flood(w: &mut tokio::net::tcp::OwnedWriteHalf, chunk: &[u8], duration: Duration) -> u64 {
    let start_rss = rss_bytes();
    let mut peak = 0;
    let until = Instant::now() + duration;
    while Instant::now() < until {
        let write = tokio::time::timeout(Duration::from_millis(500), w.write_all(chunk)).await;
        peak = peak.max(rss_bytes().saturating_sub(start_rss));
        match write {
            Ok(Ok(())) => {}
            // Refused (the socket is closed), or not read any more.
            Ok(Err(_)) => break,
            Err(_) => {}
        }
        if peak > RSS_BOUND {
            break;
        }
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_declaring_a_terabyte_is_refused_at_its_header() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start();
    let glasses_token = token("huge@example.com");
    for (path, bearer) in [
        ("/app-ws", None),
        ("/glasses-ws", Some(glasses_token.as_str())),
    ] {
        let (r, mut w) = upgrade(server.addr, path, bearer).await.into_split();
        let closed = tokio::spawn(close_code(r, Duration::from_secs(10)));
        w.write_all(&header(true, 1, 1 << 40))
            .await
            .expect("header");
        let peak = flood(&mut w, &vec![b'x'; 256 * 1024], Duration::from_secs(4)).await;
        assert!(
            peak < RSS_BOUND,
            "{path}: memory grew by {} MiB",
            peak >> 20
        );
        assert_eq!(closed.await.expect("reader"), 1009, "{path}");
    }
    let page = scrape(&server).await;
    assert!(metric_sample(&page, r#"sightline_limit_refusals_total{limit="size"}"#) >= 2.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_fragmented_message_is_refused() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start();
    let glasses_token = token("fragments@example.com");
    for (path, bearer) in [
        ("/app-ws", None),
        ("/glasses-ws", Some(glasses_token.as_str())),
    ] {
        let (r, mut w) = upgrade(server.addr, path, bearer).await.into_split();
        let closed = tokio::spawn(close_code(r, Duration::from_secs(10)));
        w.write_all(&header(false, 1, 0))
            .await
            .expect("first fragment");
        let chunk: Vec<u8> = (0..40_000).flat_map(|_| header(false, 0, 0)).collect();
        let peak = flood(&mut w, &chunk, Duration::from_secs(4)).await;
        assert!(
            peak < RSS_BOUND,
            "{path}: memory grew by {} MiB",
            peak >> 20
        );
        assert_eq!(closed.await.expect("reader"), 1008, "{path}");
    }
    let page = scrape(&server).await;
    assert!(metric_sample(&page, r#"sightline_limit_refusals_total{limit="framing"}"#) >= 2.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_from_a_client_that_never_reads_are_rate_limited_then_closed() {
    let _one = SERIAL.lock().await;
    let server = TestServer::start();
    let (r, mut w) = upgrade(
        server.addr,
        "/glasses-ws",
        Some(&token("pings@example.com")),
    )
    .await
    .into_split();
    let mut ping = header(true, 9, 125);
    ping.extend_from_slice(&[b'p'; 125]);
    let chunk: Vec<u8> = ping.repeat(2_000);
    let peak = flood(&mut w, &chunk, Duration::from_secs(3)).await;
    assert!(peak < RSS_BOUND, "memory grew by {} MiB", peak >> 20);
    // Only now does the client read: it was closed for flooding.
    assert_eq!(close_code(r, Duration::from_secs(10)).await, 1008);
    let page = scrape(&server).await;
    assert_eq!(
        metric_sample(
            &page,
            r#"sightline_limit_refusals_total{limit="rate_close"}"#
        ),
        1.0
    );
    server.stop().await;
}

/// A client text frame carrying `text` (mask key zero: no work to send it).
fn text_frame(text: &str) -> Vec<u8> {
    let mut frame = header(true, 1, text.len() as u64);
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// A raw app socket for `package` of `email`, past its init: it supersedes
/// the socket the fake app server opened. What the server sends it is read
/// and dropped in the background.
async fn raw_app(server: &TestServer, email: &str, package: &str, key: &str) -> TcpStream {
    let mut s = upgrade(server.addr, "/app-ws", None).await;
    let init = json!({
        "type": "tpa_connection_init",
        "sessionId": format!("{email}-{package}"),
        "packageName": package,
        "apiKey": key,
    });
    s.write_all(&text_frame(&init.to_string()))
        .await
        .expect("init");
    let mut seen = Vec::new();
    let mut tmp = [0u8; 4096];
    while !seen.windows(18).any(|w| w == b"tpa_connection_ack") {
        let n = tokio::time::timeout(WAIT, s.read(&mut tmp))
            .await
            .expect("ack in time")
            .expect("read ack");
        assert!(n > 0, "closed before the ack");
        seen.extend_from_slice(&tmp[..n]);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_messages_is_slowed_not_buffered() {
    let _one = SERIAL.lock().await;
    let email = "backlog@example.com";
    let (server, mut fake, mut g) = setup_with(
        |c| {
            // Size and rate are not under test: every message is valid.
            c.limits.app_rate = sightline::server::limits::Rate {
                per_second: 100_000,
                burst: 100_000,
            };
            // The glasses are not read and get closed; the session stays.
            c.runtime.glasses_grace = Duration::from_secs(60);
        },
        email,
    )
    .await;
    let _sdk_socket = start_app(&mut g, &mut fake, PKG).await;
    let (r, mut w) = raw_app(&server, email, PKG, KEY).await.into_split();
    tokio::spawn(async move {
        let mut r = r;
        let mut sink = vec![0u8; 64 * 1024];
        while matches!(r.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    // Large valid messages (a subscription list of distinct streams, which
    // the connection must parse), while the session is stalled for three
    // seconds: without a bound, every parsed message would wait in the
    // session's mailbox.
    let streams: Vec<String> = (0..15_000).map(|n| format!("stream_{n:06}")).collect();
    let update = json!({"type": "subscription_update", "subscriptions": streams}).to_string();
    let frame = text_frame(&update);
    let session = server
        .supervisor()
        .send(FindSession {
            user_id: email.into(),
        })
        .await
        .expect("supervisor")
        .expect("the session");
    session.addr().do_send(InjectStall(Duration::from_secs(3)));
    // The writer never abandons a frame halfway; this loop watches it.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        while w.write_all(&frame).await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let start_rss = rss_bytes();
    let started = Instant::now();
    let (mut peak, mut longest_pause) = (0, Duration::ZERO);
    let (mut last_count, mut last_progress) = (0, Instant::now());
    while started.elapsed() < Duration::from_secs(6) && peak < RSS_BOUND {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(rss_bytes().saturating_sub(start_rss));
        let now = sent.load(std::sync::atomic::Ordering::SeqCst);
        if now != last_count {
            last_count = now;
            last_progress = Instant::now();
        }
        longest_pause = longest_pause.max(last_progress.elapsed());
    }
    writer.abort();
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        peak < RSS_BOUND,
        "memory grew by {} MiB over {sent} messages",
        peak >> 20
    );
    assert!(
        longest_pause >= Duration::from_millis(1_000),
        "the server never stopped reading the flood (longest pause {longest_pause:?})"
    );
    assert!(sent >= 5, "only {sent} messages went through");
    drop(g);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pongs_do_not_enlarge_a_client_send_allowance() {
    let _one = SERIAL.lock().await;
    let email = "pongs@example.com";
    let bound = 256 * 1024;
    let (server, mut fake, mut g) = setup_with(
        |c| {
            // Pings are let through the rate here: the send backlog is
            // under test.
            c.limits.app_rate = sightline::server::limits::Rate {
                per_second: 1_000_000,
                burst: 1_000_000,
            };
            c.limits.send_backlog_bytes = bound;
        },
        email,
    )
    .await;
    let _sdk_socket = start_app(&mut g, &mut fake, PKG).await;
    let mut raw = raw_app(&server, email, PKG, KEY).await;
    let subscribe = json!({"type": "subscription_update", "subscriptions": ["button_press"]});
    raw.write_all(&text_frame(&subscribe.to_string()))
        .await
        .expect("subscribe");
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
    })
    .await;
    // The app pings and never reads, until the pongs fill every buffer
    // between it and the server and the server stops reading its pings.
    let (r, mut w) = raw.into_split();
    let mut ping = header(true, 9, 125);
    ping.extend_from_slice(&[b'p'; 125]);
    let chunk = ping.repeat(1_000);
    loop {
        match tokio::time::timeout(Duration::from_secs(1), w.write_all(&chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the app socket failed while pinging: {e}"),
            Err(_) => break,
        }
    }
    // Events for the app: those the socket cannot take count against its
    // backlog, whatever it took before. Past the bound it is closed 1013.
    let event =
        json!({"type": "button_press", "buttonId": "e".repeat(10_000), "pressType": "short"});
    let mut events = 0;
    let limit = bound / 10_000 * 3;
    loop {
        g.send(event.clone()).await;
        events += 1;
        if events % 5 == 0 {
            let page = scrape(&server).await;
            if metric_sample(&page, "sightline_slow_consumer_closes_total") >= 1.0 {
                break;
            }
        }
        assert!(
            events < limit,
            "{events} events of 10 kB queued for a client bounded at {bound} bytes, and it is still open"
        );
    }
    // When the app reads again it gets what was queued, then 1013.
    assert_eq!(close_code(r, Duration::from_secs(10)).await, 1013);
    server.stop().await;
}
