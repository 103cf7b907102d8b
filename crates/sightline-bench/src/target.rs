//! The processes under test: Sightline (the release `sightline` binary),
//! the bare tokio-tungstenite relay and the Node.js `ws` relay. Each runs as
//! its own process so its CPU and memory are read from /proc apart from the
//! load generator's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::net;
use crate::procstat::{self, ProcSample};

/// JWT secret and admin token of the Sightline under test.
pub const JWT_SECRET: &str = "sightline-bench-secret";
pub const ADMIN_TOKEN: &str = "sightline-bench-admin";

/// Which server is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Sightline,
    BareRelay,
    NodeRelay,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Sightline => "sightline",
            Kind::BareRelay => "bare-relay",
            Kind::NodeRelay => "node-relay",
        }
    }
}

/// Where the programs under test are.
#[derive(Debug, Clone, clap::Args)]
pub struct Programs {
    /// The release `sightline` binary.
    #[arg(
        long,
        default_value = "target/release/sightline",
        env = "SIGHTLINE_BIN"
    )]
    pub sightline: PathBuf,
    /// The Node relay script.
    #[arg(long, default_value = "bench/node-relay/relay.js")]
    pub node_relay: PathBuf,
    /// Directory holding the `ws` package (put on NODE_PATH).
    #[arg(long, env = "SIGHTLINE_BENCH_NODE_MODULES")]
    pub node_modules: Option<PathBuf>,
    /// Where server logs go.
    #[arg(long, default_value = "bench-results/logs")]
    pub log_dir: PathBuf,
}

/// How Sightline is started.
#[derive(Debug, Clone)]
pub struct Launch {
    /// A program and its arguments that run `sightline` (empty: none).
    pub wrapper: Vec<String>,
    /// Arguments after `serve --bind <addr>`.
    pub serve_args: Vec<String>,
    /// How long the server may take to accept connections.
    pub listen_within: Duration,
    /// The loopback port to listen on (a cluster instance names its own
    /// URLs before it starts); `None` takes a free one.
    pub port: Option<u16>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            wrapper: Vec::new(),
            serve_args: Vec::new(),
            listen_within: Duration::from_secs(20),
            port: None,
        }
    }
}

/// A running server under test.
pub struct Target {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
    pid: u32,
}

impl Target {
    /// Starts `kind` on a free loopback port; `env` is extra environment
    /// for Sightline (timings of a scenario).
    pub async fn start(kind: Kind, programs: &Programs, env: &[(&str, String)]) -> Result<Target> {
        let launch = Launch {
            serve_args: vec!["--store".into(), "memory".into()],
            ..Launch::default()
        };
        Target::start_with(kind, programs, env, &launch).await
    }

    /// Starts `kind` as [`Target::start`] does; Sightline's command line is
    /// shaped by `launch` (a wrapper such as valgrind, its store, how long
    /// it may take to listen).
    pub async fn start_with(
        kind: Kind,
        programs: &Programs,
        env: &[(&str, String)],
        launch: &Launch,
    ) -> Result<Target> {
        let port = match launch.port {
            Some(p) => p,
            None => net::free_port()?,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        std::fs::create_dir_all(&programs.log_dir)?;
        let log = std::fs::File::create(
            programs
                .log_dir
                .join(format!("{}-{port}.log", kind.label())),
        )?;
        // The program and its arguments; a wrapper (valgrind) runs them.
        let (program, args): (PathBuf, Vec<String>) = match kind {
            Kind::Sightline => {
                let mut a: Vec<String> = vec!["serve".into(), "--bind".into(), addr.to_string()];
                a.extend(launch.serve_args.iter().cloned());
                (programs.sightline.clone(), a)
            }
            Kind::BareRelay => (
                std::env::current_exe()?,
                vec!["relay".into(), "--port".into(), port.to_string()],
            ),
            Kind::NodeRelay => (
                PathBuf::from("node"),
                vec![programs.node_relay.display().to_string(), port.to_string()],
            ),
        };
        let mut cmd = match launch.wrapper.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut c = Command::new(wrapper);
                c.args(wrapper_args).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(&args);
        match kind {
            Kind::Sightline => {
                cmd.env("SIGHTLINE_JWT_SECRET", JWT_SECRET)
                    .env("SIGHTLINE_ADMIN_TOKEN", ADMIN_TOKEN)
                    .env("SIGHTLINE_LOG", "warn");
                for (k, v) in env {
                    cmd.env(k, v);
                }
            }
            Kind::BareRelay => {}
            Kind::NodeRelay => {
                if let Some(m) = &programs.node_modules {
                    cmd.env("NODE_PATH", m);
                }
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", kind.label()))?;
        let pid = child.id().context("child has no pid")?;
        let target = Target {
            kind,
            addr,
            child,
            pid,
        };
        net::wait_listening(addr, launch.listen_within).await?;
        if kind == Kind::Sightline {
            let (status, body) = net::http_json(addr, "GET", "/health", None, None).await?;
            if status != 200 {
                bail!("sightline /health answered {status}: {body}");
            }
        }
        Ok(target)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn sample(&self) -> Result<ProcSample> {
        procstat::sample(self.pid)
    }

    /// Registers an app with Sightline's admin API.
    pub async fn register_app(
        &self,
        package: &str,
        public_url: &str,
        api_key: &str,
        permissions: &[&str],
    ) -> Result<()> {
        let body = json!({
            "packageName": package,
            "name": package,
            "publicUrl": public_url,
            "apiKey": api_key,
            "appType": "background",
            "permissions": permissions,
        });
        let (status, text) = net::http_json(
            self.addr,
            "POST",
            "/api/admin/apps",
            Some(ADMIN_TOKEN),
            Some(&body),
        )
        .await?;
        if status != 201 {
            bail!("registering {package}: HTTP {status}: {text}");
        }
        Ok(())
    }

    /// Sightline's `/stats` (health figures).
    pub async fn stats(&self) -> Result<serde_json::Value> {
        let (status, body) =
            net::http_json(self.addr, "GET", "/stats", Some(ADMIN_TOKEN), None).await?;
        if status != 200 {
            bail!("/stats answered {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Sends the server `signal` (SIGTERM, SIGINT) and waits for it to
    /// exit; kills it when it has not within `within`.
    pub async fn terminate(
        mut self,
        signal: libc::c_int,
        within: Duration,
    ) -> Result<std::process::ExitStatus> {
        let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
        // SAFETY: kill(2) on the pid of a child this process started and
        // has not yet reaped.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!(
                "signal {signal} to {}: {}",
                self.pid,
                std::io::Error::last_os_error()
            );
        }
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = self.child.start_kill();
                bail!(
                    "{} did not exit within {within:?} of signal {signal}",
                    self.kind.label()
                )
            }
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// A glasses core token for `email`.
pub fn glasses_token(email: &str) -> Result<String> {
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"email": email, "sub": email}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )?)
}

/// Checks the programs exist before a long run starts.
pub fn check_programs(programs: &Programs, kinds: &[Kind]) -> Result<()> {
    for kind in kinds {
        match kind {
            Kind::Sightline if !programs.sightline.exists() => bail!(
                "{} not found: build it with `cargo build --release --bin sightline` or pass --sightline",
                programs.sightline.display()
            ),
            Kind::NodeRelay if !Path::new(&programs.node_relay).exists() => {
                bail!("{} not found", programs.node_relay.display())
            }
            _ => {}
        }
    }
    Ok(())
}
