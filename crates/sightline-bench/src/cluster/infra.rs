//! What a cluster run stands on: one `nats-server -js` (the ownership
//! bucket and the bus between instances) and one MongoDB wire server
//! (nx-27017, the store every instance shares), both on loopback and
//! stopped when dropped; and the `sightline serve` instances, each with
//! its own port, instance id and public URLs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::net;
use crate::procstat::{self, ProcSample};
use crate::target::{Kind, Launch, Programs, Target, ADMIN_TOKEN};

/// The nx-27017 executable: `given`, else `$SIGHTLINE_NX27017`, else
/// `$SIGHTLINE_CACHE/bin/nx-27017` (cache default `~/.cache/sightline`;
/// scripts/setup-test-deps.sh installs it there).
pub fn nx27017_executable(given: Option<&Path>) -> Result<PathBuf> {
    let path = match (given, std::env::var_os("SIGHTLINE_NX27017")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => std::env::var_os("SIGHTLINE_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sightline")))
            .context("neither SIGHTLINE_CACHE nor HOME is set")?
            .join("bin/nx-27017"),
    };
    if !path.is_file() {
        bail!(
            "nx-27017 not found at {}: run scripts/setup-test-deps.sh or pass --nx27017",
            path.display()
        );
    }
    Ok(path)
}

/// NATS and MongoDB for one run.
pub struct Backing {
    _nats: Child,
    _mongo: Child,
    pub nats_url: String,
    pub mongo_uri: String,
    /// nats-server's pid (its CPU is read beside the instances').
    pub nats_pid: Option<u32>,
}

async fn listening(port: u16, what: &str) -> Result<()> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    net::wait_listening(addr, Duration::from_secs(30))
        .await
        .with_context(|| format!("{what} did not listen"))
}

impl Backing {
    /// Starts both; their data and logs go under `dir`.
    pub async fn start(nats_server: &Path, nx27017: &Path, dir: &Path) -> Result<Backing> {
        let log = |name: &str| -> Result<(Stdio, Stdio)> {
            let f = std::fs::File::create(dir.join(name))?;
            Ok((Stdio::from(f.try_clone()?), Stdio::from(f)))
        };
        let nats_port = net::free_port()?;
        let store = dir.join("nats");
        std::fs::create_dir_all(&store)?;
        let (out, err) = log("nats-server.log")?;
        let nats = Command::new(nats_server)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-sd",
            ])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (scripts/setup-test-deps.sh installs it)",
                    nats_server.display()
                )
            })?;
        let mongo_port = net::free_port()?;
        let (out, err) = log("nx-27017.log")?;
        let mongo = Command::new(nx27017)
            .args([
                "--db",
                "memory",
                "--host",
                "127.0.0.1",
                "-p",
                &mongo_port.to_string(),
            ])
            .arg("--pid-file")
            .arg(dir.join("nx-27017.pid"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", nx27017.display()))?;
        let nats_pid = nats.id();
        let backing = Backing {
            nats_pid,
            _nats: nats,
            _mongo: mongo,
            nats_url: format!("nats://127.0.0.1:{nats_port}"),
            mongo_uri: format!("mongodb://127.0.0.1:{mongo_port}"),
        };
        listening(nats_port, "nats-server").await?;
        listening(mongo_port, "nx-27017").await?;
        Ok(backing)
    }
}

/// One `sightline serve` of the cluster.
pub struct Instance {
    pub id: String,
    pub addr: SocketAddr,
    pub pid: u32,
    target: Option<Target>,
}

/// Instance `i`'s id: a, b, c, …
pub fn instance_id(i: usize) -> String {
    match u8::try_from(i) {
        Ok(i) if i < 26 => char::from(b'a' + i).to_string(),
        _ => format!("i{i}"),
    }
}

impl Instance {
    /// Starts instance `i` with `env` (shared by every instance) and its
    /// own id, port, URLs and data directory under `dir`.
    pub async fn start(
        i: usize,
        programs: &Programs,
        env: &[(&'static str, String)],
        dir: &Path,
    ) -> Result<Instance> {
        let id = instance_id(i);
        let port = net::free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let data = dir.join(format!("data-{id}"));
        std::fs::create_dir_all(&data)?;
        let mut env = env.to_vec();
        env.extend([
            ("SIGHTLINE_INSTANCE_ID", id.clone()),
            ("SIGHTLINE_PUBLIC_WS_URL", format!("ws://{addr}/app-ws")),
            ("SIGHTLINE_PUBLIC_API_URL", format!("http://{addr}")),
            ("SIGHTLINE_DATA_DIR", data.display().to_string()),
        ]);
        let launch = Launch {
            port: Some(port),
            listen_within: Duration::from_secs(60),
            ..Launch::default()
        };
        let target = Target::start_with(Kind::Sightline, programs, &env, &launch)
            .await
            .with_context(|| format!("starting instance {id}"))?;
        Ok(Instance {
            id,
            addr,
            pid: target.pid(),
            target: Some(target),
        })
    }

    /// The running server (not once killed).
    pub fn target(&self) -> Result<&Target> {
        self.target
            .as_ref()
            .with_context(|| format!("instance {} is not running", self.id))
    }

    pub fn running(&self) -> bool {
        self.target.is_some()
    }

    /// Waits until the instance answers `/ready` (it has joined the
    /// cluster).
    pub async fn wait_ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok((200, _)) = net::http_json(self.addr, "GET", "/ready", None, None).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("instance {} not ready within {within:?}", self.id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn sample(&self) -> Option<ProcSample> {
        self.target.as_ref()?;
        procstat::sample(self.pid).ok()
    }

    /// Sessions the instance's supervisor holds (`/stats`).
    pub async fn sessions(&self) -> Option<u64> {
        let stats = self.target.as_ref()?.stats().await.ok()?;
        stats["sessions"].as_u64()
    }

    /// The `sightline_cluster_*` samples of its `/metrics` (histograms as
    /// their sums and counts).
    pub async fn cluster_metrics(&self) -> BTreeMap<String, f64> {
        let Ok((200, page)) =
            net::http_json(self.addr, "GET", "/metrics", Some(ADMIN_TOKEN), None).await
        else {
            return BTreeMap::new();
        };
        page.lines()
            .filter(|l| l.starts_with("sightline_cluster_") && !l.contains("_bucket{"))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    /// `kill -9`: no drain, no release; its leases lapse.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(t) = self.target.take() {
            t.terminate(libc::SIGKILL, Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        if let Some(t) = self.target.take() {
            t.stop().await;
        }
    }
}
