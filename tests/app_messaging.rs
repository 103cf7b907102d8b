//! App-to-app messaging between users running the same app, with a real
//! `@mentra/sdk@2.1.29` app serving several users: broadcasts, direct
//! messages and their answers, user discovery over REST, rooms with their
//! join, leave and update notifications, and what an app cannot reach.

mod common;

use common::*;
use serde_json::{json, Value};
use sightline::store::AppType;

const CHAT: &str = "com.sightline.chat";
const OTHER: &str = "com.sightline.other";
const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";
const CID: &str = "cid@example.com";

fn quick(v: &Value) -> bool {
    v["ms"].as_u64().is_some_and(|ms| ms < 2_000)
}

async fn start_for(server: &TestServer, sdk: &mut SdkApp, user: &str, package: &str) -> Client {
    let mut g = Client::glasses(server, user).await;
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.seen_or_wait("session", |v| v["user"] == user).await;
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_the_same_app_message_each_other_and_no_one_else() {
    let server = TestServer::start();
    let cloud = format!("http://{}", server.addr);
    let mut chat = SdkApp::start("messaging_app.mjs", CHAT, &[("CLOUD_URL", &cloud)]).await;
    let mut other = SdkApp::start("messaging_app.mjs", OTHER, &[("CLOUD_URL", &cloud)]).await;
    server
        .register(CHAT, &chat.url, SDK_KEY, AppType::Standard)
        .await;
    server
        .register(OTHER, &other.url, SDK_KEY, AppType::Standard)
        .await;
    let _ann = start_for(&server, &mut chat, ANN, CHAT).await;
    let mut bob = start_for(&server, &mut chat, BOB, CHAT).await;
    let _cid = start_for(&server, &mut other, CID, OTHER).await;
    // Ann hears that Bob started the app.
    let joined = chat
        .seen_or_wait("user_joined", |v| {
            v["user"] == ANN && v["message"]["userId"] == BOB
        })
        .await;
    assert!(joined["message"]["roomId"].is_null(), "{joined}");

    // A broadcast reaches Bob, not Ann herself, not Cid (another app).
    chat.call_as(
        ANN,
        "broadcast",
        json!({"payload": {"text": "hello all"}}),
        "b1",
    )
    .await;
    let got = chat.seen_or_wait("message", |v| v["user"] == BOB).await;
    assert_eq!(got["message"]["payload"]["text"], "hello all");
    assert_eq!(got["message"]["senderUserId"], ANN);
    assert_eq!(got["message"]["senderSessionId"], format!("{ANN}-{CHAT}"));

    // A direct message resolves true and reaches Bob only.
    chat.call_as(
        ANN,
        "direct",
        json!({"target": BOB, "payload": {"secret": 42}}),
        "d1",
    )
    .await;
    let sent = chat.seen_or_wait("d1", |_| true).await;
    assert_eq!(sent["value"], true, "{sent}");
    assert!(quick(&sent), "{sent}");
    chat.seen_or_wait("message", |v| {
        v["user"] == BOB && v["message"]["payload"]["secret"] == 42
    })
    .await;
    // To a user who does not run the app — or runs another one — it
    // resolves false at once, not after the SDK's 15 s.
    for (target, tag) in [("nobody@example.com", "d2"), (CID, "d3")] {
        chat.call_as(ANN, "direct", json!({"target": target, "payload": 1}), tag)
            .await;
        let refused = chat.seen_or_wait(tag, |_| true).await;
        assert_eq!(refused["value"], false, "{refused}");
        assert!(quick(&refused), "{refused}");
    }

    // Discovery over REST, with the app's API key.
    chat.call_as(ANN, "discover", json!({"includeProfiles": true}), "found")
        .await;
    let found = chat.seen_or_wait("found", |_| true).await;
    assert_eq!(found["outcome"], "resolved", "{found}");
    assert_eq!(found["value"]["totalUsers"], 1, "{found}");
    assert_eq!(found["value"]["users"][0]["userId"], BOB);
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/app-communication/discover-users",
        Some("not-the-key"),
        Some(json!({"packageName": CHAT, "userId": ANN})),
    )
    .await;
    assert_eq!(status, 401);
    // Cid's app sees only its own users.
    other.call_as(CID, "discover", json!({}), "alone").await;
    let alone = other.seen_or_wait("alone", |_| true).await;
    assert_eq!(alone["value"]["totalUsers"], 0, "{alone}");

    // Rooms: Ann opens one for two, Bob joins, then leaves.
    chat.call_as(
        ANN,
        "join",
        json!({"roomId": "lobby", "roomConfig": {"maxUsers": 2}}),
        "j1",
    )
    .await;
    chat.seen_or_wait("room_updated", |v| {
        v["user"] == ANN && v["message"]["roomData"]["memberCount"] == 1
    })
    .await;
    chat.call_as(BOB, "join", json!({"roomId": "lobby"}), "j2")
        .await;
    let in_room = chat
        .seen_or_wait("user_joined", |v| {
            v["user"] == ANN && v["message"]["roomId"] == "lobby"
        })
        .await;
    assert_eq!(in_room["message"]["userId"], BOB);
    let update = chat
        .seen_or_wait("room_updated", |v| {
            v["user"] == ANN && v["message"]["roomData"]["memberCount"] == 2
        })
        .await;
    assert_eq!(update["message"]["roomData"]["maxUsers"], 2, "{update}");
    chat.call_as(BOB, "leave", json!({"roomId": "lobby"}), "l1")
        .await;
    chat.seen_or_wait("user_left", |v| {
        v["user"] == ANN && v["message"]["roomId"] == "lobby"
    })
    .await;

    // Too many messages: refused with the reason, the app keeps working.
    chat.call_as(ANN, "flood", json!({"count": 40}), "flood")
        .await;
    let limited = chat
        .seen_or_wait("error", |v| {
            v["user"] == ANN
                && v["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("per second"))
        })
        .await;
    assert!(limited["error"].is_string());

    // Bob's app stops: Ann hears he left.
    bob.send(json!({"type": "stop_app", "packageName": CHAT}))
        .await;
    chat.seen_or_wait("user_left", |v| {
        v["user"] == ANN && v["message"]["userId"] == BOB && v["message"]["roomId"].is_null()
    })
    .await;
    chat.call_as(ANN, "direct", json!({"target": BOB, "payload": 1}), "d4")
        .await;
    assert_eq!(chat.seen_or_wait("d4", |_| true).await["value"], false);

    other.stop().await;
    chat.stop().await;
    server.stop().await;
}
