//! Simple storage end to end: a real `@mentra/sdk@2.1.29` app
//! (`tests/sdk/storage_app.mjs`) uses `session.simpleStorage` against
//! Sightline; what it stores survives an app restart and a server restart
//! on the embedded store and on MongoDB; and every refusal (wrong key,
//! another app's storage, an app the user does not have, over the size
//! bound, over the rate) answers exactly. The permissions route the SDK
//! reads is checked here too.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sightline::store::testing::Nx27017;
use sightline::store::{AppType, EmbeddedStore, MemoryStore, MongoConfig, MongoStore, Store};

const USER: &str = "keeper@example.com";

/// Makes one SDK call and waits for how it settled.
async fn run(sdk: &mut SdkApp, call: &str, args: Value, tag: &str) -> Value {
    sdk.call(call, args, tag).await;
    sdk.wait_for(tag, Duration::from_secs(10), |_| true).await
}

/// [`run`] that must resolve; answers the value.
async fn resolved(sdk: &mut SdkApp, call: &str, args: Value, tag: &str) -> Value {
    let done = run(sdk, call, args, tag).await;
    assert_eq!(done["outcome"], "resolved", "{call}: {done}");
    done["value"].clone()
}

/// The user's glasses start `package`, and the app reports its session.
async fn start_session(server: &TestServer, sdk: &mut SdkApp, package: &str) -> Client {
    let mut g = Client::glasses(server, USER).await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    g
}

/// Where a test's store lives, so a restarted server finds it again.
enum Backend {
    Embedded(PathBuf),
    Mongo(String),
}

impl Backend {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Embedded(dir) => {
                // The stopped server's handle may take a moment to go.
                for _ in 0..50 {
                    if let Ok(s) = EmbeddedStore::open(dir) {
                        return Arc::new(s);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("the embedded store in {} did not reopen", dir.display());
            }
            Backend::Mongo(uri) => Arc::new(
                MongoStore::connect(MongoConfig::new(uri.clone()))
                    .await
                    .expect("connect to nx-27017"),
            ),
        }
    }
}

/// The SDK's calls work against Sightline, and what they stored is read
/// back by a restarted app and through a restarted server.
async fn survives_restarts(backend: Backend, package: &str) {
    let server = TestServer::start_with(|_| {}, backend.open().await);
    let mut sdk = SdkApp::start("storage_app.mjs", package, &[]).await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Standard)
        .await;
    let mut g = start_session(&server, &mut sdk, package).await;

    // The SDK derives its storage URL from the WebSocket URL: ws:// gives
    // plain http://, so it reaches this server as it is.
    let base = resolved(&mut sdk, "baseUrl", json!({}), "base").await;
    assert_eq!(base, format!("http://{}", server.addr));

    assert_eq!(
        resolved(&mut sdk, "getAll", json!({}), "empty").await,
        json!({})
    );
    resolved(
        &mut sdk,
        "set",
        json!({"key": "theme", "value": "dark"}),
        "set",
    )
    .await;
    let many = json!({"data": {"count": "3", "a.b/c%d": "dotted ü", "empty": ""}});
    resolved(&mut sdk, "setMultiple", many, "many").await;
    resolved(&mut sdk, "flush", json!({}), "flush").await;
    resolved(&mut sdk, "forget", json!({}), "forget").await;
    let expected = json!({"theme": "dark", "count": "3", "a.b/c%d": "dotted ü", "empty": ""});
    assert_eq!(
        resolved(&mut sdk, "getAll", json!({}), "stored").await,
        expected,
        "read back from Sightline, not the SDK's cache"
    );
    let stored = server.store.get_storage(USER, package).await.expect("read");
    assert_eq!(stored.len(), 4);
    assert_eq!(
        resolved(&mut sdk, "delete", json!({"key": "count"}), "del").await,
        json!(true)
    );
    // A key with '/' and '%' goes through the per-key route percent-encoded.
    assert_eq!(
        resolved(&mut sdk, "delete", json!({"key": "a.b/c%d"}), "del2").await,
        json!(true)
    );
    let expected = json!({"theme": "dark", "empty": ""});

    // The app server restarts: a fresh SDK reads what it stored.
    let port: u16 = sdk
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    sdk.stop().await;
    g.send(json!({"type": "stop_app", "packageName": package}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sdk = SdkApp::start_on("storage_app.mjs", package, port, &[]).await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    assert_eq!(
        resolved(&mut sdk, "getAll", json!({}), "after_app_restart").await,
        expected
    );

    // The server restarts on the same store.
    g.close(1000).await;
    server.stop().await;
    let server = TestServer::start_with(|_| {}, backend.open().await);
    let _g = start_session(&server, &mut sdk, package).await;
    assert_eq!(
        resolved(&mut sdk, "getAll", json!({}), "after_server_restart").await,
        expected
    );
    assert_eq!(
        resolved(&mut sdk, "get", json!({"key": "theme"}), "one").await,
        json!("dark")
    );
    assert_eq!(
        resolved(&mut sdk, "clear", json!({}), "clear").await,
        json!(true)
    );
    resolved(&mut sdk, "forget", json!({}), "forget2").await;
    assert_eq!(
        resolved(&mut sdk, "getAll", json!({}), "cleared").await,
        json!({})
    );
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_apps_storage_survives_restarts_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    survives_restarts(
        Backend::Embedded(dir.path().to_path_buf()),
        "com.sightline.keeper",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_apps_storage_survives_restarts_on_mongodb() {
    let nx = Nx27017::start();
    survives_restarts(Backend::Mongo(nx.uri()), "com.sightline.keeper.mongo").await;
}

fn storage_path(user: &str) -> String {
    format!("/api/sdk/simple-storage/{}", user.replace('@', "%40"))
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_exactly() {
    let server = TestServer::start_with(
        |c| c.limits.storage_bytes = 64,
        Arc::new(MemoryStore::new()),
    );
    let (mine, theirs) = ("com.sightline.mine", "com.sightline.theirs");
    server
        .register(
            mine,
            "http://127.0.0.1:1",
            "mine-api-key",
            AppType::Standard,
        )
        .await;
    server
        .register(
            theirs,
            "http://127.0.0.1:1",
            "their-api-key",
            AppType::Standard,
        )
        .await;
    server.store.install_app(USER, mine).await.expect("install");
    server
        .store
        .install_app(USER, theirs)
        .await
        .expect("install");
    let path = storage_path(USER);
    let me = format!("{mine}:mine-api-key");
    let them = format!("{theirs}:their-api-key");

    // Their app stores a secret for the user.
    let (status, body) = http(
        server.addr,
        "PUT",
        &path,
        Some(&them),
        Some(json!({"data": {"secret": "s3"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parsed(&body),
        json!({"success": true, "bytes": 8, "maxBytes": 64})
    );

    let unauthorized = error_body("UNAUTHORIZED", "missing or wrong bearer token");
    for bearer in [
        None,
        Some("no-colon".to_string()),
        Some(format!("{mine}:wrong-key")),
        // A forged package: their name with my key.
        Some(format!("{theirs}:mine-api-key")),
        Some("com.unknown:mine-api-key".to_string()),
    ] {
        let (status, body) = http(server.addr, "GET", &path, bearer.as_deref(), None).await;
        assert_eq!(status, 401, "{bearer:?}: {body}");
        assert_eq!(parsed(&body), unauthorized, "{bearer:?}");
        // Also before a body is read: a write is refused the same way.
        let (status, _) = http(
            server.addr,
            "PUT",
            &path,
            bearer.as_deref(),
            Some(json!({"data": {"x": "y"}})),
        )
        .await;
        assert_eq!(status, 401);
    }

    // My key reaches my storage only: theirs is never in it.
    let (status, body) = http(server.addr, "GET", &path, Some(&me), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(parsed(&body), json!({"success": true, "data": {}}));
    let (status, body) = http(
        server.addr,
        "GET",
        &format!("{path}/secret"),
        Some(&me),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        parsed(&body),
        error_body("NOT_FOUND", "key \"secret\" is not stored")
    );
    let (status, _) = http(server.addr, "DELETE", &path, Some(&me), None).await;
    assert_eq!(status, 200);
    let (status, body) = http(
        server.addr,
        "GET",
        &format!("{path}/secret"),
        Some(&them),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parsed(&body),
        json!({"success": true, "data": {"key": "secret", "value": "s3"}}),
        "my clear left their storage alone"
    );

    // A user who has not installed the app, and is not running it.
    let stranger = storage_path("stranger@example.com");
    let (status, body) = http(server.addr, "GET", &stranger, Some(&me), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        parsed(&body),
        error_body(
            "FORBIDDEN",
            "com.sightline.mine is neither installed nor running for this user"
        )
    );
    assert!(
        server
            .store
            .get_user("stranger@example.com")
            .await
            .expect("read")
            .is_none(),
        "no user was created"
    );

    // Over the size bound: refused whole, nothing written.
    let (status, body) = http(
        server.addr,
        "PUT",
        &path,
        Some(&me),
        Some(json!({"data": {"a": "1", "big": "x".repeat(61)}})),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        parsed(&body),
        error_body(
            "PAYLOAD_TOO_LARGE",
            "simple storage would hold 66 bytes of keys and values; at most 64 are stored per \
             user and app (SIGHTLINE_STORAGE_MAX_BYTES)"
        )
    );
    let (_, body) = http(server.addr, "GET", &path, Some(&me), None).await;
    assert_eq!(parsed(&body), json!({"success": true, "data": {}}));

    // One key at a time, then past the bound by one byte.
    let (status, body) = http(
        server.addr,
        "PUT",
        &format!("{path}/note"),
        Some(&me),
        Some(json!({"value": "x".repeat(60)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parsed(&body),
        json!({"success": true, "bytes": 64, "maxBytes": 64})
    );
    let (status, _) = http(
        server.addr,
        "PUT",
        &format!("{path}/n"),
        Some(&me),
        Some(json!({"value": ""})),
    )
    .await;
    assert_eq!(status, 413);

    // Malformed writes.
    for (route, body, message) in [
        (
            path.clone(),
            json!({"data": {"k": 5}}),
            "the value of \"k\" must be a string",
        ),
        (
            path.clone(),
            json!({"data": {"": "v"}}),
            "a simple storage key must be 1-1024 bytes (SIGHTLINE_STORAGE_MAX_KEY_BYTES)",
        ),
        (
            format!("{path}/k"),
            json!({"value": ["no"]}),
            "the value of \"k\" must be a string",
        ),
    ] {
        let (status, answer) = http(server.addr, "PUT", &route, Some(&me), Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(parsed(&answer), error_body("BAD_REQUEST", message));
    }
    let long_key = "k".repeat(1025);
    let (status, _) = http(
        server.addr,
        "GET",
        &format!("{path}/{long_key}"),
        Some(&me),
        None,
    )
    .await;
    assert_eq!(status, 400);

    // Deleting what is not stored succeeds and says so.
    let (status, body) = http(
        server.addr,
        "DELETE",
        &format!("{path}/none"),
        Some(&me),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(parsed(&body), json!({"success": true, "deleted": false}));

    // The permissions the SDK reads: public, `permissions[].type`.
    server
        .register_with(
            "com.sightline.perms",
            "http://127.0.0.1:1",
            "perms-api-key",
            AppType::Standard,
            &["MICROPHONE", "LOCATION"],
        )
        .await;
    let (status, body) = http(
        server.addr,
        "GET",
        "/api/public/permissions/com.sightline.perms",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parsed(&body),
        json!({"success": true, "packageName": "com.sightline.perms",
            "permissions": [{"type": "MICROPHONE"}, {"type": "LOCATION"}]})
    );
    let (status, body) = http(
        server.addr,
        "GET",
        "/api/public/permissions/com.sightline.none",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        parsed(&body),
        error_body("NOT_FOUND", "app com.sightline.none not found")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_over_its_rate_is_answered_429_and_the_sdk_says_so() {
    let server = TestServer::start_with(
        |c| {
            c.limits.storage_rate.per_second = 1;
            c.limits.storage_rate.burst = 4;
        },
        Arc::new(MemoryStore::new()),
    );
    let package = "com.sightline.busy";
    let mut sdk = SdkApp::start("storage_app.mjs", package, &[]).await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Standard)
        .await;
    let _g = start_session(&server, &mut sdk, package).await;
    let path = storage_path(USER);
    let bearer = format!("{package}:{SDK_KEY}");
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(http(server.addr, "GET", &path, Some(&bearer), None).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses[..4], [200; 4], "{answers:?}");
    assert_eq!(statuses[4], 429, "{answers:?}");
    assert_eq!(
        parsed(&answers[4].1),
        error_body(
            "RATE_LIMITED",
            "com.sightline.busy made more than 1 simple storage requests a second (burst 4); \
             retry later (SIGHTLINE_STORAGE_RATE_PER_SECOND)"
        )
    );
    // A wrong key spends none of the app's tokens.
    let (status, _) = http(
        server.addr,
        "GET",
        &path,
        Some(&format!("{package}:nope")),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // The SDK's flush rejects with its own rate message.
    resolved(&mut sdk, "set", json!({"key": "k", "value": "v"}), "set").await;
    let done = run(&mut sdk, "flush", json!({}), "flush").await;
    assert_eq!(done["outcome"], "rejected", "{done}");
    assert_eq!(done["error"], "SimpleStorage rate limit exceeded.");
    sdk.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_hears_an_over_quota_flush() {
    let server = TestServer::start_with(
        |c| c.limits.storage_bytes = 32,
        Arc::new(MemoryStore::new()),
    );
    let package = "com.sightline.full";
    let mut sdk = SdkApp::start("storage_app.mjs", package, &[]).await;
    server
        .register(package, &sdk.url, SDK_KEY, AppType::Standard)
        .await;
    let _g = start_session(&server, &mut sdk, package).await;
    resolved(
        &mut sdk,
        "setMultiple",
        json!({"data": {"a": "x".repeat(20), "b": "y".repeat(20)}}),
        "many",
    )
    .await;
    let done = run(&mut sdk, "flush", json!({}), "flush").await;
    assert_eq!(done["outcome"], "rejected", "{done}");
    assert_eq!(
        done["error"],
        "SimpleStorage total size exceeds 1MB limit. Delete unused keys."
    );
    assert!(server
        .store
        .get_storage(USER, package)
        .await
        .expect("read")
        .is_empty());
    sdk.stop().await;
    server.stop().await;
}
