//! Logs as operators read them: the `sightline` binary run with
//! `SIGHTLINE_LOG_FORMAT=json` writes one JSON object per line, carries the
//! user, session, package and connection as span fields, ties an app start
//! to its webhook through the correlation id, and never writes a token, key
//! or secret.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Every log line whose span list has a span named `name`, with that span.
/// Waits until the server accepts connections on `addr`.
async fn wait_listening(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn in_span<'a>(lines: &'a [Value], name: &str) -> Vec<(&'a Value, &'a Value)> {
    lines
        .iter()
        .filter_map(|l| {
            let span = l["spans"].as_array()?.iter().find(|s| s["name"] == name)?;
            Some((l, span))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_follow_one_user_and_keep_secrets_out() {
    let email = "logs@example.com";
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--store", "memory", "--bind", &addr.to_string()])
        .env("SIGHTLINE_JWT_SECRET", SECRET)
        .env("SIGHTLINE_ADMIN_TOKEN", ADMIN)
        .env("SIGHTLINE_LOG_FORMAT", "json")
        .env("SIGHTLINE_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sightline binary");
    let stderr = child.stderr.take().expect("stderr");
    let raw = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = raw.clone();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().expect("lock").push(line);
        }
    });
    wait_listening(addr).await;

    let (status, body) = http(
        addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(
            json!({"packageName": PKG, "name": "Notes", "publicUrl": fake.url,
                    "apiKey": KEY, "appType": "standard", "permissions": ["ALL"]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let jwt = token(email);
    let mut g = Client::connect(&format!("ws://{addr}/glasses-ws"), Some(&jwt))
        .await
        .expect("glasses connect");
    g.expect_type("connection_ack").await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change"
            && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
    })
    .await;
    g.send(json!({"type": "button_press", "buttonId": "x", "pressType": "short"}))
        .await;
    app.expect_type("data_stream").await;
    g.send_raw(tokio_tungstenite::tungstenite::Message::Text(
        "{not json".into(),
    ))
    .await;
    g.expect_type("connection_error").await;
    // A wrong key and a forged token are refused, and not logged either.
    let mut intruder = Client::connect(&format!("ws://{addr}/app-ws"), None)
        .await
        .expect("app socket");
    intruder
        .send(
            json!({"type": "tpa_connection_init", "sessionId": format!("{email}-{PKG}"),
                     "packageName": PKG, "apiKey": "wrong-key-0123456789"}),
        )
        .await;
    intruder.expect_type("tpa_connection_error").await;
    let forged = token_with(json!({"email": email}), "not-the-secret");
    assert!(
        Client::connect(&format!("ws://{addr}/glasses-ws"), Some(&forged))
            .await
            .is_err()
    );
    app.close(1000).await;
    g.close(1000).await;
    // The session has logged the goodbyes before the server is stopped.
    eventually("the glasses' disconnect logged", || {
        raw.lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains("glasses disconnected"))
    })
    .await;
    child.start_kill().expect("stop server");
    let _ = child.wait().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;

    let raw = raw.lock().expect("lock").clone();
    assert!(raw.len() > 10, "too few log lines: {raw:?}");
    let lines: Vec<Value> = raw
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        assert!(l["level"].is_string() && l["timestamp"].is_string(), "{l}");
    }

    // One user's story: session, glasses connection and app connection
    // spans carry who it is about.
    let session = in_span(&lines, "session");
    assert!(
        session
            .iter()
            .any(|(l, s)| s["user"] == email && l["fields"]["message"] == "app connected"),
        "no 'app connected' line in the user's session span"
    );
    assert!(session.iter().all(|(_, s)| s["session"].is_number()));
    let glasses = in_span(&lines, "glasses");
    assert!(
        glasses.iter().any(|(_, s)| s["user"] == email
            && s["connection"].as_str().is_some_and(|c| c.starts_with('c'))),
        "no line in the glasses connection span"
    );
    let app_lines = in_span(&lines, "app");
    assert!(
        app_lines
            .iter()
            .any(|(_, s)| s["user"] == email && s["package"] == PKG),
        "no line in the bound app connection span"
    );

    // The app start's correlation id is in the webhook request and the logs.
    let heads = fake.heads.lock().expect("lock").clone();
    let correlation = heads
        .iter()
        .find_map(|h| {
            h.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-sightline-correlation-id")
                    .then(|| v.trim().to_string())
            })
        })
        .expect("webhook carries a correlation id");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["correlation_id"] == correlation.as_str()
                && l["fields"]["message"] == "starting app"),
        "correlation id {correlation} not in the start's log line"
    );

    // No secret in any line.
    for secret in [
        SECRET,
        ADMIN,
        KEY,
        jwt.as_str(),
        forged.as_str(),
        "wrong-key-0123456789",
    ] {
        assert!(
            !raw.iter().any(|l| l.contains(secret)),
            "a log line contains a secret ({secret})"
        );
    }
}

/// A line of the text log starts with its RFC 3339 timestamp and a level.
fn is_text_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    let dated = b.len() > 30
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T';
    dated
        && ["TRACE", "DEBUG", " INFO", " WARN", "ERROR"]
            .iter()
            .any(|l| line[..40.min(line.len())].contains(l))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_escape_what_clients_send_so_no_line_is_forged() {
    // Each value ends its line and starts a line that looks like Sightline's.
    let forged = "\n2020-01-01T00:00:00.000000Z  INFO sightline: FORGED";
    let email = format!("mallory@example.com{forged}-EMAIL");
    let package = format!("com.evil{forged}-PKG");
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--store", "memory", "--bind", &addr.to_string()])
        .env("SIGHTLINE_JWT_SECRET", SECRET)
        .env("SIGHTLINE_ADMIN_TOKEN", ADMIN)
        .env_remove("SIGHTLINE_LOG_FORMAT")
        .env("SIGHTLINE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sightline binary");
    let stderr = child.stderr.take().expect("stderr");
    let raw = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = raw.clone();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().expect("lock").push(line);
        }
    });
    wait_listening(addr).await;

    // An email claim with a line break: the glasses connect and the
    // session logs the user.
    let jwt = token_with(json!({"email": email}), SECRET);
    let mut g = Client::connect(&format!("ws://{addr}/glasses-ws"), Some(&jwt))
        .await
        .expect("glasses connect");
    g.expect_type("connection_ack").await;
    // A package name and session id with a line break in tpa_connection_init.
    let mut app = Client::connect(&format!("ws://{addr}/app-ws"), None)
        .await
        .expect("app socket");
    app.send(
        json!({"type": "tpa_connection_init", "sessionId": format!("{email}-{package}"),
                    "packageName": package, "apiKey": "whatever-key-123"}),
    )
    .await;
    app.expect_type("tpa_connection_error").await;

    let seen = |suffix: &str| {
        let needle = format!("\\n2020-01-01T00:00:00.000000Z  INFO sightline: FORGED{suffix}");
        raw.lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(&needle))
    };
    eventually("the package name is logged, escaped", || seen("-PKG")).await;
    eventually("the email is logged, escaped", || seen("-EMAIL")).await;
    g.close(1000).await;
    child.start_kill().expect("stop server");
    let _ = child.wait().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;

    let raw = raw.lock().expect("lock").clone();
    for line in raw.iter().filter(|l| !l.trim().is_empty()) {
        assert!(is_text_log_line(line), "not one log line: {line:?}");
        assert!(
            !line.starts_with("2020-01-01"),
            "a forged line was written: {line:?}"
        );
        if line.contains("FORGED") {
            assert!(line.contains("\\n2020-01-01"), "unescaped: {line:?}");
        }
    }
}

/// `sightline serve` stops on SIGTERM, as container runtimes and service
/// managers stop it, and says so.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_cleanly_on_sigterm() {
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--store", "memory", "--bind", &addr.to_string()])
        .env("SIGHTLINE_JWT_SECRET", SECRET)
        .env("SIGHTLINE_LOG", "info")
        .env_remove("SIGHTLINE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sightline binary");
    let stderr = child.stderr.take().expect("stderr");
    wait_listening(addr).await;
    let pid = child.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stopped within 15 s")
        .expect("exit status");
    assert!(status.success(), "exit status {status:?}");
    let mut lines = BufReader::new(stderr).lines();
    let mut said = false;
    while let Ok(Some(line)) = lines.next_line().await {
        said |= line.contains("shutting down") && line.contains("SIGTERM");
    }
    assert!(said, "the log says why it stopped");
}
