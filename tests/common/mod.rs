//! Test harness: a Sightline server on a free loopback port, a glasses
//! client, a raw HTTP client, and a fake app server that answers webhooks
//! the way the SDK does (connect, init, wait for the ack, then answer 200).

#![allow(dead_code)]

pub mod cluster;
pub mod outage;
pub mod sdk;
pub mod speech;
#[allow(unused_imports)]
pub use sdk::*;

use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sightline::server::{serve_on, ServerConfig, Sightline};
use sightline::store::{hash_api_key, AppRecord, AppType, MemoryStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret";
/// The app most tests run, answered by a [`FakeApp`].
pub const PKG: &str = "com.example.notes";
pub const KEY: &str = "notes-api-key";
pub const ADMIN: &str = "admin-token-123";
pub const WAIT: Duration = Duration::from_secs(5);

/// A Sightline server running in its own thread with its own actix system.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    supervisor: actix::Addr<sightline::runtime::SessionSupervisor>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {}, Arc::new(MemoryStore::new()))
    }

    pub fn start_with(tweak: impl FnOnce(&mut ServerConfig), store: Arc<dyn Store>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let mut config = ServerConfig::new(SECRET);
        config.bind = addr;
        config.admin_token = Some(ADMIN.into());
        config.runtime.public_ws_url = format!("ws://{addr}/app-ws");
        config.runtime.session_threads = 2;
        tweak(&mut config);
        let (tx, rx) = mpsc::channel();
        let s = store.clone();
        let thread = std::thread::spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let sightline = Sightline::builder(config).store(s).build().expect("build");
                let supervisor = sightline.runtime().supervisor.clone();
                let server = serve_on(listener, sightline).expect("serve");
                tx.send((server.handle(), supervisor)).expect("send handle");
                let _ = server.await;
            });
        });
        let (handle, supervisor) = rx.recv().expect("server handle");
        TestServer {
            addr,
            store,
            supervisor,
            handle,
            thread: Some(thread),
        }
    }

    /// The runtime's supervisor, for tests that inspect or inject faults.
    pub fn supervisor(&self) -> &actix::Addr<sightline::runtime::SessionSupervisor> {
        &self.supervisor
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub async fn register(
        &self,
        package: &str,
        public_url: &str,
        api_key: &str,
        app_type: AppType,
    ) {
        self.register_with(package, public_url, api_key, app_type, &["ALL"])
            .await
    }

    pub async fn register_with(
        &self,
        package: &str,
        public_url: &str,
        api_key: &str,
        app_type: AppType,
        permissions: &[&str],
    ) {
        self.store
            .upsert_app(AppRecord {
                package_name: package.into(),
                name: package.into(),
                description: String::new(),
                public_url: public_url.into(),
                hashed_api_key: hash_api_key(api_key),
                app_type,
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                settings_schema: vec![json!({"key": "color", "type": "text", "value": "green"})],
                logo_url: None,
            })
            .await
            .expect("register app");
    }

    pub async fn stop(mut self) {
        self.handle.stop(false).await;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Best effort when a test panicked before calling stop().
            let h = self.handle.clone();
            std::thread::spawn(move || {
                let rt = actix_rt::System::new();
                rt.block_on(h.stop(false));
            });
        }
    }
}

/// A signed glasses core token for `email`.
pub fn token(email: &str) -> String {
    token_with(json!({"email": email, "sub": email}), SECRET)
}

pub fn token_with(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket client (glasses or app) with JSON helpers.
pub struct Client {
    ws: Ws,
    /// Binary frames seen while waiting for text.
    pub binary: Vec<Vec<u8>>,
}

/// What a client saw when the socket closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Client {
    pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Client, (u16, String)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().expect("request");
        if let Some(t) = bearer {
            req.headers_mut().insert(
                "Authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        // Small frames go out at once (no Nagle delay behind an unacknowledged one).
        match tokio_tungstenite::connect_async_with_config(req, None, true).await {
            Ok((ws, _)) => Ok(Client { ws, binary: vec![] }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default();
                Err((status, body))
            }
            Err(e) => Err((0, e.to_string())),
        }
    }

    pub async fn glasses(server: &TestServer, email: &str) -> Client {
        let mut c = Client::connect(&server.ws_url("/glasses-ws"), Some(&token(email)))
            .await
            .expect("glasses connect");
        let ack = c.expect_type("connection_ack").await;
        assert_eq!(ack["sessionId"], email);
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// Sends `m`, giving back the error when the socket is gone.
    pub async fn try_send_raw(&mut self, m: Message) -> Result<(), String> {
        self.ws.send(m).await.map_err(|e| e.to_string())
    }

    /// Next text message as JSON, or the close, within `WAIT`.
    pub async fn next(&mut self) -> Result<Value, Closed> {
        self.next_within(WAIT).await
    }

    pub async fn next_within(&mut self, d: Duration) -> Result<Value, Closed> {
        // One deadline for the whole wait: pings and binary frames do not
        // extend it.
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let item = tokio::time::timeout_at(deadline, self.ws.next()).await;
            match item {
                Err(_) => {
                    return Err(Closed {
                        code: 0,
                        reason: "timeout".into(),
                    })
                }
                Ok(None) => {
                    return Err(Closed {
                        code: 1006,
                        reason: "eof".into(),
                    })
                }
                Ok(Some(Err(e))) => {
                    return Err(Closed {
                        code: 1006,
                        reason: e.to_string(),
                    })
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Ok(serde_json::from_str(&t).expect("server sent JSON"))
                }
                Ok(Some(Ok(Message::Binary(b)))) => self.binary.push(b.to_vec()),
                Ok(Some(Ok(Message::Close(f)))) => {
                    return Err(f.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f: CloseFrame| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                    ))
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Waits for a message of `kind`, skipping others.
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        loop {
            match self.next().await {
                Ok(v) if v["type"] == kind => return v,
                Ok(_) => continue,
                Err(c) => panic!("waiting for {kind}: socket ended {c:?}"),
            }
        }
    }

    /// Waits for a `display_event` attributed to `package`, skipping others
    /// (boot screens, clears and dashboard renders come from the dashboard
    /// package).
    pub async fn expect_display_from(&mut self, package: &str) -> Value {
        self.expect(&format!("a display from {package}"), |v| {
            v["type"] == "display_event" && v["packageName"] == package
        })
        .await
    }

    /// Waits for a message matching `pred`, skipping others.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.next().await {
                Ok(v) if pred(&v) => return v,
                Ok(_) => continue,
                Err(c) => panic!("waiting for {what}: socket ended {c:?}"),
            }
        }
    }

    /// Collects every message until `d` of silence.
    pub async fn drain(&mut self, d: Duration) -> Vec<Value> {
        let mut out = vec![];
        while let Ok(v) = self.next_within(d).await {
            out.push(v);
        }
        out
    }

    /// Waits for the close, skipping messages; returns it.
    pub async fn expect_close(&mut self) -> Closed {
        loop {
            match self.next().await {
                Ok(_) => continue,
                Err(c) => return c,
            }
        }
    }

    pub async fn close(mut self, code: u16) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            }))
            .await;
    }
}

/// A raw HTTP/1.1 request; returns status and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, text) = http_raw(addr, method, path, bearer, body.as_bytes()).await;
    (status, dechunk(&text))
}

fn dechunk(body: &str) -> String {
    // Responses here are small; chunked bodies are "<hex>\r\n<data>\r\n0\r\n\r\n".
    let mut lines = body.split("\r\n");
    match lines.next().map(|l| usize::from_str_radix(l.trim(), 16)) {
        Some(Ok(_)) if body.ends_with("0\r\n\r\n") => lines.next().unwrap_or_default().to_string(),
        _ => body.to_string(),
    }
}

/// How the fake app server answers webhooks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AppBehaviour {
    /// Connect to Sightline like the SDK, answer 200 after the ack.
    Connect,
    /// Answer 500 to the first `fail_first` session requests, then connect.
    FailFirst(usize),
    /// Never connect; answer 200 at once.
    Ignore,
}

/// A fake app server: records webhooks, and for session requests opens the
/// app socket the way the SDK does. Connected app sockets are handed out
/// through `sockets`.
pub struct FakeApp {
    pub url: String,
    pub webhooks: Arc<Mutex<Vec<Value>>>,
    /// The request head (request line and headers) of each webhook.
    pub heads: Arc<Mutex<Vec<String>>>,
    pub sockets: tokio::sync::mpsc::UnboundedReceiver<(Client, Value)>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApp {
    pub async fn start(package: &str, api_key: &str, behaviour: AppBehaviour) -> FakeApp {
        Self::start_with(package, api_key, behaviour, Duration::ZERO).await
    }

    /// Like `start`, but answers each `stop_request` only after `stop_delay`,
    /// recording `stop_answered` when it does. Connections are served
    /// concurrently, as a real app server would.
    pub async fn start_with(
        package: &str,
        api_key: &str,
        behaviour: AppBehaviour,
        stop_delay: Duration,
    ) -> FakeApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let webhooks = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let all_heads = heads.clone();
        let (tx, sockets) = tokio::sync::mpsc::unbounded_channel();
        let (pkg, key, hooks) = (package.to_string(), api_key.to_string(), webhooks.clone());
        let session_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let heads = all_heads.clone();
                let (pkg, key, hooks, tx, count) = (
                    pkg.clone(),
                    key.clone(),
                    hooks.clone(),
                    tx.clone(),
                    session_requests.clone(),
                );
                tokio::spawn(async move {
                    let Some((head, body)) = read_http_message(&mut stream).await else {
                        return;
                    };
                    heads.lock().expect("lock").push(head);
                    hooks.lock().expect("lock").push(body.clone());
                    let mut status = 200;
                    if body["type"] == "session_request" {
                        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        let fail = matches!(behaviour, AppBehaviour::FailFirst(k) if n <= k);
                        if fail {
                            status = 500;
                        } else if behaviour != AppBehaviour::Ignore {
                            let ws_url = body["mentraOSWebsocketUrl"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string();
                            let mut app =
                                Client::connect(&ws_url, None).await.expect("app connect");
                            app.send(json!({
                                "type": "tpa_connection_init",
                                "sessionId": body["sessionId"],
                                "packageName": pkg,
                                "apiKey": key,
                                "timestamp": "2025-01-01T00:00:00.000Z",
                            }))
                            .await;
                            let ack = app.expect_type("tpa_connection_ack").await;
                            let _ = tx.send((app, ack));
                        }
                    } else if body["type"] == "stop_request" && !stop_delay.is_zero() {
                        tokio::time::sleep(stop_delay).await;
                        hooks
                            .lock()
                            .expect("lock")
                            .push(json!({"type": "stop_answered"}));
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{{\"status\":\"success\"}}"
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        FakeApp {
            url,
            webhooks,
            heads,
            sockets,
            task,
        }
    }

    /// The next app socket the fake server opened, with its ack.
    pub async fn next_socket(&mut self) -> (Client, Value) {
        tokio::time::timeout(WAIT, self.sockets.recv())
            .await
            .expect("app connected in time")
            .expect("fake app alive")
    }

    pub fn webhook_types(&self) -> Vec<String> {
        self.webhooks
            .lock()
            .expect("lock")
            .iter()
            .map(|v| v["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for FakeApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 message (a request, or a response on a connection
/// kept open) up to its Content-Length: its head and its JSON body.
pub async fn read_http_message(stream: &mut TcpStream) -> Option<(String, Value)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                let body = serde_json::from_str(&body[..len]).ok()?;
                return Some((head.to_string(), body));
            }
        }
    }
}

/// Starts `package` from the glasses and returns the connected app socket.
pub async fn start_app(glasses: &mut Client, fake: &mut FakeApp, package: &str) -> Client {
    glasses
        .send(json!({"type": "start_app", "packageName": package}))
        .await;
    let (app, ack) = fake.next_socket().await;
    assert_eq!(ack["type"], "tpa_connection_ack");
    glasses
        .expect("app running", |v| {
            v["type"] == "app_state_change"
                && v["userSession"]["activeAppSessions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|p| p == package))
        })
        .await;
    app
}

/// Polls the async `cond` until it holds or `WAIT` passes: how tests wait
/// for something to have happened instead of sleeping a fixed time.
pub async fn eventually_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The session of `user` as the operators' `/sessions/{user}` shows it
/// (`Value::Null` when there is none).
pub async fn session_view(server: &TestServer, user: &str) -> Value {
    let (status, body) = http(
        server.addr,
        "GET",
        &format!("/sessions/{user}"),
        Some(ADMIN),
        None,
    )
    .await;
    if status != 200 {
        return Value::Null;
    }
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The state of `package` in `user`'s session ("running", "reconnecting",
/// …), if it is there.
pub async fn app_state(server: &TestServer, user: &str, package: &str) -> Option<String> {
    let view = session_view(server, user).await;
    view["apps"]
        .as_array()?
        .iter()
        .find(|a| a["packageName"] == package)
        .and_then(|a| a["state"].as_str().map(str::to_string))
}

/// Waits until `package` is in `state` in `user`'s session.
pub async fn wait_app_state(server: &TestServer, user: &str, package: &str, state: &str) {
    eventually_async(&format!("{package} {state} for {user}"), || async {
        app_state(server, user, package).await.as_deref() == Some(state)
    })
    .await;
}

/// Waits until `package`'s subscriptions in `user`'s session are `subs`.
pub async fn wait_subscribed(server: &TestServer, user: &str, package: &str, subs: &[&str]) {
    eventually_async(&format!("{package} subscribed to {subs:?}"), || async {
        let view = session_view(server, user).await;
        view["apps"].as_array().is_some_and(|apps| {
            apps.iter()
                .any(|a| a["packageName"] == package && a["subscriptions"] == json!(subs))
        })
    })
    .await;
}

/// A raw HTTP/1.1 request with a body of any bytes; returns status and
/// body. The server may answer and close before reading a body it refuses.
pub async fn http_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    http_raw_typed(addr, method, path, bearer, "application/json", body).await
}

/// [`http_raw`] with a body of another content type.
pub async fn http_raw_typed(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    // A server may answer and close before reading a body it refuses.
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    parse_http_response(&buf)
}

/// Status and body of a whole HTTP/1.1 response.
pub fn parse_http_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// POSTs a multipart form (text fields, then files as `(field, filename,
/// content type, bytes)`) the way a phone uploads a photo; returns status
/// and body.
pub async fn post_multipart(
    url: &str,
    bearer: Option<&str>,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> (u16, String) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let addr: SocketAddr = host.parse().expect("a loopback address");
    let boundary = "sightline-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (name, filename, ctype, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let (status, body) = http_raw_typed(addr, "POST", &path, bearer, &content_type, &body).await;
    (status, dechunk(&body))
}

/// Waits until the session has handled everything `app` sent before: a
/// `stream_status_check` goes through the same mailbox in order, and its
/// answer comes back.
pub async fn settled(app: &mut Client) {
    app.send(json!({"type": "stream_status_check"})).await;
    app.expect_type("stream_status_check_response").await;
}

/// Polls `cond` until it holds or `WAIT` passes.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server with [`PKG`] registered (a standard app whose fake server
/// answers like the SDK) and `email`'s glasses connected.
pub async fn setup(email: &str) -> (TestServer, FakeApp, Client) {
    setup_with(|_| {}, email).await
}

/// [`setup`] with the server configuration changed by `tweak`.
pub async fn setup_with(
    tweak: impl FnOnce(&mut ServerConfig),
    email: &str,
) -> (TestServer, FakeApp, Client) {
    let server = TestServer::start_with(tweak, Arc::new(MemoryStore::new()));
    let fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let glasses = Client::glasses(&server, email).await;
    (server, fake, glasses)
}

/// The `/metrics` page, read with the admin token.
pub async fn scrape(server: &TestServer) -> String {
    let (status, page) = http(server.addr, "GET", "/metrics", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{page}");
    page
}

/// The value of one sample of a Prometheus text page (0 when absent).
pub fn metric_sample(page: &str, key: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}
