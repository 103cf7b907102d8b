//! Webview sign-in with a real `@mentra/sdk@2.1.29` app: the phone asks
//! Sightline for a temporary token, the webview URL carries it with
//! Sightline's URL and its checksum, and the app's SDK middleware learns
//! the user by trading the token at Sightline. A token is good once and
//! briefly; a wrong API key is refused; a signed user token is verified
//! offline by the SDK with Sightline's public key.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sightline::store::{AppType, MemoryStore};

const USER: &str = "viewer@example.com";

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn app_addr(app: &SdkApp) -> std::net::SocketAddr {
    app.url
        .trim_start_matches("http://")
        .parse()
        .expect("app address")
}

/// What the app's webview page says about who is looking.
async fn whoami(app: &SdkApp, query: &str) -> Value {
    let (status, body) = http(
        app_addr(app),
        "GET",
        &format!("/whoami?{query}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// The phone's request for a temporary token: token, cloudApiUrl, checksum.
async fn webview_token(server: &TestServer, package: &str) -> (String, String, String) {
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/auth/generate-webview-token",
        Some(&token(USER)),
        Some(json!({"packageName": package})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["success"], true);
    let s = |k: &str| v[k].as_str().expect(k).to_string();
    (s("token"), s("cloudApiUrl"), s("cloudApiUrlChecksum"))
}

fn webview_query(token: &str, url: &str, checksum: &str) -> String {
    format!(
        "aos_temp_token={}&cloudApiUrl={}&cloudApiUrlChecksum={}",
        query_escape(token),
        query_escape(url),
        query_escape(checksum)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webview_learns_its_user_through_sightlines_exchange_once() {
    let package = "com.sightline.webview";
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_path_buf();
    let server = TestServer::start_with(
        move |c| {
            c.data_dir = dir;
            c.webview_tokens.ttl = Duration::from_millis(1500);
        },
        Arc::new(MemoryStore::new()),
    );
    let app = SdkApp::start("webview_app.mjs", package, &[]).await;
    server
        .register(package, &app.url, SDK_KEY, AppType::Standard)
        .await;

    let (tok, url, checksum) = webview_token(&server, package).await;
    assert_eq!(url, format!("http://{}", server.addr));
    let query = webview_query(&tok, &url, &checksum);
    assert_eq!(whoami(&app, &query).await["userId"], USER);

    // The same token again: refused by Sightline, so the page has no user.
    assert_eq!(whoami(&app, &query).await["userId"], Value::Null);
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/auth/exchange-user-token",
        Some(SDK_KEY),
        Some(json!({"aos_temp_token": tok, "packageName": package})),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v,
        json!({"success": false, "error": "Invalid or expired token"})
    );

    // An expired token.
    let (old, url, checksum) = webview_token(&server, package).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        whoami(&app, &webview_query(&old, &url, &checksum)).await["userId"],
        Value::Null
    );

    // A wrong API key is refused, and does not use the token up.
    let (fresh, url, checksum) = webview_token(&server, package).await;
    let exchange = |key: &'static str, body: Value| {
        let addr = server.addr;
        async move {
            let (status, text) = http(
                addr,
                "POST",
                "/api/auth/exchange-user-token",
                Some(key),
                Some(body),
            )
            .await;
            (status, serde_json::from_str::<Value>(&text).expect("json"))
        }
    };
    let (status, v) = exchange(
        "not-the-key",
        json!({"aos_temp_token": fresh, "packageName": package}),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (401, json!("Invalid API Key"))
    );
    let (status, v) = exchange(
        SDK_KEY,
        json!({"aos_temp_token": fresh, "packageName": "com.unknown"}),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (401, json!("Invalid API Key or Package Name"))
    );
    let (status, v) = exchange(SDK_KEY, json!({"packageName": package})).await;
    assert_eq!(
        (status, v["error"].clone()),
        (400, json!("Missing aos_temp_token"))
    );
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/auth/exchange-user-token",
        None,
        Some(json!({"aos_temp_token": fresh, "packageName": package})),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        whoami(&app, &webview_query(&fresh, &url, &checksum)).await["userId"],
        USER
    );

    // The checksum a phone may ask for is the same, for Sightline's URL only.
    let phone = token(USER);
    let hash = |text: &str| {
        http(
            server.addr,
            "POST",
            "/api/auth/hash-with-api-key",
            Some(&phone),
            Some(json!({"stringToHash": text, "packageName": package})),
        )
    };
    let (status, body) = hash(&url).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["hash"], checksum.as_str());
    let (status, _) = hash("https://elsewhere.example").await;
    assert_eq!(status, 403);
    let (status, _) = hash(USER).await;
    assert_eq!(
        status, 403,
        "a user id is never hashed: that is a frontend token"
    );

    // Only a signed-in phone gets tokens, and only for registered apps.
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/auth/generate-webview-token",
        None,
        Some(json!({"packageName": package})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/auth/generate-webview-token",
        Some(&token(USER)),
        Some(json!({"packageName": "com.unknown"})),
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_verifies_sightlines_signed_user_token_offline() {
    let package = "com.sightline.signed";
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_path_buf();
    let server = TestServer::start_with(move |c| c.data_dir = dir, Arc::new(MemoryStore::new()));
    let (status, public_key) = http(
        server.addr,
        "GET",
        "/.well-known/sightline-user-token-key.pem",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        public_key.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{public_key}"
    );
    assert!(
        data.path().join("user-token-key.pem").exists(),
        "the key is kept in the data directory"
    );
    let app = SdkApp::start(
        "webview_app.mjs",
        package,
        &[("MENTRAOS_CLOUD_USER_TOKEN_PUBLIC_KEY", public_key.as_str())],
    )
    .await;
    server
        .register(package, &app.url, SDK_KEY, AppType::Standard)
        .await;

    let signed = |server_addr| async move {
        let (status, body) = http(
            server_addr,
            "POST",
            "/api/auth/generate-webview-signed-user-token",
            Some(&token(USER)),
            Some(json!({"packageName": package})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["expiresIn"], "10m");
        v["token"].as_str().expect("token").to_string()
    };
    let jwt = signed(server.addr).await;
    let q = format!("aos_signed_user_token={}", query_escape(&jwt));
    assert_eq!(whoami(&app, &q).await["userId"], USER);

    // Its frontendToken is the one the SDK checks with the app's API key.
    let payload = jwt.split('.').nth(1).expect("payload");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims");
    let hashed = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(SDK_KEY.as_bytes()));
    let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        format!("{USER}{hashed}").as_bytes(),
    ));
    assert_eq!(claims["frontendToken"], format!("{USER}:{expected}"));
    let q = format!(
        "aos_frontend_token={}",
        query_escape(&format!("{USER}:{expected}"))
    );
    assert_eq!(whoami(&app, &q).await["userId"], USER);

    // After a rotation, tokens are signed with a key the app does not hold.
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/admin/user-token-key",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rotated: Value = serde_json::from_str(&body).expect("json");
    assert_ne!(rotated["publicKey"], public_key.as_str());
    let jwt = signed(server.addr).await;
    let q = format!("aos_signed_user_token={}", query_escape(&jwt));
    assert_eq!(whoami(&app, &q).await["userId"], Value::Null);
    let (status, _) = http(server.addr, "POST", "/api/admin/user-token-key", None, None).await;
    assert_eq!(status, 401);
    app.stop().await;
    server.stop().await;
}
