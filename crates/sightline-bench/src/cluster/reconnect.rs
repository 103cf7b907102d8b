//! A cluster worker's users changing instance: hand-overs (the phone
//! drops and its glasses reconnect to another instance), sessions ended
//! before a kill, and recovery (glasses of a killed instance's users get
//! back in on the others, retrying on 503/409 as a phone does).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::apps::epoch_us;
use super::users::{glasses_in, user_email, Glasses, Refused, Worker};
use super::wire::list;

/// Moves `count` users, spread over this worker's share, each to the
/// instance after its own; the `MOVED` line.
pub(super) async fn move_users(w: &Arc<Worker>, count: usize, concurrency: usize) -> String {
    let held = w.held();
    let stride = (held.len() / count.max(1)).max(1);
    let chosen: Vec<usize> = held
        .iter()
        .step_by(stride)
        .take(count)
        .map(|h| h.0)
        .collect();
    let times = Arc::new(Mutex::new((Vec::new(), Vec::new(), 0u64)));
    let t = times.clone();
    let (ok, failed) = w
        .each(&chosen, concurrency, move |w, u| {
            let t = t.clone();
            async move {
                let (ack, full, retries) = move_one(&w, u).await?;
                if let Ok(mut t) = t.lock() {
                    t.0.push(ack);
                    t.1.push(full);
                    t.2 += retries;
                }
                Ok(())
            }
        })
        .await;
    let (ack, full, retries) = times
        .lock()
        .map(|t| (t.0.clone(), t.1.clone(), t.2))
        .unwrap_or_default();
    format!(
        "MOVED ok={ok} failed={failed} retries={retries} ack={} full={}",
        list(&ack),
        list(&full)
    )
}

/// One hand-over: the phone drops, its glasses connect to the next
/// instance. Returns µs to `connection_ack`, µs until every app's new
/// socket was accepted there, and the refusals retried.
async fn move_one(w: &Worker, u: usize) -> Result<(u64, u64, u64)> {
    let old = w.put(u, None).context("user not held")?;
    let to = (old.at + 1) % w.n();
    let addr = w.args.servers[to];
    old.close(Vec::new()).await;
    let email = user_email(u);
    let t0 = epoch_us();
    let started = Instant::now();
    let mut retries = 0;
    let ws = loop {
        match glasses_in(addr, &email).await {
            Ok(ws) => break ws,
            Err(Refused::Retry(_)) if started.elapsed() < Duration::from_secs(20) => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(Refused::Retry(s)) => bail!("refused {s} for 20 s"),
            Err(Refused::Failed(e)) => return Err(e),
        }
    };
    let ack = started.elapsed().as_micros() as u64;
    w.put(u, Some(Glasses::hold(ws, to)));
    let mut last = t0;
    for k in 0..w.packages.len() {
        let at = w
            .sessions
            .wait_attached(&w.sid(u, k), addr, t0, Duration::from_secs(30))
            .await?;
        last = last.max(at);
    }
    Ok((ack, last - t0, retries))
}

/// Ends the sessions of every held user but the first `keep` (apps
/// stopped, glasses closed); the `TRIMMED` line.
pub(super) async fn trim(w: &Arc<Worker>, keep: usize) -> String {
    let gone: Vec<usize> = w.held().iter().skip(keep).map(|h| h.0).collect();
    let (ok, failed) = w
        .each(&gone, 16, |w, u| async move {
            let g = w.put(u, None).context("user not held")?;
            // The user's apps are stopped first, so their sockets close
            // too.
            let stops = w
                .packages
                .iter()
                .map(|p| Message::text(json!({"type": "stop_app", "packageName": p}).to_string()))
                .collect();
            g.close(stops).await;
            Ok(())
        })
        .await;
    format!("TRIMMED ended={ok} failed={failed}")
}

/// The glasses of every user on instance `dead` get back in on another
/// (retrying on 503/409 as a phone does); the `BACK` line, with µs from
/// `kill_us` until each was let in and until its apps were re-attached.
pub(super) async fn recover(
    w: &Arc<Worker>,
    dead: usize,
    kill_us: u64,
    concurrency: usize,
    retry_ms: u64,
) -> String {
    let users: Vec<usize> = w
        .held()
        .into_iter()
        .filter(|h| h.1 == dead)
        .map(|h| h.0)
        .collect();
    let times = Arc::new(Mutex::new((Vec::new(), Vec::new(), 0u64)));
    let t = times.clone();
    let (ok, failed) = w
        .each(&users, concurrency, move |w, u| {
            let t = t.clone();
            async move {
                let (back, apps, retries) = recover_one(&w, u, dead, kill_us, retry_ms).await?;
                if let Ok(mut t) = t.lock() {
                    t.0.push(back);
                    t.1.push(apps);
                    t.2 += retries;
                }
                Ok(())
            }
        })
        .await;
    let (back, apps, retries) = times
        .lock()
        .map(|t| (t.0.clone(), t.1.clone(), t.2))
        .unwrap_or_default();
    format!(
        "BACK users={} ok={ok} failed={failed} retries={retries} in={} apps={}",
        users.len(),
        list(&back),
        list(&apps)
    )
}

async fn recover_one(
    w: &Worker,
    u: usize,
    dead: usize,
    kill_us: u64,
    retry_ms: u64,
) -> Result<(u64, u64, u64)> {
    if let Some(g) = w.put(u, None) {
        g.task.abort();
    }
    let survivors: Vec<usize> = (0..w.n()).filter(|&i| i != dead).collect();
    let email = user_email(u);
    let mut choice = u % survivors.len().max(1);
    let mut retries = 0;
    let started = Instant::now();
    let (ws, at) = loop {
        let at = survivors[choice % survivors.len()];
        match glasses_in(w.args.servers[at], &email).await {
            Ok(ws) => break (ws, at),
            Err(why) if started.elapsed() < Duration::from_secs(120) => {
                retries += 1;
                // Elsewhere: another instance holds the user; go there.
                if matches!(why, Refused::Retry(409)) {
                    choice += 1;
                }
                tokio::time::sleep(Duration::from_millis(retry_ms)).await;
            }
            Err(Refused::Retry(s)) => bail!("refused {s} for 120 s"),
            Err(Refused::Failed(e)) => return Err(e),
        }
    };
    let back = epoch_us().saturating_sub(kill_us);
    let addr = w.args.servers[at];
    w.put(u, Some(Glasses::hold(ws, at)));
    let mut last = kill_us;
    for k in 0..w.packages.len() {
        let t = w
            .sessions
            .wait_attached(&w.sid(u, k), addr, kill_us, Duration::from_secs(60))
            .await?;
        last = last.max(t);
    }
    Ok((back, last - kill_us, retries))
}
