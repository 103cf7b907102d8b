//! A Sightline cluster of real processes on loopback: three `sightline
//! serve` instances sharing one `nats-server -js` and one MongoDB wire
//! server (nx-27017), with real `@mentra/sdk@2.1.29` apps.
//!
//! - glasses that move between instances take their running apps along and
//!   no event is lost across the move;
//! - two instances racing for one user never both own it (many races);
//! - a settings change made on one instance reaches the app of a user
//!   owned by another; app-to-app messaging crosses instances; admin views
//!   answer for any user from any instance;
//! - `kill -9` of an owner: its users' glasses get in elsewhere once the
//!   lease lapses, and their apps are restored from the store;
//! - a rolling restart (SIGTERM, drain, start again) of all three leaves no
//!   user's app stopped.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use serde_json::{json, Value};

fn press(n: usize) -> Value {
    json!({"type": "button_press", "buttonId": format!("b{n}"), "pressType": "short", "timestamp": "2026-12-01T10:00:00.000Z"})
}

fn pressed(v: &Value, n: usize) -> bool {
    v["data"]["buttonId"] == format!("b{n}")
}

/// Waits until `at` describes `user`'s session with `package` subscribed
/// to `stream`.
async fn wait_subscribed_at(at: &Instance, user: &str, package: &str, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, view) = at.admin_get(&format!("/sessions/{user}")).await;
        let subscribed = view["apps"].as_array().is_some_and(|apps| {
            apps.iter().any(|a| {
                a["packageName"] == package
                    && a["subscriptions"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s == stream))
            })
        });
        if status == 200 && subscribed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{package} never subscribed to {stream} at {}: {view}",
            at.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The state of `package` in `user`'s session as `at` describes it.
async fn app_state_at(at: &Instance, user: &str, package: &str) -> Option<String> {
    let (_, view) = at.admin_get(&format!("/sessions/{user}")).await;
    view["apps"]
        .as_array()?
        .iter()
        .find(|a| a["packageName"] == package)
        .and_then(|a| a["state"].as_str().map(String::from))
}

async fn wait_running_at(at: &Instance, user: &str, package: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if app_state_at(at, user, package).await.as_deref() == Some("running") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{package} of {user} not running (asked {})",
            at.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glasses_that_move_take_their_apps_along_and_lose_no_event() {
    let cluster = Cluster::start(3).await;
    let [a, b, c] = [
        &cluster.instances[0],
        &cluster.instances[1],
        &cluster.instances[2],
    ];
    let package = "com.sightline.cluster.mover";
    let mut sdk = SdkApp::conformance(package, "early").await;
    cluster.register(package, &sdk.url, SDK_KEY, vec![]).await;
    let user = "mover@example.com";

    let mut g = glasses(a, user).await.expect("a opens the session");
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    wait_subscribed_at(a, user, package, "button_press").await;
    g.send(press(1)).await;
    sdk.wait_for("button_press", Duration::from_secs(5), |v| pressed(v, 1))
        .await;

    // The phone drops and reconnects through the load balancer, to b.
    g.close(1001).await;
    let asked = Instant::now();
    let mut g = glasses(b, user).await.expect("b takes the session over");
    let moved_in = asked.elapsed();
    // Presses at once, before the app has followed the session to b.
    for n in 2..=6 {
        g.send(press(n)).await;
    }
    for n in 2..=6 {
        sdk.wait_for("button_press", Duration::from_secs(15), |v| pressed(v, n))
            .await;
    }
    let _ = sdk
        .count_within("button_press", Duration::from_millis(500))
        .await;
    for n in 1..=6 {
        let times = sdk
            .seen
            .iter()
            .filter(|v| v["event"] == "button_press" && pressed(v, n))
            .count();
        assert_eq!(times, 1, "press {n} delivered {times} times");
    }
    let order: Vec<String> = sdk
        .seen
        .iter()
        .filter(|v| v["event"] == "button_press")
        .filter_map(|v| v["data"]["buttonId"].as_str().map(String::from))
        .collect();
    assert_eq!(order, ["b1", "b2", "b3", "b4", "b5", "b6"], "in order");
    assert_eq!(cluster.owner_of(user).await.as_deref(), Some("b"));
    assert!(
        moved_in < Duration::from_secs(3),
        "hand-over took {moved_in:?}"
    );

    // The app's display reaches the glasses on b; any instance describes
    // the session and the user's actors.
    g.expect_display_from(package).await;
    wait_running_at(c, user, package, Duration::from_secs(5)).await;
    let (status, actors) = c.admin_get(&format!("/actors?user={user}")).await;
    assert_eq!(status, 200, "{actors}");
    assert_eq!(actors["instance"], "b", "{actors}");
    // The unfiltered view and `sightline top` list every instance.
    let (_, all) = c.admin_get("/actors").await;
    let ids: Vec<&str> = all["cluster"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["instance"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["a", "b", "c"], "{all}");
    let top = tokio::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "top",
            "--url",
            &format!("http://{}", c.addr),
            "--token",
            ADMIN,
        ])
        .output()
        .await
        .expect("sightline top runs");
    let page = String::from_utf8_lossy(&top.stdout);
    assert!(page.contains("Cluster: 3 instances"), "{page}");
    assert!(page.contains("* c"), "this instance is marked: {page}");
    // Every log line names its instance.
    let log = b.log();
    if std::env::var_os("SIGHTLINE_TEST_LOGS").is_none() {
        assert!(log.lines().count() > 5, "b logged: {log}");
        for line in log.lines() {
            assert!(
                line.starts_with("instance=b "),
                "a line without its instance: {line}"
            );
        }
    }
    let moves = "sightline_cluster_ownership_moves_total{kind=\"handed_in\",instance=\"b\"}";
    assert_eq!(b.metric(moves).await, 1.0);
    let out = "sightline_cluster_ownership_moves_total{kind=\"handed_out\",instance=\"a\"}";
    assert_eq!(a.metric(out).await, 1.0);
    sdk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_for_one_user_never_both_own_it() {
    let cluster = Cluster::start(2).await;
    let [a, b] = [&cluster.instances[0], &cluster.instances[1]];
    for i in 0..25 {
        let user = format!("racer{i}@example.com");
        let (ra, rb) = tokio::join!(glasses(a, &user), glasses(b, &user));
        // One claims the user; the other either takes it over (the first
        // one's glasses are then closed) or is told to retry.
        let mut open = Vec::new();
        for (at, r) in [("a", ra), ("b", rb)] {
            match r {
                Ok(c) => open.push((at, c)),
                Err((status, why)) => assert!(
                    status == 409 || status == 503,
                    "{user} at {at}: {status} {why}"
                ),
            }
        }
        assert!(!open.is_empty(), "{user}: nobody let the glasses in");
        let owner = cluster.owner_of(&user).await.expect("an owner");
        // Exactly the owner keeps a glasses connection.
        for (at, mut c) in open {
            if at == owner {
                continue;
            }
            let closed = tokio::time::timeout(WAIT, c.expect_close()).await;
            assert!(
                closed.is_ok(),
                "{user}: {at} kept its glasses though {owner} owns the user"
            );
        }
        // Both instances agree where the session lives.
        for at in [a, b] {
            let (status, actors) = at.admin_get(&format!("/actors?user={user}")).await;
            assert_eq!(status, 200, "{actors}");
            assert_eq!(
                actors["instance"],
                owner.as_str(),
                "{user} asked at {}: {actors}",
                at.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_owning_instance() {
    let cluster = Cluster::start(3).await;
    let [a, b, c] = [
        &cluster.instances[0],
        &cluster.instances[1],
        &cluster.instances[2],
    ];
    let package = "com.sightline.cluster.settings";
    let schema = vec![
        json!({"key": "mode", "type": "select", "defaultValue": "a", "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]}),
    ];
    let mut sdk = SdkApp::start("settings_app.mjs", package, &[("KEYS", "mode")]).await;
    cluster.register(package, &sdk.url, SDK_KEY, schema).await;
    let user = "settings@example.com";
    let mut g = glasses(b, user).await.expect("b opens the session");
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    wait_running_at(b, user, package, Duration::from_secs(10)).await;

    // The user changes a setting through instance a: b's session pushes it
    // to the app.
    let t = token(user);
    let (status, text) = http(
        a.addr,
        "POST",
        &format!("/appsettings/{package}"),
        Some(&t),
        Some(json!({"key": "mode", "value": "b"})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        answer["pushedToApp"], true,
        "the owner's session told the app: {answer}"
    );
    sdk.wait_for("changed", Duration::from_secs(5), |v| {
        v["values"]["mode"] == "b"
    })
    .await;

    // The SDK's own settings fetch, answered on any instance.
    let (status, _) = http(
        c.addr,
        "GET",
        &format!("/appsettings/user/{package}"),
        Some(&format!("{user}-{package}")),
        None,
    )
    .await;
    assert_eq!(status, 200, "c asked b whether the app is connected");

    // An app socket reaching an instance that does not own the session is
    // told where the session is (and the owner points the app at itself).
    let mut stray = Client::connect(&format!("ws://{}/app-ws", a.addr), None)
        .await
        .expect("app socket");
    stray
        .send(json!({"type": "tpa_connection_init", "sessionId": format!("{user}-{package}"), "packageName": package, "apiKey": SDK_KEY}))
        .await;
    let refused = stray.expect_type("tpa_connection_error").await;
    assert_eq!(refused["code"], "SESSION_ELSEWHERE", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("instance b")),
        "{refused}"
    );
    assert_eq!(
        stray.expect_close().await.code,
        1008,
        "the SDK does not retry a 1008"
    );

    // A developer renames the app through c: b's running session takes
    // the new registration.
    let (status, text) = http(
        c.addr,
        "PUT",
        &format!("/api/admin/apps/{package}"),
        Some(ADMIN),
        Some(json!({"name": "Renamed through c"})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, view) = b.admin_get(&format!("/sessions/{user}")).await;
        let named = view["apps"]
            .as_array()
            .is_some_and(|apps| apps.iter().any(|a| a["name"] == "Renamed through c"));
        if named {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b's session kept the old registration: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Uninstalling through c stops the app on b.
    let (status, text) = http(
        c.addr,
        "POST",
        &format!("/api/apps/uninstall/{package}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while app_state_at(b, user, package).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the uninstalled app still runs on b"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(g);
    sdk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_messaging_crosses_instances() {
    let cluster = Cluster::start(3).await;
    let [a, b, c] = [
        &cluster.instances[0],
        &cluster.instances[1],
        &cluster.instances[2],
    ];
    let package = "com.sightline.cluster.chat";
    let cloud = format!("http://{}", a.addr);
    let mut chat = SdkApp::start("messaging_app.mjs", package, &[("CLOUD_URL", &cloud)]).await;
    cluster.register(package, &chat.url, SDK_KEY, vec![]).await;
    let (ann, bob, cid) = ("ann@example.com", "bob@example.com", "cid@example.com");
    let mut glasses_of = Vec::new();
    for (user, at) in [(ann, a), (bob, b), (cid, c)] {
        let mut g = glasses(at, user).await.expect("glasses in");
        g.send(json!({"type": "start_app", "packageName": package}))
            .await;
        chat.wait_for("session", Duration::from_secs(10), |v| v["user"] == user)
            .await;
        wait_running_at(at, user, package, Duration::from_secs(10)).await;
        glasses_of.push(g);
    }
    // Ann (on a) broadcasts: Bob (b) and Cid (c) get it, Ann does not.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        chat.call_as(ann, "discover", json!({}), "found").await;
        let found = chat
            .wait_for("found", Duration::from_secs(5), |v| v["user"] == ann)
            .await;
        let users = found["value"]["users"].as_array().map_or(0, Vec::len);
        if users == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ann never saw bob and cid: {found}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    chat.call_as(
        ann,
        "broadcast",
        json!({"payload": {"hello": "all"}}),
        "sent",
    )
    .await;
    let sent = chat
        .wait_for("sent", Duration::from_secs(5), |v| v["user"] == ann)
        .await;
    assert_eq!(sent["outcome"], "resolved", "{sent}");
    for user in [bob, cid] {
        let got = chat.seen_or_wait("message", |v| v["user"] == user).await;
        assert_eq!(got["message"]["payload"]["hello"], "all", "{got}");
        assert_eq!(got["message"]["senderUserId"], ann, "{got}");
    }
    // A direct message from Cid (c) to Bob (b).
    chat.call_as(cid, "direct", json!({"target": bob, "payload": 7}), "dm")
        .await;
    let dm = chat.seen_or_wait("dm", |v| v["user"] == cid).await;
    assert_eq!(dm["outcome"], "resolved", "{dm}");
    let got = chat
        .seen_or_wait("message", |v| {
            v["user"] == bob && v["message"]["payload"] == 7
        })
        .await;
    assert_eq!(got["message"]["senderUserId"], cid);
    let ann_got = chat
        .seen
        .iter()
        .filter(|v| v["event"] == "message" && v["user"] == ann)
        .count();
    assert_eq!(ann_got, 0, "the sender does not hear its own broadcast");
    assert!(
        a.metric("sightline_cluster_messaging_total{direction=\"sent\",instance=\"a\"}")
            .await
            >= 1.0
    );
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_users_are_restored_elsewhere() {
    let mut cluster = Cluster::start(3).await;
    let package = "com.sightline.cluster.survivor";
    let mut sdk = SdkApp::conformance(package, "early").await;
    cluster.register(package, &sdk.url, SDK_KEY, vec![]).await;
    let user = "survivor@example.com";
    let mut g = glasses(&cluster.instances[0], user)
        .await
        .expect("a opens the session");
    g.send(json!({"type": "start_app", "packageName": package}))
        .await;
    sdk.wait_event("session").await;
    wait_running_at(
        &cluster.instances[0],
        user,
        package,
        Duration::from_secs(10),
    )
    .await;

    // kill -9: no drain, no release.
    cluster.instances[0].kill().await;
    let killed = Instant::now();
    drop(g);
    let b = &cluster.instances[1];
    // The phone retries through the load balancer; b lets it in once a's
    // lease has lapsed (ttl 3 s), and restores the app from the store.
    let mut g = glasses_within(b, user, Duration::from_secs(10)).await;
    let back_in = killed.elapsed();
    assert!(
        back_in < Duration::from_millis(TTL_MS + 2000),
        "the user was free only after {back_in:?}"
    );
    sdk.wait_for("session", Duration::from_secs(15), |v| v["userId"] == user)
        .await;
    wait_running_at(b, user, package, Duration::from_secs(15)).await;
    wait_subscribed_at(b, user, package, "button_press").await;
    g.send(press(9)).await;
    sdk.wait_for("button_press", Duration::from_secs(5), |v| pressed(v, 9))
        .await;
    assert_eq!(cluster.owner_of(user).await.as_deref(), Some("b"));
    sdk.stop().await;
}

/// A phone that reconnects whenever its connection closes, to the next
/// instance in turn (as a load balancer without affinity would send it).
fn phone(user: &'static str, addrs: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut turn = 0usize;
        loop {
            let url = &addrs[turn % addrs.len()];
            turn += 1;
            let Ok(mut c) = Client::connect(url, Some(&token(user))).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            c.send(json!({"type": "connection_init"})).await;
            // Stays until the instance closes it.
            while c.next().await.is_ok() {}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_leaves_no_app_stopped() {
    let mut cluster = Cluster::start(3).await;
    let package = "com.sightline.cluster.rolling";
    let mut sdk = SdkApp::conformance(package, "early").await;
    cluster.register(package, &sdk.url, SDK_KEY, vec![]).await;
    let users = ["r1@example.com", "r2@example.com", "r3@example.com"];
    let urls: Vec<String> = cluster.instances.iter().map(|i| i.glasses_url()).collect();
    // Each user starts the app from a different instance.
    for (i, user) in users.iter().enumerate() {
        let mut g = glasses(&cluster.instances[i], user)
            .await
            .expect("glasses in");
        g.send(json!({"type": "start_app", "packageName": package}))
            .await;
        sdk.wait_for("session", Duration::from_secs(10), |v| v["userId"] == *user)
            .await;
        wait_running_at(
            &cluster.instances[i],
            user,
            package,
            Duration::from_secs(10),
        )
        .await;
        drop(g);
    }
    // From now on the phones reconnect on their own, round robin.
    let phones: Vec<_> = users
        .iter()
        .map(|u| {
            let mut order = urls.clone();
            order.rotate_left(users.iter().position(|x| x == u).unwrap_or(0));
            phone(u, order)
        })
        .collect();
    for i in 0..3 {
        let status = cluster.instances[i].terminate().await;
        assert!(status.success(), "instance {i} exited with {status}");
        cluster.instances[i].restart().await;
        // Every user's app runs somewhere, and the bucket names where.
        for user in users {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let owner = cluster.owner_of(user).await;
                let at = owner
                    .as_deref()
                    .and_then(|o| cluster.instances.iter().find(|x| x.id == o));
                if let Some(at) = at {
                    if app_state_at(at, user, package).await.as_deref() == Some("running") {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "{user}'s app not running after restarting instance {i}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    for p in phones {
        p.abort();
    }
    sdk.stop().await;
}
