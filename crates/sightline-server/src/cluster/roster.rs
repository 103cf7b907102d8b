//! Who is in the cluster: every instance answers on `sightline.instances`
//! with its id, its app URL and what it holds, and an admin view gathers
//! the answers (`GET /actors`, the inspector, `sightline top`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_cluster::bus::ROSTER_SUBJECT;
use sightline_cluster::Bus;
use sightline_runtime::Runtime;

use super::{Cluster, ClusterError};

/// How long a roster waits for the instances' answers.
const GATHER: Duration = Duration::from_millis(250);
/// Instances a roster lists at most.
const MAX_MEMBERS: usize = 256;

/// One instance, as it describes itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub instance: String,
    pub url: String,
    /// User sessions running there.
    pub sessions: i64,
    pub glasses_connections: i64,
    pub app_connections: i64,
    pub draining: bool,
}

/// Answers roster requests for this instance until NATS closes.
pub async fn serve(cluster: Cluster, runtime: Runtime) -> Result<(), ClusterError> {
    let mut asks = cluster.bus.subscribe(ROSTER_SUBJECT.to_string()).await?;
    actix_rt::spawn(async move {
        while let Some(msg) = asks.next().await {
            let Some(reply) = msg.reply.clone() else {
                continue;
            };
            let figures = runtime.shared.figures.snapshot();
            let me = Member {
                instance: cluster.me.instance.clone(),
                url: cluster.me.url.clone(),
                sessions: figures.live_sessions,
                glasses_connections: figures.glasses_connections,
                app_connections: figures.app_connections,
                draining: cluster.is_draining(),
            };
            cluster.bus.reply(reply, &me).await;
        }
    });
    Ok(())
}

/// Every instance that answers, by id.
pub async fn members(bus: &Bus) -> Result<Vec<Member>, ClusterError> {
    let mut all: Vec<Member> = bus
        .gather(ROSTER_SUBJECT.to_string(), &"who", GATHER, MAX_MEMBERS)
        .await?;
    all.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(all)
}
