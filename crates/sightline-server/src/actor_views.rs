//! What the actor views show (`GET /actors`, the live stream, and the
//! owner's answer for a user whose session lives on another instance of a
//! cluster): the supervision tree of this instance with its counts.

use std::collections::BTreeMap;

use serde::Serialize;
use sightline_probe::{ActorFilter, ActorNode};
use sightline_runtime::session::SessionView;
use sightline_runtime::Runtime;

/// The whole answer of `GET /actors`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorsView {
    /// Live actors of each kind (whole runtime, whatever the filter).
    pub counts: BTreeMap<&'static str, u64>,
    /// Actors in the tree below (after the filter).
    pub shown: usize,
    pub tree: Vec<ActorNode>,
    /// The instance of the cluster these actors live on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Every instance of the cluster (unfiltered views in cluster mode):
    /// the roster's members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionView>,
}

/// The actor tree of this instance, narrowed by `filter`.
pub fn actors_view(runtime: &Runtime, filter: &ActorFilter) -> ActorsView {
    let registry = &runtime.shared.actors;
    let tree = registry.tree(filter);
    ActorsView {
        counts: registry
            .counts()
            .into_iter()
            .map(|(k, n)| (k.name(), n))
            .collect(),
        shown: tree.iter().map(ActorNode::count).sum(),
        tree,
        instance: runtime.config.instance_id.clone(),
        cluster: None,
        session: None,
    }
}
