//! Fault isolation: a session actor that panics takes nothing else with it.
//! Its own connections are closed 1011 (so the phone and the SDK reconnect),
//! other users' sessions keep working, and the user gets a fresh session.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sightline::runtime::session::InjectPanic;
use sightline::runtime::supervisor::FindSession;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_leaves_others_untouched() {
    let (server, mut fake, mut victim) = setup_with(
        |c| {
            c.runtime.heartbeat_interval = Duration::from_millis(200);
            // Both sessions on one arbiter thread: the panic must not take
            // the thread (and the other session) down.
            c.runtime.session_threads = 1;
        },
        "victim@example.com",
    )
    .await;
    let mut other = Client::glasses(&server, "other@example.com").await;
    let mut victim_app = start_app(&mut victim, &mut fake, PKG).await;
    let mut other_app = start_app(&mut other, &mut fake, PKG).await;
    other_app
        .send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    settled(&mut other_app).await;

    let session = server
        .supervisor()
        .send(FindSession {
            user_id: "victim@example.com".into(),
        })
        .await
        .unwrap()
        .expect("victim session");
    session.addr().do_send(InjectPanic);

    let closed = victim.expect_close().await;
    assert_eq!(closed.code, 1011, "{closed:?}");
    assert_eq!(victim_app.expect_close().await.code, 1011);

    other
        .send(json!({"type": "button_press", "buttonId": "still-here", "pressType": "short"}))
        .await;
    let ev = other_app.expect_type("data_stream").await;
    assert_eq!(ev["data"]["buttonId"], "still-here");

    // The user reconnects into a fresh session, which restarts the app.
    let mut again = Client::glasses(&server, "victim@example.com").await;
    let (_app, ack) = fake.next_socket().await;
    assert_eq!(ack["sessionId"], format!("victim@example.com-{PKG}"));
    again.send(json!({"type": "connection_init"})).await;
    again.expect_type("connection_ack").await;
    server.stop().await;
}
