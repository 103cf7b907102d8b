//! Two Sightline instances on one NATS JetStream: glasses of a user may
//! open the user's session on one of them only. Raced many times, exactly
//! one instance acknowledges the glasses and the other refuses them with
//! 409 `SESSION_ELSEWHERE`, naming the owner; when the owner stops, its
//! leases lapse and the other instance takes the users; a session that
//! ends gives its user up at once.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{token, Client, SECRET};
use sightline::server::{open_cluster, serve_on, ServerConfig, Sightline};
use sightline::store::MemoryStore;

struct Nats {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nats() -> Nats {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dir = std::env::temp_dir().join(format!("sightline-cluster-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("store dir");
    let child = Command::new("nats-server")
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

/// One instance, in its own actix system.
struct Instance {
    addr: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    fn start(nats: &Nats, id: &str) -> Instance {
        Instance::start_with(nats, id, "2000", "60000")
    }

    fn start_with(nats: &Nats, id: &str, ttl_ms: &str, grace_ms: &str) -> Instance {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let env = [
            ("SIGHTLINE_JWT_SECRET", SECRET.to_string()),
            ("SIGHTLINE_BIND", addr.to_string()),
            ("SIGHTLINE_NATS_URL", nats.url.clone()),
            ("SIGHTLINE_INSTANCE_ID", id.to_string()),
            ("SIGHTLINE_LEASE_TTL_MS", ttl_ms.to_string()),
            ("SIGHTLINE_GLASSES_GRACE_MS", grace_ms.to_string()),
            ("SIGHTLINE_OWNERSHIP_BUCKET", "owners-test".to_string()),
        ];
        let mut config = ServerConfig::from_lookup(|k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .expect("config");
        config.runtime.public_ws_url = format!("ws://{addr}/app-ws");
        config.runtime.session_threads = 1;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let bucket = open_cluster(&config)
                    .await
                    .expect("bucket")
                    .expect("cluster mode");
                let sightline = Sightline::builder(config)
                    .store(Arc::new(MemoryStore::new()))
                    .cluster(bucket)
                    .build()
                    .expect("build");
                let server = serve_on(listener, sightline).expect("serve");
                tx.send(server.handle()).expect("handle");
                let _ = server.await;
            });
        });
        let handle = rx.recv().expect("server handle");
        Instance {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    async fn stop(mut self) {
        self.handle.stop(false).await;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn glasses(at: &Instance, user: &str) -> Result<Client, (u16, String)> {
    let url = format!("ws://{}/glasses-ws", at.addr);
    let mut c = Client::connect(&url, Some(&token(user))).await?;
    c.send(serde_json::json!({"type": "connection_init"})).await;
    c.expect_type("connection_ack").await;
    Ok(c)
}

#[actix_rt::test]
async fn a_user_is_owned_by_one_instance_and_moves_when_its_owner_stops() {
    let nats = start_nats();
    let a = Instance::start(&nats, "a");
    let b = Instance::start(&nats, "b");
    let mut kept = Vec::new();
    let mut owners = Vec::new();
    for i in 0..30 {
        let user = format!("racer{i}@example.com");
        let (ra, rb) = tokio::join!(glasses(&a, &user), glasses(&b, &user));
        let (winner, refused) = match (ra, rb) {
            (Ok(c), Err(e)) => {
                owners.push("a");
                (c, e)
            }
            (Err(e), Ok(c)) => {
                owners.push("b");
                (c, e)
            }
            (Ok(_), Ok(_)) => panic!("{user}: both instances opened the session"),
            (Err(x), Err(y)) => panic!("{user}: neither opened it: {x:?} / {y:?}"),
        };
        assert_eq!(refused.0, 409, "{user}: {refused:?}");
        assert!(refused.1.contains("SESSION_ELSEWHERE"), "{}", refused.1);
        let owner = owners.last().copied().unwrap_or_default();
        assert!(
            refused.1.contains(&format!("\"instance\":\"{owner}\"")),
            "{}",
            refused.1
        );
        kept.push((user, winner));
    }
    // Leases are renewed while their owner runs: past the ttl, the other
    // instance still refuses.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let user = kept[0].0.clone();
    let user = &user;
    let other = if owners[0] == "a" { &b } else { &a };
    let late = glasses(other, user).await;
    assert!(
        matches!(&late, Err((409, _))),
        "renewed lease kept: {:?}",
        late.as_ref().err()
    );
    // The owner of the first user stops: within its ttl (2 s) and the
    // fence margin, the other instance takes the user.
    let (stopping, staying) = if owners[0] == "a" { (a, b) } else { (b, a) };
    drop(kept);
    stopping.stop().await;
    let started = Instant::now();
    loop {
        match glasses(&staying, user).await {
            Ok(_) => break,
            Err((409, _)) if started.elapsed() < Duration::from_secs(6) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the user did not move within 6 s: {e:?}"),
        }
    }
    staying.stop().await;
}

#[actix_rt::test]
async fn a_session_that_ends_gives_its_user_up_at_once() {
    let nats = start_nats();
    // A long ttl: only the release can free the user within the test.
    let a = Instance::start_with(&nats, "a", "30000", "200");
    let b = Instance::start_with(&nats, "b", "30000", "200");
    let user = "leaving@example.com";
    let g = glasses(&a, user).await.expect("a opens the session");
    assert!(matches!(glasses(&b, user).await, Err((409, _))));
    g.close(1000).await;
    // The glasses grace (200 ms) runs out, the session is retired and its
    // lease released: b takes the user long before the 30 s ttl.
    let started = Instant::now();
    loop {
        match glasses(&b, user).await {
            Ok(_) => break,
            Err((409, _)) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the ended session's user was not given up: {e:?}"),
        }
    }
    a.stop().await;
    b.stop().await;
}
