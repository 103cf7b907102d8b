//! The ownership bucket against a real nats-server with JetStream: of two
//! instances racing for a user exactly one wins, every time; renewals are
//! compare-and-set; a lease not renewed lapses within its ttl and the next
//! owner's epoch is larger; a release frees the user at once.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sightline_cluster::{Claim, Owner, OwnershipBucket, RenewRefusal};

/// A nats-server with JetStream on a free port, stopped on drop.
struct Nats {
    child: Child,
    url: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_nats() -> Nats {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sightline-nats-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a store directory");
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
        _dir: TempDir(dir),
    }
}

fn owner(name: &str) -> Owner {
    Owner {
        instance: name.to_string(),
        url: format!("ws://{name}.local/app-ws"),
    }
}

async fn open(nats: &Nats, ttl: Duration) -> OwnershipBucket {
    OwnershipBucket::open(&nats.url, "sightline-owners-test", ttl)
        .await
        .expect("the bucket opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_for_a_user_never_both_own_it() {
    let nats = start_nats();
    let ttl = Duration::from_secs(30);
    // Separate connections, as separate instances have.
    let (a, b) = (open(&nats, ttl).await, open(&nats, ttl).await);
    let (me_a, me_b) = (owner("a"), owner("b"));
    for i in 0..100 {
        let user = format!("racer{i}@example.com");
        let (ra, rb) = tokio::join!(a.claim(&user, &me_a), b.claim(&user, &me_b));
        let (ra, rb) = (ra.expect("claim a"), rb.expect("claim b"));
        match (&ra, &rb) {
            (Claim::Won { epoch }, Claim::Owned { by, epoch: seen }) => {
                assert_eq!((by, seen), (&me_a, epoch), "{user}: b sees a's claim");
            }
            (Claim::Owned { by, epoch: seen }, Claim::Won { epoch }) => {
                assert_eq!((by, seen), (&me_b, epoch), "{user}: a sees b's claim");
            }
            other => panic!("{user}: not exactly one owner: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_are_compare_and_set_and_releases_free_the_user() {
    let nats = start_nats();
    let bucket = open(&nats, Duration::from_secs(30)).await;
    let (me, other) = (owner("a"), owner("b"));
    let user = "ana@example.com";
    let Claim::Won { epoch } = bucket.claim(user, &me).await.expect("claim") else {
        panic!("a fresh user is won");
    };
    let r1 = bucket.renew(user, &me, epoch).await.expect("renewed");
    assert!(r1 > epoch, "each write has a new revision");
    // A renewal from a revision the key no longer has is a conflict.
    assert_eq!(
        bucket.renew(user, &me, epoch).await,
        Err(RenewRefusal::Conflict)
    );
    let (by, seen) = bucket.owner(user).await.expect("read").expect("owned");
    assert_eq!((by, seen), (me.clone(), r1));
    // A release at a stale revision is refused; at the current one it
    // frees the user for the next instance, with a larger epoch.
    assert!(bucket.release(user, epoch).await.is_err());
    bucket.release(user, r1).await.expect("released");
    assert_eq!(bucket.owner(user).await.expect("read"), None);
    match bucket.claim(user, &other).await.expect("claim") {
        Claim::Won { epoch: next } => assert!(next > r1, "epochs grow: {next} after {r1}"),
        other => panic!("a released user is free: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_not_renewed_lapses_within_its_ttl() {
    let nats = start_nats();
    let ttl = Duration::from_secs(2);
    let (a, b) = (open(&nats, ttl).await, open(&nats, ttl).await);
    let user = "lapsed@example.com";
    let Claim::Won { epoch } = a.claim(user, &owner("a")).await.expect("claim") else {
        panic!("won");
    };
    let claimed = Instant::now();
    // a stops renewing (as a killed instance does); b retries.
    let next = loop {
        match b.claim(user, &owner("b")).await.expect("claim") {
            Claim::Won { epoch } => break epoch,
            Claim::Owned { by, .. } => assert_eq!(by.instance, "a"),
        }
        assert!(
            claimed.elapsed() < ttl + Duration::from_secs(3),
            "the lease did not lapse within its ttl"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lapsed_after = claimed.elapsed();
    assert!(
        lapsed_after >= ttl - Duration::from_millis(200),
        "{lapsed_after:?}"
    );
    assert!(
        next > epoch,
        "the new owner's epoch {next} is above {epoch}"
    );
    // a's late renewal is refused: it is fenced.
    assert_eq!(
        a.renew(user, &owner("a"), epoch).await,
        Err(RenewRefusal::Conflict)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_hands_the_lease_over_and_fences_the_old_owner() {
    let nats = start_nats();
    let bucket = open(&nats, Duration::from_secs(30)).await;
    let (a, b) = (owner("a"), owner("b"));
    let Ok(Claim::Won { epoch }) = bucket.claim("moving@example.com", &a).await else {
        panic!("a claims the user");
    };
    let moved = bucket
        .transfer("moving@example.com", epoch, &b)
        .await
        .expect("the owner hands the user over");
    assert!(moved > epoch, "the new owner's revision is larger");
    let (now, _) = bucket
        .owner("moving@example.com")
        .await
        .expect("the bucket answers")
        .expect("someone owns the user");
    assert_eq!(now, b);
    // The old owner can neither renew nor transfer again; the new one renews.
    assert!(matches!(
        bucket.renew("moving@example.com", &a, epoch).await,
        Err(RenewRefusal::Conflict)
    ));
    assert!(matches!(
        bucket.transfer("moving@example.com", epoch, &a).await,
        Err(RenewRefusal::Conflict)
    ));
    assert!(bucket.renew("moving@example.com", &b, moved).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_tells_a_gone_instance_from_a_slow_one() {
    use sightline_cluster::{Bus, BusError};
    let nats = start_nats();
    let bucket = open(&nats, Duration::from_secs(30)).await;
    let bus = Bus::new(bucket.client(), Duration::from_millis(300));
    let gone: Result<String, _> = bus
        .request("sightline.instance.gone.session".into(), &"hi")
        .await;
    assert!(matches!(gone, Err(BusError::NoResponders(_))), "{gone:?}");
    // A listener that never answers.
    let _silent = bus
        .subscribe("sightline.instance.slow.session".into())
        .await
        .expect("subscribed");
    bus.flush().await;
    let slow: Result<String, _> = bus
        .request("sightline.instance.slow.session".into(), &"hi")
        .await;
    assert!(matches!(slow, Err(BusError::TimedOut(_))), "{slow:?}");
    // One that answers.
    let mut echo = bus
        .subscribe("sightline.instance.echo.session".into())
        .await
        .expect("subscribed");
    let responder = bus.clone();
    tokio::spawn(async move {
        if let Some(m) = echo.next().await {
            let asked: String = serde_json::from_slice(&m.payload).unwrap_or_default();
            if let Some(reply) = m.reply {
                responder.reply(reply, &format!("{asked}!")).await;
            }
        }
    });
    bus.flush().await;
    let answer: String = bus
        .request("sightline.instance.echo.session".into(), &"hi")
        .await
        .expect("an answer");
    assert_eq!(answer, "hi!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_all_open_the_bucket() {
    let nats = start_nats();
    for round in 0..5 {
        let name = format!("sightline-owners-start-{round}");
        let opens = (0..4).map(|_| OwnershipBucket::open(&nats.url, &name, Duration::from_secs(6)));
        for opened in futures_util::future::join_all(opens).await {
            assert!(opened.is_ok(), "round {round}: {:?}", opened.err());
        }
    }
}
