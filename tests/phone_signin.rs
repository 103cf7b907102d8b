//! Phone sign-in: the phone exchanges its identity provider's token for a
//! Sightline core token (`POST /auth/exchange-token`) and connects its
//! glasses with it. The provider is a test one: an HS256 secret, or RS256
//! keys published as a JWKS by a server the test runs.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sightline::server::token_exchange::{IdentityProvider, IdpKeys};
use sightline::store::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const IDP_SECRET: &str = "test-identity-provider-secret";
const ISSUER: &str = "https://idp.example.test/auth/v1";
const AUDIENCE: &str = "authenticated";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn claims(email: &str) -> Value {
    json!({"sub": "b7f3", "email": email, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now()})
}

fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn rs256(claims: &Value, kid: &str) -> String {
    let pem = include_bytes!("fixtures/idp_test_rsa.pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem).expect("test key"),
    )
    .expect("sign")
}

async fn exchange(server: &TestServer, token: Option<&str>) -> (u16, Value) {
    let body = match token {
        Some(t) => json!({"supabaseToken": t}),
        None => json!({}),
    };
    let (status, text) = http(
        server.addr,
        "POST",
        "/auth/exchange-token",
        None,
        Some(body),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn provider(keys: IdpKeys) -> IdentityProvider {
    IdentityProvider {
        keys,
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_token_becomes_a_core_token_the_glasses_connect_with() {
    let server = TestServer::start_with(
        |c| c.identity_provider = Some(provider(IdpKeys::Secret(IDP_SECRET.into()))),
        Arc::new(MemoryStore::new()),
    );
    let (status, answer) = exchange(
        &server,
        Some(&hs256(&claims("Wearer@Example.com"), IDP_SECRET)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let core = answer["coreToken"].as_str().expect("coreToken").to_string();
    let mut g = Client::connect(&server.ws_url("/glasses-ws"), Some(&core))
        .await
        .expect("the core token opens the glasses socket");
    g.send(json!({"type": "connection_init"})).await;
    g.expect_type("connection_ack").await;
    assert!(server
        .store
        .get_user("wearer@example.com")
        .await
        .ok()
        .flatten()
        .is_some());

    // Refusals, each with the original cloud's answer.
    let cases = [
        (Some(hs256(&claims("x@example.com"), "another-secret")), 401),
        (
            Some(hs256(
                &json!({"email": "x@example.com", "iss": "https://evil", "aud": AUDIENCE, "exp": now() + 600}),
                IDP_SECRET,
            )),
            401,
        ),
        (
            Some(hs256(
                &json!({"email": "x@example.com", "iss": ISSUER, "aud": "someone-else", "exp": now() + 600}),
                IDP_SECRET,
            )),
            401,
        ),
        (
            Some(hs256(
                &json!({"email": "x@example.com", "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600}),
                IDP_SECRET,
            )),
            401,
        ),
        (
            Some(hs256(
                &json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600}),
                IDP_SECRET,
            )),
            401,
        ),
        (Some("not-a-jwt".to_string()), 401),
        (None, 400),
    ];
    for (token, expected) in cases {
        let (status, answer) = exchange(&server, token.as_deref()).await;
        assert_eq!(status, expected, "{token:?}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    server.stop().await;
}

/// A JWKS server that counts how often it is asked.
async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().expect("addr")
    );
    let fetches = Arc::new(AtomicUsize::new(0));
    let count = fetches.clone();
    let body = include_str!("fixtures/idp_test_jwks.json");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (url, fetches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_are_checked_against_the_providers_published_keys() {
    let (url, fetches) = jwks_server().await;
    let server = TestServer::start_with(
        |c| c.identity_provider = Some(provider(IdpKeys::Jwks(url))),
        Arc::new(MemoryStore::new()),
    );
    let (status, answer) = exchange(
        &server,
        Some(&rs256(&claims("rsa@example.com"), "test-idp-key")),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = exchange(
        &server,
        Some(&rs256(&claims("rsa@example.com"), "test-idp-key")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the keys are cached");
    // An unknown key id is refused; asking again within the minute does
    // not make Sightline fetch the keys again.
    for _ in 0..3 {
        let (status, _) = exchange(
            &server,
            Some(&rs256(&claims("rsa@example.com"), "rotated-away")),
        )
        .await;
        assert_eq!(status, 401);
    }
    assert!(
        fetches.load(Ordering::SeqCst) <= 2,
        "refetched {} times",
        fetches.load(Ordering::SeqCst)
    );
    // An HS256 token is not accepted where the provider signs RS256.
    let (status, _) = exchange(
        &server,
        Some(&hs256(&claims("rsa@example.com"), IDP_SECRET)),
    )
    .await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_provider_the_exchange_says_so() {
    let server = TestServer::start();
    let (status, answer) =
        exchange(&server, Some(&hs256(&claims("x@example.com"), IDP_SECRET))).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("SIGHTLINE_IDP")),
        "{answer}"
    );
    server.stop().await;
}
