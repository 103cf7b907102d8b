//! Scenario 4 of the design documents, high-load churn: many sessions
//! connect, start an app, stop it and disconnect, over and over; afterwards
//! nothing is left and memory does not grow. In its own test binary so that
//! no other test shares the process whose memory it measures.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sightline::store::{AppType, MemoryStore};

async fn stats(server: &TestServer) -> Value {
    let (status, body) = http(server.addr, "GET", "/stats", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("stats json")
}

/// Resident memory of this process, from /proc.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("rss pages");
    pages * 4096
}

/// Scenario 4: many sessions connect, start an app, stop it and disconnect,
/// over and over. Afterwards no session, monitor or connection is left, and
/// memory does not grow from cycle to cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_nothing_behind() {
    const USERS: usize = 12;
    const CYCLES: usize = 5;
    let server = TestServer::start_with(
        |c| {
            // Clients here are not read while others connect, so they do
            // not answer pings: the default heartbeat keeps them alive.
            c.runtime.glasses_grace = Duration::from_millis(100);
        },
        Arc::new(MemoryStore::new()),
    );
    let mut fake = FakeApp::start(PKG, KEY, AppBehaviour::Connect).await;
    server
        .register(PKG, &fake.url, KEY, AppType::Standard)
        .await;
    let mut rss = Vec::new();
    for cycle in 0..CYCLES {
        let mut glasses = Vec::new();
        for u in 0..USERS {
            let mut g = Client::glasses(&server, &format!("churn{u}@example.com")).await;
            let app = start_app(&mut g, &mut fake, PKG).await;
            glasses.push((g, app));
        }
        // Connections are counted by each session's health monitor when
        // it is told to watch them, a moment after the app has its ack.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let live = stats(&server).await;
            let counted = live["health"]["liveSessions"] == USERS as i64
                && live["health"]["appConnections"] == USERS as i64;
            if counted {
                break;
            }
            assert!(Instant::now() < deadline, "{live}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (mut g, mut app) in glasses {
            g.send(json!({"type": "stop_app", "packageName": PKG}))
                .await;
            app.expect_type("app_stopped").await;
            g.close(1000).await;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = stats(&server).await;
            let h = &s["health"];
            let idle = s["sessions"] == 0
                && h["liveSessions"] == 0
                && h["liveMonitors"] == 0
                && h["glassesConnections"] == 0
                && h["appConnections"] == 0;
            if idle {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: actors left behind: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rss.push(rss_bytes());
    }
    // The first cycles warm allocators and caches; after that, a leak of
    // even a few KiB per session would show over the later cycles.
    let growth = rss[CYCLES - 1].saturating_sub(rss[1]);
    assert!(
        growth < 4 * 1024 * 1024,
        "memory grew by {growth} bytes over {} cycles: {rss:?}",
        CYCLES - 2
    );
    server.stop().await;
}
