//! Real `@mentra/sdk@2.1.29` apps for the tests: a Node process running one
//! of the scripts in tests/sdk, which reports what the SDK does as lines
//! `SLTEST <json>` on stdout.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The API key every SDK test app uses.
pub const SDK_KEY: &str = "sdk-conformance-key";

fn sdk_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("tests/sdk")
}

/// Makes sure the SDK is installed (scripts/setup-test-deps.sh does it; the
/// README's test command runs that first).
fn ensure_sdk() {
    if sdk_dir()
        .join("node_modules/@mentra/sdk/package.json")
        .exists()
    {
        return;
    }
    let status = std::process::Command::new("bash")
        .arg(
            PathBuf::from(
                std::env::var("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
            )
            .join("scripts/setup-test-deps.sh"),
        )
        .status()
        .expect("run scripts/setup-test-deps.sh");
    assert!(status.success(), "installing the SDK failed");
}

/// A running SDK app process and the events it reports.
pub struct SdkApp {
    pub child: Child,
    events: mpsc::UnboundedReceiver<Value>,
    pub seen: Vec<Value>,
    pub url: String,
}

impl SdkApp {
    /// The conformance app (tests/sdk/app.mjs) with its handlers registered
    /// `early` or `late`.
    pub async fn conformance(package: &str, handlers: &str) -> SdkApp {
        SdkApp::start("app.mjs", package, &[("HANDLERS", handlers)]).await
    }

    /// Runs `script` from tests/sdk as `package` on a free port, with extra
    /// environment, and waits until its server listens.
    pub async fn start(script: &str, package: &str, env: &[(&str, &str)]) -> SdkApp {
        // The SDK listens on every address (`::`), so the port must be free
        // on all of them, not only on 127.0.0.1 (other loopback addresses
        // may hold it as a client port).
        let port = std::net::TcpListener::bind("[::]:0")
            .or_else(|_| std::net::TcpListener::bind("0.0.0.0:0"))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        SdkApp::start_on(script, package, port, env).await
    }

    /// [`SdkApp::start`] on a given port (to restart an app server where it
    /// was).
    pub async fn start_on(script: &str, package: &str, port: u16, env: &[(&str, &str)]) -> SdkApp {
        ensure_sdk();
        let mut command = Command::new("node");
        command
            .arg(script)
            .current_dir(sdk_dir())
            .env("PACKAGE", package)
            .env("API_KEY", SDK_KEY)
            .env("PORT", port.to_string())
            .env("NODE_ENV", "production")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(json) = line.strip_prefix("SLTEST ") {
                    if let Ok(v) = serde_json::from_str::<Value>(json) {
                        let _ = tx.send(v);
                    }
                }
            }
        });
        let mut app = SdkApp {
            child,
            events,
            seen: vec![],
            url: format!("http://127.0.0.1:{port}"),
        };
        app.wait_event("ready").await;
        app
    }

    /// Waits (up to 10 s) for the app to report `name`.
    pub async fn wait_event(&mut self, name: &str) -> Value {
        self.wait_for(name, Duration::from_secs(10), |_| true).await
    }

    /// Waits up to `within` for the app to report `name` with an event that
    /// satisfies `pred`.
    pub async fn wait_for(
        &mut self,
        name: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if v["event"] == name && pred(&v) {
                        return v;
                    }
                }
                _ => panic!(
                    "SDK app never reported a matching {name}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Like [`SdkApp::wait_for`], but an event already seen (while waiting
    /// for another) counts too: for events whose order is not fixed.
    pub async fn seen_or_wait(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| v["event"] == name && pred(v)) {
            return v.clone();
        }
        self.wait_for(name, Duration::from_secs(5), pred).await
    }

    /// Collects events for `d` and returns how many were `name`.
    pub async fn count_within(&mut self, name: &str, d: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(v)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            self.seen.push(v);
        }
        self.seen.iter().filter(|v| v["event"] == name).count()
    }

    /// Asks a driven app (`device_calls_app.mjs`) to make one SDK call;
    /// its outcome is reported as `tag`.
    pub async fn call(&self, call: &str, args: Value, tag: &str) {
        self.post_call(serde_json::json!({"call": call, "args": args, "tag": tag}))
            .await;
    }

    /// [`SdkApp::call`] on the session of `user`, for an app serving
    /// several users (`messaging_app.mjs`).
    pub async fn call_as(&self, user: &str, call: &str, args: Value, tag: &str) {
        self.post_call(serde_json::json!({"user": user, "call": call, "args": args, "tag": tag}))
            .await;
    }

    async fn post_call(&self, body: Value) {
        let addr: std::net::SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("app address");
        let (status, answer) =
            super::http(addr, "POST", "/test/call", None, Some(body.clone())).await;
        assert_eq!(status, 200, "the app took the call {body}: {answer}");
    }

    /// Ends the app's process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
