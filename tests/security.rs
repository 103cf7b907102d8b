//! An app acts only inside the (user, package) its socket was bound to at
//! init: identity fields in later messages change nothing, and a second
//! init on the same socket is refused.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sightline::store::AppType;

const OTHER_PKG: &str = "com.example.weather";
const OTHER_KEY: &str = "weather-api-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_fields_after_init_change_nothing() {
    let (server, mut notes, mut alice) = setup("alice@example.com").await;
    let mut weather = FakeApp::start(OTHER_PKG, OTHER_KEY, AppBehaviour::Connect).await;
    server
        .register(OTHER_PKG, &weather.url, OTHER_KEY, AppType::Background)
        .await;
    let mut bob = Client::glasses(&server, "bob@example.com").await;
    let mut alices_app = start_app(&mut alice, &mut notes, PKG).await;
    let _bobs_weather = start_app(&mut bob, &mut weather, OTHER_PKG).await;
    let _ = alice.drain(Duration::from_millis(200)).await;
    let _ = bob.drain(Duration::from_millis(200)).await;

    // Alice's notes app claims Bob's session and the weather package in a
    // display request: it is shown to Alice, as notes.
    alices_app
        .send(json!({"type": "display_event", "view": "main",
                     "packageName": OTHER_PKG,
                     "sessionId": format!("bob@example.com-{OTHER_PKG}"),
                     "layout": {"layoutType": "text_wall", "text": "who am I"}}))
        .await;
    let shown = alice.expect_display_from(PKG).await;
    assert_eq!(shown["layout"]["text"], "who am I");
    assert!(
        bob.drain(Duration::from_millis(300))
            .await
            .iter()
            .all(|v| v["layout"]["text"] != "who am I"),
        "Bob saw another user's display"
    );

    // Subscriptions sent with another identity apply to the socket's own.
    alices_app
        .send(
            json!({"type": "subscription_update", "packageName": OTHER_PKG,
                     "sessionId": format!("bob@example.com-{OTHER_PKG}"),
                     "subscriptions": ["button_press"]}),
        )
        .await;
    alice
        .expect("notes subscribed", |v| {
            v["type"] == "app_state_change"
                && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
        })
        .await;
    bob.send(json!({"type": "button_press", "buttonId": "bob", "pressType": "short"}))
        .await;
    alice
        .send(json!({"type": "button_press", "buttonId": "alice", "pressType": "short"}))
        .await;
    let ev = alices_app.expect_type("data_stream").await;
    assert_eq!(ev["data"]["buttonId"], "alice", "only Alice's events");

    // A second init on a bound socket is refused; the binding stays.
    alices_app
        .send(
            json!({"type": "tpa_connection_init", "packageName": OTHER_PKG,
                     "sessionId": format!("bob@example.com-{OTHER_PKG}"), "apiKey": OTHER_KEY}),
        )
        .await;
    let err = alices_app.expect_type("tpa_connection_error").await;
    assert_eq!(err["code"], "ALREADY_CONNECTED");
    alice
        .send(json!({"type": "button_press", "buttonId": "still-alice", "pressType": "short"}))
        .await;
    let ev = alices_app.expect_type("data_stream").await;
    assert_eq!(ev["data"]["buttonId"], "still-alice");
    server.stop().await;
}
