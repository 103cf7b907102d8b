//! The messaging phase of a cluster worker: pairs of its users whose apps
//! send each other `app_direct_message`s, the two users on one instance
//! (`local`) or on two (`cross`), each sender at a steady rate below
//! Sightline's per-app budget (10 a second). The receiving app sockets
//! time every `app_message_received` (see [`super::apps::Received`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::users::{user_email, View};
use super::wire::list;
use crate::net;

/// Pairs `(sender, receiver)` of held users: on one instance for `local`,
/// on consecutive instances for `cross`, spread over every instance.
fn pairs(
    held: &[(usize, usize)],
    instances: usize,
    cross: bool,
    want: usize,
) -> Vec<(usize, usize)> {
    let mut by_at: Vec<Vec<usize>> = vec![Vec::new(); instances];
    for &(u, at) in held {
        if let Some(g) = by_at.get_mut(at) {
            g.push(u);
        }
    }
    let mut next = vec![0usize; instances];
    let mut take = |g: usize| -> Option<usize> {
        let u = by_at[g].get(next[g]).copied();
        next[g] += 1;
        u
    };
    let mut out = Vec::new();
    let mut misses = 0;
    let mut g = 0;
    while out.len() < want && misses < instances {
        let other = if cross { (g + 1) % instances } else { g };
        match (take(g), take(other)) {
            (Some(a), Some(b)) if a != b => {
                out.push((a, b));
                misses = 0;
            }
            _ => misses += 1,
        }
        g = (g + 1) % instances;
    }
    out
}

/// Runs one phase; the `MSGD` line.
pub async fn run(v: &View, kind: &str, want: usize, rate: f64, secs: f64) -> String {
    let cross = kind == "cross";
    let chosen = pairs(&v.held, v.instances.max(1), cross, want);
    let _ = v.sessions.received.take(kind);
    let refused0 = v.sessions.received.refused.load(Ordering::Relaxed);
    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let n = chosen.len().max(1) as u32;
    let mut tasks = Vec::new();
    for (i, (x, y)) in chosen.iter().copied().enumerate() {
        let sessions = v.sessions.clone();
        let package = v.package.clone();
        let (kind, worker) = (kind.to_string(), v.worker);
        tasks.push(tokio::spawn(async move {
            // Senders spread over the period, so they do not send at once.
            tokio::time::sleep(period * i as u32 / n).await;
            let sid = format!("{}-{package}", user_email(x));
            let target = user_email(y);
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut tick = tokio::time::interval(period);
            let mut sent = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let text = json!({
                    "type": "app_direct_message",
                    "packageName": package,
                    "sessionId": sid,
                    "messageId": format!("w{worker}-{x}-{sent}"),
                    "targetUserId": target,
                    "payload": {"bt": net::now_us(), "k": kind},
                    "timestamp": "2025-01-01T00:00:00.000Z",
                })
                .to_string();
                if sessions.send(&sid, text) {
                    sent += 1;
                }
            }
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap_or(0);
    }
    // The last messages on their way.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lat = v.sessions.received.take(kind);
    let refused = v.sessions.received.refused.load(Ordering::Relaxed) - refused0;
    format!(
        "MSGD pairs={} sent={sent} delivered={} refused={refused} lat={}",
        chosen.len(),
        lat.len(),
        list(&lat)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_sit_where_asked() {
        let held: Vec<(usize, usize)> = (0..30).map(|u| (u, u % 3)).collect();
        for (a, b) in pairs(&held, 3, false, 6) {
            assert_eq!(a % 3, b % 3);
        }
        let cross = pairs(&held, 3, true, 6);
        assert_eq!(cross.len(), 6);
        for (a, b) in cross {
            assert_ne!(a % 3, b % 3);
        }
    }
}
