//! Who gets in, and how long a slow client may take: unauthenticated app
//! sockets have their own budget and cannot fill the connection limit;
//! request heads and bodies must arrive in time; a glasses request that is
//! not a WebSocket upgrade opens nothing.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sightline::store::{AppType, MemoryStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .expect("bind source address");
    socket.connect(addr).await.expect("connect")
}

/// An upgrade of `/app-ws` from `from`: the status, the body of a refusal,
/// and the socket (kept open by the caller).
async fn app_upgrade(from: [u8; 4], addr: SocketAddr) -> (u16, String, TcpStream) {
    let mut s = connect_from(from, addr).await;
    let req = format!(
        "GET /app-ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write upgrade");
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(WAIT, s.read(&mut tmp))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = String::from_utf8_lossy(&got[head_end..]).to_string();
    if status != 101 {
        // A refusal's JSON body, up to its length.
        while serde_json::from_str::<Value>(&body).is_err() {
            let Ok(Ok(n)) = tokio::time::timeout(WAIT, s.read(&mut tmp)).await else {
                break;
            };
            if n == 0 {
                break;
            }
            body.push_str(&String::from_utf8_lossy(&tmp[..n]));
        }
    }
    (status, body, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_app_sockets_cannot_crowd_out_real_users() {
    let server = TestServer::start_with(
        |c| {
            // Room for one glasses and one app connection.
            c.limits.max_connections = 2;
            c.limits.max_unauthenticated = 6;
            c.limits.max_unauthenticated_per_address = 4;
            c.app_init_timeout = Duration::from_secs(60);
        },
        Arc::new(MemoryStore::new()),
    );
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;

    // One address opens app sockets and never sends an init: four are
    // upgraded, the fifth is refused.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let (status, body, s) = app_upgrade([127, 0, 0, 2], server.addr).await;
        assert_eq!(status, 101, "{body}");
        idle.push(s);
    }
    let (status, body, _) = app_upgrade([127, 0, 0, 2], server.addr).await;
    assert_eq!(status, 503, "{body}");
    let refusal: Value = serde_json::from_str(&body).expect("json refusal");
    assert_eq!(refusal["code"], "TOO_MANY_UNAUTHENTICATED", "{refusal}");

    // A glasses login and an app from another address still get in.
    let mut g = Client::glasses(&server, "real@example.com").await;
    let _app = start_app(&mut g, &mut fake, PKG).await;

    // The authenticated app left the budget: two more from a third address
    // fill the total, then a fourth address is refused.
    for _ in 0..2 {
        let (status, body, s) = app_upgrade([127, 0, 0, 3], server.addr).await;
        assert_eq!(status, 101, "{body}");
        idle.push(s);
    }
    let (status, body, _) = app_upgrade([127, 0, 0, 4], server.addr).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TOO_MANY_UNAUTHENTICATED"), "{body}");

    // Closing the idle sockets gives their places back.
    drop(idle);
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body, _s) = app_upgrade([127, 0, 0, 4], server.addr).await;
        if status == 101 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "places never freed: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_socket_without_init_is_closed_at_the_init_timeout() {
    let server = TestServer::start_with(
        |c| c.app_init_timeout = Duration::from_millis(300),
        Arc::new(MemoryStore::new()),
    );
    let started = Instant::now();
    let mut app = Client::connect(&server.ws_url("/app-ws"), None)
        .await
        .expect("upgrade");
    let closed = app.expect_close().await;
    assert_eq!(closed.code, 1008, "{closed:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

/// Writes `bytes` one at a time, `gap` apart, until the server answers or
/// closes; returns what it answered (empty when it just closed) and when.
async fn trickle(mut s: TcpStream, bytes: Vec<u8>, gap: Duration) -> (String, Duration) {
    let started = Instant::now();
    let (mut r, mut w) = s.split();
    let writer = async {
        for b in bytes {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(gap).await;
        }
        std::future::pending::<()>().await
    };
    let reader = async {
        let mut got = Vec::new();
        let mut tmp = [0u8; 4096];
        loop {
            match r.read(&mut tmp).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).to_string(),
                Ok(n) => got.extend_from_slice(&tmp[..n]),
            }
        }
    };
    let answer = tokio::select! {
        answer = reader => answer,
        _ = writer => unreachable!(),
    };
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_and_bodies_are_cut_while_others_are_answered() {
    let server = TestServer::start_with(
        |c| {
            c.request_head_timeout = Duration::from_millis(800);
            c.request_body_timeout = Duration::from_millis(800);
        },
        Arc::new(MemoryStore::new()),
    );
    let addr = server.addr;
    let gap = Duration::from_millis(100);
    let mut attacks = Vec::new();
    // Bodies declared at a megabyte, sent a byte at a time, to a route that
    // reads its body and to the SDK-facing settings route.
    // Each carries a valid credential for its route: credentials are
    // checked before any body is read, so only an authorised client gets
    // as far as a slow body.
    let user = token("slow@example.com");
    for (path, bearer) in [
        ("/api/admin/apps", ADMIN),
        ("/appsettings/com.example.notes", user.as_str()),
    ] {
        for _ in 0..10 {
            let s = TcpStream::connect(addr).await.expect("connect");
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
            );
            let mut bytes = head.into_bytes();
            bytes.extend(std::iter::repeat_n(b' ', 1000));
            let mut s = s;
            // The head goes at once; the body trickles.
            let split = bytes.len() - 1000;
            s.write_all(&bytes[..split]).await.expect("head");
            attacks.push(tokio::spawn(trickle(s, bytes[split..].to_vec(), gap)));
        }
    }
    // Heads sent a byte at a time.
    let mut heads = Vec::new();
    for _ in 0..10 {
        let s = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "GET /stats HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}\r\n\r\n",
            "x".repeat(500)
        );
        heads.push(tokio::spawn(trickle(s, head.into_bytes(), gap)));
    }
    // Meanwhile an ordinary request is answered at once.
    let asked = Instant::now();
    let (status, body) = http(addr, "GET", "/stats", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );

    let bound = Duration::from_secs(4);
    for a in attacks {
        let (answer, took) = a.await.expect("attack");
        assert!(took < bound, "a slow body held its connection for {took:?}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    }
    for h in heads {
        let (answer, took) = h.await.expect("head");
        assert!(took < bound, "a slow head held its connection for {took:?}");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glasses_request_that_is_not_an_upgrade_opens_no_session() {
    let server = TestServer::start();
    let email = "plain@example.com";
    for _ in 0..3 {
        let (status, body) =
            http(server.addr, "GET", "/glasses-ws", Some(&token(email)), None).await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = http(
        server.addr,
        "GET",
        &format!("/sessions/{email}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 404, "no session may exist: {body}");
    let (status, body) = http(server.addr, "GET", "/actors", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(email), "{body}");
    server.stop().await;
}
