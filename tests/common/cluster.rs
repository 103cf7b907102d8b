//! A cluster on loopback for the tests: one `nats-server -js`, one MongoDB
//! wire server (nx-27017) and `sightline serve` processes sharing them,
//! each with its own port, instance id and `SIGHTLINE_PUBLIC_WS_URL`.
//! Everything is stopped (killed) on drop.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sightline::store::testing::Nx27017;
use sightline::store::{hash_api_key, AppRecord, AppType, MongoConfig, MongoStore, Store};
use tokio::process::{Child, Command};

use super::{http, Client, ADMIN, SECRET};

/// The lease every test instance takes: short, so a lost instance's users
/// are free within seconds.
pub const TTL_MS: u64 = 3000;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A nats-server with JetStream, killed on drop.
pub struct Nats {
    child: std::process::Child,
    pub url: String,
    dir: std::path::PathBuf,
}

impl Nats {
    pub fn start() -> Nats {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "sightline-cluster-nats-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a store directory");
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/setup-test-deps.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            dir,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Instance::log_path(&self.id, self.addr));
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `sightline serve` process.
pub struct Instance {
    pub id: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Instance {
    /// Where the instance's log goes (appended to across restarts).
    pub fn log_path(id: &str, addr: SocketAddr) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "sightline-cluster-{}-{id}-{}.log",
            std::process::id(),
            addr.port()
        ))
    }

    /// The instance's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(Instance::log_path(&self.id, self.addr)).unwrap_or_default()
    }

    fn spawn(id: &str, addr: SocketAddr, env: &[(String, String)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Instance::log_path(id, addr))
            .expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sightline"));
        command
            .arg("serve")
            .env("SIGHTLINE_BIND", addr.to_string())
            .env("SIGHTLINE_INSTANCE_ID", id)
            .env("SIGHTLINE_PUBLIC_WS_URL", format!("ws://{addr}/app-ws"))
            .env("SIGHTLINE_PUBLIC_API_URL", format!("http://{addr}"))
            .env("SIGHTLINE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("SIGHTLINE_TEST_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::from(log)
            })
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        command.spawn().expect("start sightline serve")
    }

    /// Waits until the instance answers `/ready`; a process that exited
    /// or never got ready fails with its log.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("instance {} exited with {status}:\n{}", self.id, self.log());
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let (status, _) = http(self.addr, "GET", "/ready", None, None).await;
                if status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "instance {} never got ready:\n{}",
                self.id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no drain, no release; its leases lapse.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// `SIGTERM`, then waits for the process to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("a pid");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(40), child.wait())
            .await
            .expect("the instance exits after SIGTERM")
            .expect("exit status")
    }

    /// Starts the process again on the same port and id.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.child = Some(Instance::spawn(&self.id, self.addr, &self.env));
        self.wait_ready().await;
    }

    pub fn glasses_url(&self) -> String {
        format!("ws://{}/glasses-ws", self.addr)
    }

    /// An admin GET, as JSON.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let (status, text) = http(self.addr, "GET", path, Some(ADMIN), None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The value of a metric sample on this instance's `/metrics`.
    pub async fn metric(&self, key: &str) -> f64 {
        let (_, page) = http(self.addr, "GET", "/metrics", Some(ADMIN), None).await;
        super::metric_sample(&page, key)
    }
}

/// One cluster at a time: each test's processes get the machine's cores to
/// themselves (the tests measure bounds in seconds).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// NATS, MongoDB and `n` instances.
pub struct Cluster {
    pub instances: Vec<Instance>,
    pub store: Arc<dyn Store>,
    pub nats: Nats,
    _mongo: Nx27017,
    /// Dropped last, once everything above is stopped.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().await;
        let nats = Nats::start();
        let mongo = Nx27017::start();
        let store: Arc<dyn Store> = Arc::new(
            MongoStore::connect(MongoConfig::new(mongo.uri()))
                .await
                .expect("connect to nx-27017"),
        );
        let env: Vec<(String, String)> = [
            ("SIGHTLINE_JWT_SECRET", SECRET.to_string()),
            ("SIGHTLINE_ADMIN_TOKEN", ADMIN.to_string()),
            ("SIGHTLINE_NATS_URL", nats.url.clone()),
            ("SIGHTLINE_MONGODB_URI", mongo.uri()),
            ("SIGHTLINE_LEASE_TTL_MS", TTL_MS.to_string()),
            ("SIGHTLINE_OWNERSHIP_BUCKET", "owners-test".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut instances = Vec::new();
        for i in 0..n {
            let id = ["a", "b", "c", "d"][i % 4].to_string();
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let child = Instance::spawn(&id, addr, &env);
            instances.push(Instance {
                id,
                addr,
                child: Some(child),
                env: env.clone(),
            });
        }
        for i in &mut instances {
            i.wait_ready().await;
        }
        Cluster {
            instances,
            store,
            nats,
            _mongo: mongo,
            _turn: turn,
        }
    }

    pub async fn register(
        &self,
        package: &str,
        public_url: &str,
        api_key: &str,
        schema: Vec<Value>,
    ) {
        self.store
            .upsert_app(AppRecord {
                package_name: package.into(),
                name: package.into(),
                description: String::new(),
                public_url: public_url.into(),
                hashed_api_key: hash_api_key(api_key),
                app_type: AppType::Standard,
                permissions: vec!["ALL".into()],
                settings_schema: schema,
                logo_url: None,
            })
            .await
            .expect("register app");
    }

    /// The instance the ownership bucket names for `user`, if any.
    pub async fn owner_of(&self, user: &str) -> Option<String> {
        let bucket = sightline::cluster::OwnershipBucket::open(
            &self.nats.url,
            "owners-test",
            Duration::from_millis(TTL_MS),
        )
        .await
        .expect("the bucket");
        bucket
            .owner(user)
            .await
            .expect("the bucket answers")
            .map(|(o, _)| o.instance)
    }
}

/// Glasses of `user` connecting to `at`: the connection, or the refusal.
pub async fn glasses(at: &Instance, user: &str) -> Result<Client, (u16, String)> {
    let mut c = Client::connect(&at.glasses_url(), Some(&super::token(user))).await?;
    c.send(serde_json::json!({"type": "connection_init"})).await;
    c.expect_type("connection_ack").await;
    Ok(c)
}

/// Glasses of `user` connecting to `at`, retried (as a phone does) while
/// the instance answers "moving" or "draining", up to `within`.
pub async fn glasses_within(at: &Instance, user: &str, within: Duration) -> Client {
    let started = Instant::now();
    loop {
        match glasses(at, user).await {
            Ok(c) => return c,
            Err((503, why)) if started.elapsed() < within => {
                let _ = why;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("glasses of {user} not let in at {}: {e:?}", at.id),
        }
    }
}
