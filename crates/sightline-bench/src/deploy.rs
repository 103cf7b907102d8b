//! Brings a server under test into the state a fan-out run needs: `users`
//! glasses, each with `apps` subscribed app sockets. On Sightline the apps
//! are started the real way (`start_app` → webhook → `/app-ws` → init →
//! subscription); on the relays they connect directly.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::apps::{self, AppServer, Metrics, Waiters};
use crate::glasses::{self, Payload};
use crate::net::{self, Ws};
use crate::target::{Kind, Programs, Target};

pub type GlassesSink = SplitSink<Ws, Message>;

/// A server with its users connected.
pub struct Deployment {
    pub target: Target,
    pub metrics: Arc<Metrics>,
    /// The glasses' sending halves, one per user.
    pub glasses: Vec<GlassesSink>,
    pub users: usize,
    pub apps: usize,
    _app_servers: Vec<AppServer>,
    tasks: Vec<JoinHandle<()>>,
}

impl Deployment {
    /// Closes every client (glasses, app sockets, app servers) and hands
    /// back the server, still running.
    pub fn into_target(self) -> Target {
        for t in &self.tasks {
            t.abort();
        }
        self.target
    }

    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        drop(self.glasses);
        self.target.stop().await;
    }
}

/// Connects `users` × (glasses + `apps` apps) to a fresh `kind` server;
/// Sightline apps subscribe to `subscription`.
pub async fn deploy(
    kind: Kind,
    programs: &Programs,
    users: usize,
    apps: usize,
    payload: Payload,
) -> Result<Deployment> {
    let target = Target::start(kind, programs, &[]).await?;
    deploy_on(target, users, apps, &[payload]).await
}

/// Connects `users` × (glasses + `apps` apps) to `target`, which has just
/// started; Sightline apps subscribe to the stream of every payload.
pub async fn deploy_on(
    target: Target,
    users: usize,
    apps: usize,
    payloads: &[Payload],
) -> Result<Deployment> {
    let kind = target.kind;
    let metrics = Arc::new(Metrics::default());
    let mut tasks = Vec::new();
    let mut app_servers = Vec::new();
    let mut sinks = Vec::new();
    let (subscriptions, permissions): (Vec<String>, Vec<&str>) = payloads
        .iter()
        .map(|p| match p {
            Payload::Event => ("button_press".to_string(), "ALL"),
            Payload::Pcm => ("audio_chunk".to_string(), "MICROPHONE"),
        })
        .unzip();
    let started = Instant::now();
    if kind == Kind::Sightline {
        let waiters = Arc::new(Waiters::default());
        for k in 0..apps {
            let package = format!("bench.fanout.a{k}");
            let key = format!("bench-api-key-{k}");
            let server = apps::spawn_app_server(
                &package,
                &key,
                subscriptions.clone(),
                metrics.clone(),
                waiters.clone(),
            )
            .await?;
            target
                .register_app(&package, &server.url, &key, &permissions)
                .await?;
            app_servers.push(server);
        }
        for u in 0..users {
            let (mut ws, _) =
                glasses::connect_sightline(target.addr, &format!("fan{u}@bench.local")).await?;
            for server in &app_servers {
                ws.send(Message::text(
                    json!({"type": "start_app", "packageName": server.package}).to_string(),
                ))
                .await?;
            }
            let (sink, stream) = ws.split();
            sinks.push(sink);
            tasks.push(tokio::spawn(glasses::drain(stream)));
        }
        let want = (users * apps) as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let acked: u64 = app_servers
                .iter()
                .map(|s| s.acked.load(Ordering::Relaxed))
                .sum();
            if acked >= want {
                break;
            }
            if Instant::now() > deadline {
                let failed: u64 = app_servers
                    .iter()
                    .map(|s| s.failures.load(Ordering::Relaxed))
                    .sum();
                bail!("only {acked} of {want} apps acknowledged within 60 s ({failed} webhooks failed)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        for u in 0..users {
            for _ in 0..apps {
                let ws = net::ws_connect(target.addr, &format!("/app?user={u}"), None).await?;
                tasks.push(tokio::spawn(apps::read_app_socket(
                    ws,
                    metrics.clone(),
                    None,
                )));
            }
            let ws = glasses::connect_relay(target.addr, &u.to_string()).await?;
            let (sink, stream) = ws.split();
            sinks.push(sink);
            tasks.push(tokio::spawn(glasses::drain(stream)));
        }
    }
    let mut dep = Deployment {
        target,
        metrics,
        glasses: sinks,
        users,
        apps,
        _app_servers: app_servers,
        tasks,
    };
    for &payload in payloads {
        dep.wait_flowing(payload).await?;
    }
    eprintln!(
        "  {}: {users} users x {apps} apps connected in {:.1} s",
        kind.label(),
        started.elapsed().as_secs_f64()
    );
    Ok(dep)
}

impl Deployment {
    /// Sends one frame per user until every app receives it (subscriptions
    /// are in place).
    async fn wait_flowing(&mut self, payload: Payload) -> Result<()> {
        let want = (self.users * self.apps) as u64;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let before = self.metrics.delivered();
            for g in self.glasses.iter_mut() {
                g.send(payload.frame()).await?;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let got = self.metrics.delivered() - before;
            if got >= want {
                self.metrics.latency.reset();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {got} of {want} probe frames delivered: subscriptions not in place");
            }
        }
    }
}
