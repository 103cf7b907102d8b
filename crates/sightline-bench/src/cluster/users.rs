//! The users of one load generator process of the cluster scenario:
//! their glasses connections, how an upgrade was refused, and the state the
//! worker's commands work on (see `worker.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use super::apps::Sessions;
use super::wire::list;
use crate::glasses;
use crate::net::Ws;

/// Arguments of one worker process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub worker: usize,
    #[arg(long)]
    pub from: usize,
    #[arg(long)]
    pub to: usize,
    #[arg(long)]
    pub apps: usize,
    /// Sessions opened at once while ramping.
    #[arg(long)]
    pub concurrency: usize,
    /// The instances' addresses, in order.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<SocketAddr>,
}

/// The package and API key of app `k` of `worker`.
pub fn worker_app(worker: usize, k: usize) -> (String, String) {
    (
        format!("bench.cluster.w{worker}.a{k}"),
        format!("bench-cluster-key-{worker}-{k}"),
    )
}

/// The e-mail of user `u`.
pub fn user_email(u: usize) -> String {
    format!("cluster{u}@bench.local")
}

/// One user's glasses connection, held open by a task.
pub(super) struct Glasses {
    /// The instance it is connected to.
    pub(super) at: usize,
    /// Closes it (as a phone does when it drops), after sending these
    /// messages; dropping it closes it too.
    stop: oneshot::Sender<Vec<Message>>,
    pub(super) task: JoinHandle<()>,
}

impl Glasses {
    pub(super) fn hold(ws: Ws, at: usize) -> Glasses {
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(hold(ws, rx));
        Glasses { at, stop, task }
    }

    /// Sends `last`, closes the connection and waits (briefly) for the
    /// close.
    pub(super) async fn close(self, last: Vec<Message>) {
        let _ = self.stop.send(last);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

/// Reads the glasses socket (pings are answered) until it ends or `stop`.
async fn hold(mut ws: Ws, mut stop: oneshot::Receiver<Vec<Message>>) {
    loop {
        tokio::select! {
            last = &mut stop => {
                for m in last.unwrap_or_default() {
                    let _ = ws.send(m).await;
                }
                let _ = ws
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "phone reconnecting".into(),
                    })))
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_close() {
                            break;
                        }
                    }
                })
                .await;
                return;
            }
            m = ws.next() => match m {
                Some(Ok(m)) if !m.is_close() => {}
                _ => return,
            },
        }
    }
}

/// Why glasses were not let in.
pub(super) enum Refused {
    /// 503 (the session is moving) or 409 (it lives elsewhere): again.
    Retry(u16),
    Failed(anyhow::Error),
}

/// The HTTP status an upgrade was refused with, if that is the error.
fn refusal_status(e: &anyhow::Error) -> Option<u16> {
    e.chain()
        .find_map(|c| c.downcast_ref::<tungstenite::Error>())
        .and_then(|t| match t {
            tungstenite::Error::Http(r) => Some(r.status().as_u16()),
            _ => None,
        })
}

pub(super) async fn glasses_in(addr: SocketAddr, email: &str) -> Result<Ws, Refused> {
    match glasses::connect_sightline(addr, email).await {
        Ok((ws, _)) => Ok(ws),
        Err(e) => match refusal_status(&e) {
            Some(s @ (409 | 503)) => Err(Refused::Retry(s)),
            _ => Err(Refused::Failed(e)),
        },
    }
}

/// The state of the worker process.
pub(super) struct Worker {
    pub(super) args: WorkerArgs,
    pub(super) packages: Vec<String>,
    pub(super) sessions: Arc<Sessions>,
    /// Glasses by user, from `args.from`.
    pub(super) users: Mutex<Vec<Option<Glasses>>>,
}

impl Worker {
    pub(super) fn n(&self) -> usize {
        self.args.servers.len().max(1)
    }

    pub(super) fn sid(&self, u: usize, k: usize) -> String {
        format!("{}-{}", user_email(u), self.packages[k])
    }

    pub(super) fn put(&self, u: usize, g: Option<Glasses>) -> Option<Glasses> {
        let mut users = self.users.lock().ok()?;
        let slot = users.get_mut(u - self.args.from)?;
        std::mem::replace(slot, g)
    }

    /// Users held, and the instance each is on.
    pub(super) fn held(&self) -> Vec<(usize, usize)> {
        let Ok(users) = self.users.lock() else {
            return Vec::new();
        };
        users
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.as_ref().map(|g| (self.args.from + i, g.at)))
            .collect()
    }

    pub(super) fn counts(&self) -> Vec<u64> {
        let mut c = vec![0u64; self.n()];
        for (_, at) in self.held() {
            c[at] += 1;
        }
        c
    }

    /// Opens user `u`'s session at its first instance.
    async fn open(&self, u: usize) -> Result<()> {
        let at = u % self.n();
        let email = user_email(u);
        let mut tries = 0;
        let mut ws = loop {
            match glasses_in(self.args.servers[at], &email).await {
                Ok(ws) => break ws,
                Err(Refused::Retry(_)) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(Refused::Retry(s)) => bail!("refused {s} {tries} times"),
                Err(Refused::Failed(e)) => return Err(e),
            }
        };
        for p in &self.packages {
            ws.send(Message::text(
                json!({"type": "start_app", "packageName": p}).to_string(),
            ))
            .await?;
        }
        self.put(u, Some(Glasses::hold(ws, at)));
        Ok(())
    }

    /// Ramps every session up; the `DONE` line.
    pub(super) async fn ramp(self: &Arc<Self>) -> String {
        let started = Instant::now();
        let users: Vec<usize> = (self.args.from..self.args.to).collect();
        let (ok, failed) = self
            .each(&users, self.args.concurrency, |w, u| async move {
                w.open(u).await
            })
            .await;
        // Every app of every session acknowledged.
        let want = ok * self.packages.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(120 + want / 50);
        let mut apps_missing = 0;
        loop {
            let acked = self
                .sessions
                .acked
                .load(std::sync::atomic::Ordering::Relaxed);
            if acked >= want {
                break;
            }
            if Instant::now() > deadline {
                apps_missing = want - acked;
                eprintln!(
                    "worker {}: only {acked} of {want} apps acknowledged",
                    self.args.worker
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let c = self.counts();
        format!(
            "DONE ok={ok} failed={failed} appsMissing={apps_missing} secs={:.2} held={}",
            started.elapsed().as_secs_f64(),
            list(&c)
        )
    }

    /// Runs `f` for every user, `concurrency` at a time (each lane takes
    /// its share in order); counts successes and failures.
    pub(super) async fn each<F, Fut>(
        self: &Arc<Self>,
        users: &[usize],
        concurrency: usize,
        f: F,
    ) -> (u64, u64)
    where
        F: Fn(Arc<Self>, usize) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        if users.is_empty() {
            return (0, 0);
        }
        let lanes = users.chunks(users.len().div_ceil(concurrency.max(1)).max(1));
        let mut tasks = Vec::new();
        for lane in lanes {
            let (lane, me, f) = (lane.to_vec(), self.clone(), f.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, 0u64);
                for u in lane {
                    match f(me.clone(), u).await {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            eprintln!("worker {}: user {u}: {e:#}", me.args.worker);
                        }
                    }
                }
                (ok, failed)
            }));
        }
        let (mut ok, mut failed) = (0, 0);
        for t in tasks {
            if let Ok((o, f)) = t.await {
                ok += o;
                failed += f;
            }
        }
        (ok, failed)
    }
}

/// What the messaging phase needs of a worker.
pub struct View {
    pub worker: usize,
    pub instances: usize,
    pub held: Vec<(usize, usize)>,
    pub package: String,
    pub sessions: Arc<Sessions>,
}

pub(super) fn worker_view(w: &Worker) -> View {
    View {
        worker: w.args.worker,
        instances: w.n(),
        held: w.held(),
        package: w.packages.first().cloned().unwrap_or_default(),
        sessions: w.sessions.clone(),
    }
}
