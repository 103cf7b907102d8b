//! The live inspector page, loaded in headless Chromium and driven over the
//! Chrome DevTools Protocol: the rendered tree shows the connected test
//! user and its app, the session view shows the app's subscriptions and the
//! display, and a screenshot is saved under the test output
//! (`$CARGO_TARGET_TMPDIR/inspector.png`).

mod common;

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A headless Chromium and a DevTools connection to its page.
struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    async fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = tokio::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1600,760",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium runs (scripts/setup-test-deps.sh installs it)");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let browser_ws = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return url.trim().to_string();
                }
            }
            panic!("chromium exited before opening DevTools");
        })
        .await
        .expect("chromium started in time");
        // Keep draining stderr so chromium never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port: u16 = browser_ws
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("devtools port");
        let targets = devtools_targets(port).await;
        let page_id = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["id"].as_str())
            .unwrap_or_else(|| panic!("a page target in {targets}"))
            .to_string();
        let page_url = format!("ws://127.0.0.1:{port}/devtools/page/{page_id}");
        let (page, _) = tokio_tungstenite::connect_async(page_url.as_str())
            .await
            .expect("devtools page socket");
        Browser {
            _child: child,
            _profile: profile,
            page,
            next_id: 0,
        }
    }

    /// Calls a DevTools method and returns its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params});
        self.page
            .send(Message::Text(msg.to_string()))
            .await
            .expect("devtools send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.page.next())
                .await
                .expect("devtools answered in time")
                .expect("devtools open")
                .expect("devtools frame");
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).expect("devtools json");
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page, returning its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    async fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.eval(expression).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let body = self.eval("document.body.innerText").await;
                panic!("page never showed {what}; it shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `GET /json/list` of the DevTools HTTP endpoint (which keeps the
/// connection open, so the answer is read up to its Content-Length).
async fn devtools_targets(port: u16) -> Value {
    use tokio::io::AsyncWriteExt;
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("devtools http");
    s.write_all(b"GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    tokio::time::timeout(Duration::from_secs(10), read_http_message(&mut s))
        .await
        .expect("devtools answered in time")
        .expect("a JSON list of targets")
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_shows_the_live_session_and_its_app() {
    let email = "inspect@example.com";
    let (server, mut fake, mut g) = setup(email).await;
    let mut app = start_app(&mut g, &mut fake, PKG).await;
    app.send(
        json!({"type": "subscription_update", "subscriptions": ["button_press", "head_position"]}),
    )
    .await;
    g.expect("subscribed", |v| {
        v["type"] == "app_state_change" && v["userSession"]["appSubscriptions"][PKG].is_array()
    })
    .await;
    app.send(json!({"type": "display_event", "view": "main",
                    "layout": {"layoutType": "text_wall", "text": "Shown by the inspector test"}}))
        .await;
    g.expect_display_from(PKG).await;

    let mut browser = Browser::launch().await;
    browser.call("Page.enable", json!({})).await;
    let url = format!("http://{}/inspect#token={ADMIN}", server.addr);
    browser.call("Page.navigate", json!({"url": url})).await;

    browser
        .wait_for(
            "the user's session and its app in the tree",
            &format!(
                r#"!!document.querySelector('#tree tr[data-kind="user-session"][data-user="{email}"]')
                   && !!document.querySelector('#tree tr[data-kind="app-connection"][data-package="{PKG}"][data-user="{email}"]')
                   && !!document.querySelector('#tree tr[data-kind="glasses-connection"][data-user="{email}"]')"#
            ),
        )
        .await;
    let status = browser
        .eval("document.querySelector('#status').textContent")
        .await;
    assert_eq!(status, "live");

    // The detail view of the session: apps, subscriptions, display.
    browser
        .eval(r#"document.querySelector('#tree tr[data-kind="user-session"]').click(), true"#)
        .await;
    browser
        .wait_for(
            "the session's app with its subscriptions",
            &format!(
                r#"(() => {{ const r = document.querySelector('#session-apps tr[data-package="{PKG}"]');
                     return !!r && r.innerText.includes("button_press") && r.innerText.includes("running"); }})()"#
            ),
        )
        .await;
    let display = browser
        .eval("document.querySelector('#session-display').textContent")
        .await;
    assert!(
        display
            .as_str()
            .is_some_and(|d| d.contains("Shown by the inspector test")),
        "{display}"
    );

    // Live: a second app connection appears without reloading... and the
    // counters move as traffic flows.
    for i in 0..3 {
        g.send(json!({"type": "button_press", "buttonId": format!("b{i}"), "pressType": "short"}))
            .await;
        app.expect_type("data_stream").await;
    }
    browser
        .wait_for(
            "the app connection's handled count to grow",
            &format!(
                r#"(() => {{ const r = document.querySelector('#tree tr[data-kind="app-connection"][data-package="{PKG}"]');
                     return !!r && Number(r.children[2].textContent) >= 3; }})()"#
            ),
        )
        .await;

    let shot = browser
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64 png");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspector.png");
    std::fs::write(&out, &png).expect("write screenshot");
    eprintln!("inspector screenshot: {}", out.display());

    // Gone when the user leaves.
    app.close(1000).await;
    browser
        .wait_for(
            "the app connection to leave the tree",
            r#"!document.querySelector('#tree tr[data-kind="app-connection"]')"#,
        )
        .await;
    server.stop().await;
}
