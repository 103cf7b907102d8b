//! One load generator process of the cluster scenario
//! (`sightline-bench cluster-worker`): its own app servers, and the glasses
//! of its share of the users, each user's glasses first connected to
//! instance `user % instances`. It obeys one command a line on stdin and
//! answers one line on stdout (see [`super::wire`]):
//!
//! - `GO`: open every session (glasses + apps); `DONE`;
//! - `MSG <local|cross> <pairs> <rate> <secs>`: direct messages between
//!   users' apps on the same instance or on two; `MSGD`;
//! - `MOVE <count> <concurrency>`: glasses of `count` users reconnect to
//!   the next instance; `MOVED`;
//! - `HELD`: users held per instance; `TRIM <keep>`: end the sessions of
//!   all users but `keep`; `TRIMMED`;
//! - `KILLED <instance> <epoch µs> <concurrency> <retry ms>`: the
//!   instance is gone; its users' glasses get back in elsewhere; `BACK`;
//! - `STOP`.

use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::apps::{self, FollowingApp, Sessions};
use super::reconnect;
use super::wire::list;

pub use super::users::{worker_app, WorkerArgs};
use super::users::{worker_view, Glasses, Worker};

/// The worker process.
pub async fn run(args: WorkerArgs) -> Result<()> {
    if args.servers.is_empty() {
        bail!("no --servers");
    }
    let sessions = Arc::new(Sessions::default());
    let mut servers: Vec<FollowingApp> = Vec::new();
    for k in 0..args.apps {
        let (package, key) = worker_app(args.worker, k);
        servers.push(apps::spawn(&package, &key, sessions.clone()).await?);
    }
    let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
    println!("PORTS {}", urls.join(" "));
    let worker = Arc::new(Worker {
        packages: servers.iter().map(|s| s.package.clone()).collect(),
        users: Mutex::new((args.from..args.to).map(|_| None).collect()),
        args,
        sessions,
    });
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["GO"] => worker.ramp().await,
            ["HELD"] => format!("HELD held={}", list(&worker.counts())),
            ["MSG", kind, pairs, rate, secs] => {
                super::messages::run(
                    &worker_view(&worker),
                    kind,
                    num(pairs)?,
                    num(rate)?,
                    num(secs)?,
                )
                .await
            }
            ["MOVE", count, conc] => reconnect::move_users(&worker, num(count)?, num(conc)?).await,
            ["TRIM", keep] => reconnect::trim(&worker, num(keep)?).await,
            ["KILLED", at, kill_us, conc, retry_ms] => {
                reconnect::recover(&worker, num(at)?, num(kill_us)?, num(conc)?, num(retry_ms)?)
                    .await
            }
            ["STOP"] => break,
            _ => format!("ERROR unknown command {line:?}"),
        };
        println!("{reply}");
    }
    let held: Vec<Glasses> = worker
        .users
        .lock()
        .map(|mut u| u.iter_mut().filter_map(Option::take).collect())
        .unwrap_or_default();
    for g in held {
        g.task.abort();
    }
    Ok(())
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse().ok().with_context(|| format!("not a number: {s}"))
}
