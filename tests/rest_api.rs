//! The REST API over real sockets: developers register apps (the API key is
//! shown once and only its sha256 is kept), rotate keys, update and delete;
//! users list, install and uninstall apps and change app settings, which
//! reach the running app as `settings_update` and its server's `/settings`;
//! SDK apps read settings with their session id. Errors have one shape.

mod common;

use common::*;
use serde_json::{json, Value};
use sightline::store::hash_api_key;

fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn developers_register_rotate_update_and_delete_apps() {
    let server = TestServer::start();
    let a = server.addr;
    let new_app =
        json!({"packageName": "com.dev.one", "name": "One", "publicUrl": "http://127.0.0.1:9/"});

    let (status, text) = http(
        a,
        "POST",
        "/api/admin/apps",
        Some("wrong"),
        Some(new_app.clone()),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body(&text)["error"]["code"], "UNAUTHORIZED");

    let (status, text) = http(
        a,
        "POST",
        "/api/admin/apps",
        Some(ADMIN),
        Some(new_app.clone()),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let created = body(&text);
    let key = created["apiKey"]
        .as_str()
        .expect("key shown once")
        .to_string();
    assert_eq!(key.len(), 64);
    assert_eq!(created["publicUrl"], "http://127.0.0.1:9");
    let stored = server.store.get_app("com.dev.one").await.unwrap().unwrap();
    assert_eq!(stored.hashed_api_key, hash_api_key(&key));

    let (status, text) = http(a, "POST", "/api/admin/apps", Some(ADMIN), Some(new_app)).await;
    assert_eq!(status, 409);
    assert_eq!(body(&text)["error"]["code"], "CONFLICT");

    let (status, text) = http(a, "GET", "/api/admin/apps/com.dev.one", Some(ADMIN), None).await;
    assert_eq!(status, 200);
    assert!(
        body(&text).get("apiKey").is_none(),
        "the key is never shown again"
    );
    assert!(!text.contains(&stored.hashed_api_key), "nor its hash");

    let (status, text) = http(
        a,
        "POST",
        "/api/admin/apps/com.dev.one/api-key",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let rotated = body(&text)["apiKey"].as_str().unwrap().to_string();
    assert_ne!(rotated, key);
    let stored = server.store.get_app("com.dev.one").await.unwrap().unwrap();
    assert_eq!(stored.hashed_api_key, hash_api_key(&rotated));

    let change = json!({"name": "One, renamed", "appType": "background", "settings": [{"key": "k", "type": "toggle", "value": false}]});
    let (status, text) = http(
        a,
        "PUT",
        "/api/admin/apps/com.dev.one",
        Some(ADMIN),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let updated = body(&text);
    assert_eq!(updated["name"], "One, renamed");
    assert_eq!(updated["appType"], "background");
    let stored = server.store.get_app("com.dev.one").await.unwrap().unwrap();
    assert_eq!(
        stored.hashed_api_key,
        hash_api_key(&rotated),
        "an update keeps the key"
    );

    let bad = json!({"publicUrl": "ftp://nope"});
    let (status, text) = http(
        a,
        "PUT",
        "/api/admin/apps/com.dev.one",
        Some(ADMIN),
        Some(bad),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body(&text)["error"]["code"], "BAD_REQUEST");

    let (status, _) = http(
        a,
        "DELETE",
        "/api/admin/apps/com.dev.one",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, text) = http(
        a,
        "POST",
        "/api/admin/apps/com.dev.one/api-key",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body(&text)["error"]["code"], "NOT_FOUND");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_install_and_uninstall_apps() {
    let server = TestServer::start();
    let a = server.addr;
    server
        .register(
            PKG,
            "http://127.0.0.1:9",
            KEY,
            sightline::store::AppType::Standard,
        )
        .await;
    let t = token("lister@example.com");

    let (status, text) = http(a, "GET", "/api/apps", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body(&text)["error"]["code"], "UNAUTHORIZED");

    let (status, text) = http(
        a,
        "POST",
        &format!("/api/apps/install/{PKG}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (_, text) = http(a, "GET", "/api/apps", Some(&t), None).await;
    let answer = body(&text);
    assert_eq!(answer["success"], true, "the phone's envelope: {answer}");
    let apps = &answer["data"];
    assert_eq!(apps[0]["packageName"], PKG);
    assert_eq!(apps[0]["isInstalled"], true);
    assert_eq!(apps[0]["isRunning"], false);

    let (status, _) = http(a, "POST", "/api/apps/install/com.nope", Some(&t), None).await;
    assert_eq!(status, 404);

    let (status, _) = http(
        a,
        "POST",
        &format!("/api/apps/uninstall/{PKG}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The installed list is empty now; the bare list of before is at v1.
    let (_, text) = http(a, "GET", "/api/apps/installed", Some(&t), None).await;
    assert_eq!(body(&text)["data"], json!([]));
    let (_, text) = http(a, "GET", "/api/v1/apps", Some(&t), None).await;
    assert_eq!(body(&text)[0]["isInstalled"], false);
    let user = server
        .store
        .get_user("lister@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.installed_apps.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_change_reaches_the_running_app_and_its_server() {
    let email = "settings@example.com";
    let (server, mut fake, mut glasses) = setup(email).await;
    let a = server.addr;
    let t = token(email);
    let mut app = start_app(&mut glasses, &mut fake, PKG).await;

    let (status, text) = http(a, "GET", &format!("/appsettings/{PKG}"), Some(&t), None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        body(&text)["settings"][0]["value"],
        "green",
        "defaults from the schema"
    );

    let change = json!({"key": "color", "value": "red"});
    let (status, text) = http(
        a,
        "POST",
        &format!("/appsettings/{PKG}"),
        Some(&t),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body(&text)["pushedToApp"], true);

    let update = app.expect_type("settings_update").await;
    assert_eq!(update["packageName"], PKG);
    assert_eq!(update["sessionId"], format!("{email}-{PKG}"));
    assert_eq!(update["settings"][0]["key"], "color");
    assert_eq!(update["settings"][0]["value"], "red");
    assert_eq!(update["settings"][0]["type"], "text");

    let hooks = fake.webhooks.clone();
    eventually("the app server's /settings was called", || {
        hooks
            .lock()
            .unwrap()
            .iter()
            .any(|h| h["userIdForSettings"] == email && h["settings"][0]["value"] == "red")
    })
    .await;

    let (_, text) = http(a, "GET", &format!("/appsettings/{PKG}"), Some(&t), None).await;
    assert_eq!(body(&text)["settings"][0]["value"], "red");

    // The SDK's settings.fetch(): bearer is the app session id.
    let session_id = format!("{email}-{PKG}");
    let (status, text) = http(
        a,
        "GET",
        &format!("/appsettings/user/{PKG}"),
        Some(&session_id),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body(&text)["success"], true);
    assert_eq!(body(&text)["settings"][0]["value"], "red");
    // Knowing a user's email is not enough: without that app running for
    // them, the SDK route refuses and stores nothing.
    let (status, _) = http(
        a,
        "GET",
        &format!("/appsettings/user/{PKG}"),
        Some(&format!("stranger@example.com-{PKG}")),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(server
        .store
        .get_user("stranger@example.com")
        .await
        .unwrap()
        .is_none_or(|u| !u.app_settings.contains_key(PKG)));

    let (status, text) = http(
        a,
        "POST",
        &format!("/appsettings/{PKG}"),
        Some(&t),
        Some(json!(7)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body(&text)["error"]["code"], "BAD_REQUEST");
    server.stop().await;
}
