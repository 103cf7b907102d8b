//! A MongoDB outage (nx-27017 killed mid-test): running sessions keep
//! working from their cached state, new logins and registrations fail fast
//! with a clear error, and once the database is back on the same address
//! everything works again without restarting Sightline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sightline::store::testing::{Nx27017, NxData};
use sightline::store::{AppType, MongoConfig, MongoStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_database_outage_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let mut nx = Nx27017::start_with(NxData::File(dir.path().join("outage.db")));
    let mut config = MongoConfig::new(nx.uri());
    config.operation_timeout = Duration::from_millis(1000);
    config.heartbeat_interval = Duration::from_millis(500);
    let store = MongoStore::connect(config).await.expect("connect");
    let server = TestServer::start_with(|_| {}, Arc::new(store));
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let email = "outage@example.com";
    let mut glasses = Client::glasses(&server, email).await;
    let mut app = start_app(&mut glasses, &mut fake, PKG).await;

    nx.stop();

    // The running session still routes display requests.
    app.send(json!({"type": "display_event", "packageName": PKG, "sessionId": format!("{email}-{PKG}"),
        "view": "main", "layout": {"layoutType": "text_wall", "text": "still here"}, "durationMs": 3000}))
        .await;
    // (The dashboard may re-render meanwhile, at a minute's turn: the
    // app's own display is the one looked for.)
    let shown = glasses.expect_display_from(PKG).await;
    assert_eq!(shown["layout"]["text"], "still here");

    // A new login fails fast, saying why.
    let started = Instant::now();
    let refused = Client::connect(
        &server.ws_url("/glasses-ws"),
        Some(&token("new@example.com")),
    )
    .await;
    let Err((status, text)) = refused else {
        panic!("a login must fail while the database is down")
    };
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 503, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["code"], "STORE_UNAVAILABLE");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("store is unreachable") || message.contains("did not answer"),
        "{message}"
    );

    // So does registering an app.
    let new_app = json!({"packageName": "com.during.outage", "publicUrl": "http://127.0.0.1:9"});
    let (status, text) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(new_app.clone()),
    )
    .await;
    assert_eq!(status, 503, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"]["code"], "STORE_UNAVAILABLE");
    let (status, _) = http(server.addr, "GET", "/ready", None, None).await;
    assert_eq!(status, 503);

    // The session keeps working while the database is away.
    glasses
        .send(json!({"type": "stop_app", "packageName": PKG}))
        .await;
    glasses
        .expect("app stopped", |v| {
            v["type"] == "app_state_change" && v["userSession"]["activeAppSessions"] == json!([])
        })
        .await;

    nx.restart();

    // Recovery without restarting Sightline.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = http(server.addr, "GET", "/ready", None, None).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Sightline never saw the database come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let newcomer = Client::glasses(&server, "new@example.com").await;
    let (status, text) = http(
        server.addr,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(new_app),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    assert!(server
        .store
        .get_user("new@example.com")
        .await
        .unwrap()
        .is_some());
    assert!(
        server.store.get_app(PKG).await.unwrap().is_some(),
        "data kept across the restart"
    );
    newcomer.close(1000).await;
    glasses.close(1000).await;
    server.stop().await;
}
