//! App-to-app messaging between instances: this instance's
//! [`MessagingOp`]s are published on `sightline.messaging`, in the order
//! they were decided, and every other instance's are handed to the local
//! messaging actor (see `sightline_runtime::messaging::cluster`).

use actix::{Actor, Addr, Context, Handler};
use serde::{Deserialize, Serialize};
use sightline_cluster::bus::MESSAGING_SUBJECT;
use sightline_cluster::Bus;
use sightline_runtime::messaging::cluster::{
    FromOtherInstance, MessagingOp, ShareMessaging, ShareWith,
};
use sightline_runtime::messaging::AppMessaging;
use sightline_runtime::Runtime;
use tokio::sync::mpsc;

use super::ClusterError;

/// Ops waiting to be published, at most; more are dropped (and logged):
/// NATS is down or far slower than the users' apps.
const BACKLOG: usize = 4096;

/// One op as it travels: who decided it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    op: MessagingOp,
}

/// Publishes this instance's ops, in order.
struct Publisher {
    queue: mpsc::Sender<MessagingOp>,
    shared: std::sync::Arc<sightline_runtime::RuntimeShared>,
    /// Ops dropped since the last warning, and when that was.
    dropped: u64,
    warned: Option<std::time::Instant>,
}

/// At most one warning about dropped ops this often (each drop is counted).
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Actor for Publisher {
    type Context = Context<Self>;
}

impl Handler<ShareMessaging> for Publisher {
    type Result = ();
    fn handle(&mut self, ShareMessaging(op): ShareMessaging, _: &mut Context<Self>) {
        if self.queue.try_send(op).is_ok() {
            return;
        }
        self.shared.metrics.cluster_messaging("dropped");
        self.dropped += 1;
        let now = std::time::Instant::now();
        if self
            .warned
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            tracing::warn!(
                dropped = self.dropped,
                "app messaging for other instances dropped: the NATS backlog is full"
            );
            self.dropped = 0;
            self.warned = Some(now);
        }
    }
}

/// Connects the messaging actor of `runtime` to the other instances.
pub async fn join(bus: Bus, instance: String, runtime: &Runtime) -> Result<(), ClusterError> {
    let messaging: Addr<AppMessaging> = runtime.messaging.clone();
    let shared = runtime.shared.clone();
    let mut incoming = bus.subscribe(MESSAGING_SUBJECT.to_string()).await?;
    let me = instance.clone();
    let inbound = messaging.clone();
    let received = shared.clone();
    actix_rt::spawn(async move {
        while let Some(msg) = incoming.next().await {
            match serde_json::from_slice::<Envelope>(&msg.payload) {
                Ok(e) if e.from == me => {}
                Ok(e) => {
                    received.metrics.cluster_messaging("received");
                    inbound.do_send(FromOtherInstance(e.op));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "malformed app messaging from another instance")
                }
            }
        }
    });
    let (queue, mut ops) = mpsc::channel(BACKLOG);
    let publisher = Publisher {
        queue,
        shared: runtime.shared.clone(),
        dropped: 0,
        warned: None,
    }
    .start();
    actix_rt::spawn(async move {
        while let Some(op) = ops.recv().await {
            let envelope = Envelope {
                from: instance.clone(),
                op,
            };
            match bus.publish(MESSAGING_SUBJECT.to_string(), &envelope).await {
                Ok(()) => shared.metrics.cluster_messaging("sent"),
                Err(e) => {
                    tracing::warn!(error = %e, "app messaging for other instances not published")
                }
            }
        }
    });
    messaging.do_send(ShareWith(publisher.clone().recipient()));
    // The others answer with the apps their users run.
    publisher.do_send(ShareMessaging(MessagingOp::Hello));
    Ok(())
}
