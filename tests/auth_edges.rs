//! Credentials at the front door: every authenticated POST/PUT route
//! answers 401 to a missing or wrong credential before it reads the body,
//! glasses tokens with time claims of the wrong type or outside their
//! window are refused on `/glasses-ws`, and the unauthenticated `/health`
//! says nothing about users.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_credential_is_refused_before_the_body_is_parsed() {
    let server = TestServer::start();
    let fake = FakeApp::start(PKG, KEY, AppBehaviour::Ignore).await;
    server
        .register(PKG, &fake.url, KEY, sightline::store::AppType::Standard)
        .await;
    let forged = token_with(json!({"email": "u@example.com"}), "not-the-secret");
    let admin_routes = [
        ("POST", "/api/admin/apps".to_string()),
        ("PUT", format!("/api/admin/apps/{PKG}")),
        ("POST", format!("/api/admin/apps/{PKG}/api-key")),
    ];
    let user_routes = [
        ("POST", format!("/api/apps/install/{PKG}")),
        ("POST", format!("/api/apps/uninstall/{PKG}")),
        ("POST", format!("/appsettings/{PKG}")),
    ];
    // Malformed, wrongly typed and schema-violating bodies.
    let bodies: [&[u8]; 4] = [
        b"{not json",
        b"[1, 2, 3]",
        br#"{"packageName": 7, "publicUrl": false}"#,
        b"",
    ];
    let routes = admin_routes
        .iter()
        .map(|r| (r, [None, Some("wrong-admin-token"), Some(forged.as_str())]))
        .chain(
            user_routes
                .iter()
                .map(|r| (r, [None, Some("not-a-jwt"), Some(forged.as_str())])),
        );
    for ((method, path), bearers) in routes {
        for bearer in bearers {
            for body in bodies {
                let (status, text) = http_raw(server.addr, method, path, bearer, body).await;
                let shown = String::from_utf8_lossy(body);
                assert_eq!(
                    status, 401,
                    "{method} {path} with bearer {bearer:?} and body {shown:?}: {text}"
                );
                let err: Value = serde_json::from_str(&text).unwrap_or_default();
                assert_eq!(err["error"]["code"], "UNAUTHORIZED", "{text}");
                assert!(
                    !text.contains("packageName") && !text.contains("line"),
                    "the answer says nothing about the body: {text}"
                );
            }
        }
    }
    // With the credential, the same malformed body is a 400.
    let (status, _) = http_raw(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        b"{not json",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = http_raw(
        server.addr,
        "POST",
        &format!("/appsettings/{PKG}"),
        Some(&token("u@example.com")),
        b"{not json",
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glasses_tokens_with_bad_time_claims_are_refused() {
    let server = TestServer::start_with(
        |c| c.core_token_rules.leeway_secs = 5,
        std::sync::Arc::new(sightline::store::MemoryStore::new()),
    );
    let url = server.ws_url("/glasses-ws");
    let email = "clock@example.com";
    let refused = [
        json!({"email": email, "exp": "9999999999"}),
        json!({"email": email, "exp": -1}),
        json!({"email": email, "exp": null}),
        json!({"email": email, "exp": now() - 30}),
        json!({"email": email, "nbf": now() + 30}),
        json!({"email": email, "nbf": "0"}),
        json!({"email": email, "iat": now() + 3600}),
    ];
    for claims in refused {
        let t = token_with(claims.clone(), SECRET);
        match Client::connect(&url, Some(&t)).await {
            Err((status, _)) => assert_eq!(status, 401, "{claims}"),
            Ok(_) => panic!("accepted a token with {claims}"),
        }
    }
    let accepted = [
        json!({"email": email}),
        json!({"email": email, "exp": now() + 60, "nbf": now() - 1, "iat": now()}),
        // Within the configured 5 s of leeway.
        json!({"email": email, "exp": now() - 2}),
    ];
    for claims in accepted {
        let t = token_with(claims.clone(), SECRET);
        let mut g = Client::connect(&url, Some(&t))
            .await
            .unwrap_or_else(|e| panic!("refused a token with {claims}: {e:?}"));
        g.expect_type("connection_ack").await;
        g.close(1000).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_nothing_about_sessions() {
    let (server, _fake, _glasses) = setup("health@example.com").await;
    let (status, text) = http(server.addr, "GET", "/health", None, None).await;
    assert_eq!(status, 200, "{text}");
    let health: Value = serde_json::from_str(&text).expect("JSON");
    let keys: Vec<&String> = health.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["status", "store"], "{text}");
    assert_eq!(health["status"], "ok");
    // The count is for operators, behind the admin token.
    let (status, _) = http(server.addr, "GET", "/stats", None, None).await;
    assert_eq!(status, 401);
    let (status, text) = http(server.addr, "GET", "/stats", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await;
}
