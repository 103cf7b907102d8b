//! Sightline terminating TLS itself: with a certificate and key it serves
//! HTTPS and `wss://`, the public WebSocket URL apps are given is `wss://`,
//! glasses connect over `wss://`, and a real `@mentra/sdk@2.1.29` app that
//! trusts the certificate (`NODE_EXTRA_CA_CERTS`) runs its session over
//! `wss://` and makes its `https://` calls to Sightline. A certificate file
//! that is missing is a startup error.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use sightline::server::tls::TlsFiles;
use sightline::server::{serve_on, ServerConfig, Sightline};
use sightline::store::{AppType, MemoryStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for 127.0.0.1, written to `dir`.
fn self_signed(dir: &std::path::Path) -> (TlsFiles, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("self-signed certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write key");
    (TlsFiles { cert, key }, certified.cert.der().clone())
}

fn connector(trusted: CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted).expect("trust the certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_stream(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// An HTTPS GET; returns status and body.
async fn https_get(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    path: &str,
) -> (u16, String) {
    let mut s = tls_stream(connector, addr).await;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    parse_http_response(&buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glasses_and_an_sdk_app_run_over_wss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (files, der) = self_signed(dir.path());
    let cert_path = files.cert.display().to_string();
    let server = TestServer::start_with(
        move |c| {
            c.runtime.public_ws_url =
                sightline::server::config::default_public_ws_url_for(c.bind, true);
            c.tls = Some(files);
        },
        Arc::new(MemoryStore::new()),
    );
    let addr = server.addr;
    let tls = connector(der);

    // HTTPS for the REST API; plain HTTP is not answered.
    let (status, body) = https_get(&tls, addr, "/health").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(addr, "GET", "/health", None, None).await;
    assert_ne!(status, 200, "plain HTTP on a TLS port");

    // Glasses over wss://.
    let mut req = format!("wss://{addr}/glasses-ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", token("tls@example.com"))
            .parse()
            .expect("header"),
    );
    let (mut glasses, _) = tokio_tungstenite::client_async(req, tls_stream(&tls, addr).await)
        .await
        .expect("wss upgrade");
    let next = |m: Option<Result<Message, _>>| -> Value {
        match m {
            Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).expect("json"),
            other => panic!("expected a text message, got {other:?}"),
        }
    };
    let ack = next(glasses.next().await);
    assert_eq!(ack["type"], "connection_ack", "{ack}");

    // A real SDK app: its session runs over wss://, and its settings come
    // from Sightline over https://.
    let package = "com.sightline.tls";
    let mut app = SdkApp::start(
        "webview_app.mjs",
        package,
        &[("NODE_EXTRA_CA_CERTS", cert_path.as_str())],
    )
    .await;
    server
        .register(package, &app.url, SDK_KEY, AppType::Standard)
        .await;
    glasses
        .send(Message::text(
            json!({"type": "start_app", "packageName": package}).to_string(),
        ))
        .await
        .expect("send");
    let session = app.wait_event("session").await;
    assert_eq!(session["https"], format!("https://{addr}"));
    let settings = app.wait_event("settings").await;
    assert_eq!(settings["ok"], true, "{settings}");
    assert_eq!(settings["settings"][0]["key"], "color", "{settings}");
    // The SDK's permission checks reach Sightline over https.
    let permissions = app.wait_event("permissions").await;
    assert_eq!(permissions["ok"], true, "{permissions}");
    assert!(
        permissions["body"]["permissions"].is_array(),
        "{permissions}"
    );
    app.stop().await;
    server.stop().await;
}

#[test]
fn the_default_urls_are_secure_and_a_missing_certificate_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ServerConfig::from_lookup(|k| match k {
        "SIGHTLINE_JWT_SECRET" => Some("s".into()),
        "SIGHTLINE_BIND" => Some("127.0.0.1:8443".into()),
        "SIGHTLINE_TLS_CERT" => Some(dir.path().join("missing.pem").display().to_string()),
        "SIGHTLINE_TLS_KEY" => Some(dir.path().join("key.pem").display().to_string()),
        _ => None,
    })
    .expect("config");
    assert_eq!(c.runtime.public_ws_url, "wss://127.0.0.1:8443/app-ws");
    assert_eq!(c.public_api_url(), "https://127.0.0.1:8443");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut config = c;
    config.data_dir = PathBuf::from(dir.path());
    let e = actix_rt::System::new().block_on(async move {
        let sightline = Sightline::builder(config)
            .store(Arc::new(MemoryStore::new()))
            .build()
            .expect("build");
        serve_on(listener, sightline).err()
    });
    let e = e.expect("serving without the certificate fails");
    assert!(e.to_string().contains("missing.pem"), "{e}");
}
