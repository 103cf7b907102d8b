//! A throwaway MongoDB-compatible server for tests: `nx-27017`, a MongoDB
//! wire-protocol server on SQLite, installed by `scripts/setup-test-deps.sh`
//! into a cached virtualenv and linked as `$SIGHTLINE_CACHE/bin/nx-27017`.
//!
//! Tests start one on a free loopback port and it is killed when the
//! [`Nx27017`] value is dropped (also when the test panics), so nothing is
//! left running. A missing `nx-27017` is a test failure with a message
//! saying how to install it, never a silent skip.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(30);

/// Where the data of a test server lives.
#[derive(Debug, Clone)]
pub enum NxData {
    /// In memory: gone when the process stops.
    Memory,
    /// In this SQLite file: survives a restart.
    File(PathBuf),
}

/// A running `nx-27017` process.
pub struct Nx27017 {
    child: Option<Child>,
    port: u16,
    data: NxData,
    /// Holds the server's log and PID file (nx-27017 refuses to start when
    /// another instance's PID file is in its way, so each gets its own).
    dir: PathBuf,
    log: PathBuf,
}

/// The `nx-27017` executable: `$SIGHTLINE_NX27017` if set, else
/// `$SIGHTLINE_CACHE/bin/nx-27017` (default cache `~/.cache/sightline`).
pub fn nx27017_executable() -> Result<PathBuf, String> {
    let path = match std::env::var_os("SIGHTLINE_NX27017") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("SIGHTLINE_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sightline"))
                })
                .ok_or("neither SIGHTLINE_CACHE nor HOME is set")?;
            cache.join("bin/nx-27017")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "nx-27017 (the MongoDB wire-protocol server the MongoDB tests run against) is not \
             installed at {}: run scripts/setup-test-deps.sh (scripts/test.sh runs it first), \
             or point SIGHTLINE_NX27017 at the executable",
            path.display()
        ))
    }
}

impl Nx27017 {
    /// Starts a server with in-memory data on a free port. Panics with an
    /// explanation if nx-27017 is missing or does not come up.
    pub fn start() -> Nx27017 {
        Self::start_with(NxData::Memory)
    }

    /// Starts a server keeping its data in `data`.
    pub fn start_with(data: NxData) -> Nx27017 {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("sightline-nx27017-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let log = dir.join("nx-27017.log");
        let mut server = Nx27017 {
            child: None,
            port,
            data,
            dir,
            log,
        };
        server.launch();
        server
    }

    /// `mongodb://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (a database outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let exe = nx27017_executable().unwrap_or_else(|e| panic!("{e}"));
        let db = match &self.data {
            NxData::Memory => "memory".to_string(),
            NxData::File(p) => p.display().to_string(),
        };
        let log = std::fs::File::create(&self.log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.log.display()));
        let err_log = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", self.log.display()));
        let pid_file = self.dir.join("nx-27017.pid");
        let child = Command::new(&exe)
            .args([
                "--db",
                &db,
                "--host",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .arg("--pid-file")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + STARTUP;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                panic!(
                    "nx-27017 exited ({status}) before listening on port {}; its log:\n{}",
                    self.port,
                    log_tail(&self.log)
                );
            }
            if Instant::now() > deadline {
                self.stop();
                panic!(
                    "nx-27017 did not listen on port {} within {STARTUP:?}; its log:\n{}",
                    self.port,
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nx27017 {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
