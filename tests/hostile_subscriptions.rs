//! One app sends a subscription list of 100 000 distinct entries (about
//! 1 MB) while another user's events are timed, both users' sessions on
//! one thread: the other user must not wait. Alone in its test binary, so
//! that no other test competes for the cores while it measures.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Button presses from `glasses` to `app`, one after another (every 10 ms,
/// within the glasses' rate limit) for `span`:
/// the slowest press → `data_stream` time.
async fn slowest_press(glasses: &mut Client, app: &mut Client, span: Duration) -> Duration {
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("probe-{n}");
        let sent = Instant::now();
        glasses
            .send(json!({"type": "button_press", "buttonId": id, "pressType": "short"}))
            .await;
        app.expect(&format!("press {id}"), |v| {
            v["type"] == "data_stream" && v["data"]["buttonId"] == id
        })
        .await;
        slowest = slowest.max(sent.elapsed());
        if started.elapsed() >= span {
            return slowest;
        }
        // Paced under the glasses' message rate limit.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One app of another user sends 100 000 distinct subscriptions (about
/// 1 MB) while this user's presses are timed, both sessions on one thread.
// Four test threads: the attacking client masks and writes its megabyte
// on one of them, and the measuring client must not wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_subscription_list_does_not_stall_other_users() {
    let (server, mut fake, mut victim) =
        setup_with(|c| c.runtime.session_threads = 1, "victim@example.com").await;
    let mut victim_app = start_app(&mut victim, &mut fake, PKG).await;
    victim_app
        .send(json!({"type": "subscription_update", "subscriptions": ["button_press"]}))
        .await;
    let mut attacker = Client::glasses(&server, "attacker@example.com").await;
    let mut hostile = start_app(&mut attacker, &mut fake, PKG).await;
    victim
        .expect("the victim's subscription", |v| {
            v["type"] == "app_state_change"
                && v["userSession"]["appSubscriptions"][PKG] == json!(["button_press"])
        })
        .await;
    slowest_press(&mut victim, &mut victim_app, Duration::ZERO).await;

    let before = slowest_press(&mut victim, &mut victim_app, Duration::from_millis(500)).await;
    let list: Vec<Value> = (0..100_000).map(|n| json!(format!("s{n}"))).collect();
    hostile
        .send(json!({"type": "subscription_update", "subscriptions": list}))
        .await;
    let slowest = slowest_press(&mut victim, &mut victim_app, Duration::from_millis(1_500)).await;
    eprintln!("slowest event before the attack {before:?}, during it {slowest:?}");
    assert!(
        slowest < Duration::from_millis(50),
        "another user waited {slowest:?} for an event (at most {before:?} before the attack)"
    );
    let err = hostile.expect_type("tpa_connection_error").await;
    assert_eq!(err["code"], "SUBSCRIPTION_LIMIT", "{err}");
    let state = attacker
        .expect("the attacker's app state", |v| {
            v["type"] == "app_state_change"
                && v["userSession"]["appSubscriptions"][PKG]
                    .as_array()
                    .is_some_and(|a| a.len() > 1)
        })
        .await;
    assert_eq!(
        state["userSession"]["appSubscriptions"][PKG]
            .as_array()
            .map(Vec::len),
        Some(100),
        "the first 100 distinct subscriptions are kept"
    );
    server.stop().await;
}
