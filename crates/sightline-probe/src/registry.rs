//! The registry of live actors, and the snapshots the stats endpoint,
//! the inspector page and `sightline top` are built from.
//!
//! An actor registers when it is built and holds the returned
//! [`ProbeGuard`]; dropping the guard (the actor stopping, or its thread
//! unwinding) takes it out again. The registry's lock is taken only then
//! and when someone reads a snapshot — never per message.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::probe::{ActorKind, ActorProbe, Description};
use crate::totals::KindTotals;

/// Every live actor of one runtime.
#[derive(Debug)]
pub struct ActorRegistry {
    next_id: AtomicU64,
    actors: Mutex<BTreeMap<u64, Arc<ActorProbe>>>,
    totals: Vec<Arc<KindTotals>>,
}

impl Default for ActorRegistry {
    fn default() -> Self {
        ActorRegistry {
            next_id: AtomicU64::new(1),
            actors: Mutex::new(BTreeMap::new()),
            totals: ActorKind::ALL
                .iter()
                .map(|_| Arc::new(KindTotals::default()))
                .collect(),
        }
    }
}

impl ActorRegistry {
    pub fn new() -> Arc<ActorRegistry> {
        Arc::new(ActorRegistry::default())
    }

    /// Registers a new actor of `kind` under `parent`, in `state`.
    pub fn register(
        self: &Arc<Self>,
        kind: ActorKind,
        parent: Option<u64>,
        state: &'static str,
    ) -> ProbeGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let totals = self.totals[kind.index()].clone();
        let description = Description {
            parent,
            state,
            ..Description::default()
        };
        let probe = Arc::new(ActorProbe::new(id, kind, description, totals));
        if let Ok(mut actors) = self.actors.lock() {
            actors.insert(id, probe.clone());
        }
        ProbeGuard {
            probe,
            registry: self.clone(),
        }
    }

    /// The totals of one kind of actor.
    pub fn totals(&self, kind: ActorKind) -> &KindTotals {
        &self.totals[kind.index()]
    }

    /// Live actors of each kind.
    pub fn counts(&self) -> BTreeMap<ActorKind, u64> {
        let mut out: BTreeMap<ActorKind, u64> = ActorKind::ALL.iter().map(|k| (*k, 0)).collect();
        for probe in self.probes() {
            *out.entry(probe.kind()).or_default() += 1;
        }
        out
    }

    fn probes(&self) -> Vec<Arc<ActorProbe>> {
        self.actors
            .lock()
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One actor, by id.
    pub fn get(&self, id: u64) -> Option<ActorSnapshot> {
        let probe = self.actors.lock().ok()?.get(&id).cloned()?;
        Some(ActorSnapshot::of(&probe))
    }

    /// Every live actor, flat, in id order.
    pub fn snapshot(&self) -> Vec<ActorSnapshot> {
        self.probes().iter().map(|p| ActorSnapshot::of(p)).collect()
    }

    /// The supervision tree, limited to the actors that match `filter` and
    /// their ancestors (so a match is always shown where it lives).
    pub fn tree(&self, filter: &ActorFilter) -> Vec<ActorNode> {
        let all = self.snapshot();
        let by_id: BTreeMap<u64, &ActorSnapshot> = all.iter().map(|a| (a.id, a)).collect();
        let mut keep = BTreeSet::new();
        for a in all.iter().filter(|a| filter.matches(a)) {
            let mut cur = Some(a.id);
            while let Some(id) = cur {
                if !keep.insert(id) {
                    break;
                }
                cur = by_id.get(&id).and_then(|a| a.parent);
            }
        }
        let mut children: BTreeMap<Option<u64>, Vec<&ActorSnapshot>> = BTreeMap::new();
        for a in all.iter().filter(|a| keep.contains(&a.id)) {
            // An actor whose parent has gone is shown at the top.
            let parent = a.parent.filter(|p| keep.contains(p));
            children.entry(parent).or_default().push(a);
        }
        build(None, &children)
    }
}

fn build(
    parent: Option<u64>,
    children: &BTreeMap<Option<u64>, Vec<&ActorSnapshot>>,
) -> Vec<ActorNode> {
    children
        .get(&parent)
        .map(|list| {
            list.iter()
                .map(|a| ActorNode {
                    actor: (*a).clone(),
                    children: build(Some(a.id), children),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An actor's registration; the actor is listed while this lives.
#[derive(Debug)]
pub struct ProbeGuard {
    probe: Arc<ActorProbe>,
    registry: Arc<ActorRegistry>,
}

impl ProbeGuard {
    /// A handle for senders, who count messages into the mailbox.
    pub fn probe(&self) -> Arc<ActorProbe> {
        self.probe.clone()
    }
}

impl Deref for ProbeGuard {
    type Target = ActorProbe;
    fn deref(&self) -> &ActorProbe {
        &self.probe
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if let Ok(mut actors) = self.registry.actors.lock() {
            actors.remove(&self.probe.id());
        }
    }
}

/// Which actors a tree shows.
#[derive(Debug, Clone, Default)]
pub struct ActorFilter {
    pub user: Option<String>,
    pub package: Option<String>,
}

impl ActorFilter {
    fn matches(&self, a: &ActorSnapshot) -> bool {
        let user_ok = self
            .user
            .as_ref()
            .is_none_or(|u| a.user.as_deref() == Some(u.as_str()));
        let package_ok = self
            .package
            .as_ref()
            .is_none_or(|p| a.package.as_deref() == Some(p.as_str()));
        user_ok && package_ok
    }
}

/// One actor at one instant.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActorSnapshot {
    pub id: u64,
    pub kind: ActorKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub state: &'static str,
    pub started_at: String,
    pub messages_handled: u64,
    pub mailbox: u64,
    pub messages_last_minute: u64,
    pub last_activity: String,
    pub failures: u64,
    pub restarts: u64,
}

impl ActorSnapshot {
    fn of(p: &ActorProbe) -> ActorSnapshot {
        let d = p.description();
        ActorSnapshot {
            id: p.id(),
            kind: p.kind(),
            parent: d.parent,
            user: d.user,
            package: d.package,
            label: d.label,
            state: d.state,
            started_at: iso(p.started_at()),
            messages_handled: p.handled_total(),
            mailbox: p.mailbox(),
            messages_last_minute: p.rate_last_minute(),
            last_activity: iso(p.last_activity()),
            failures: p.failures(),
            restarts: p.restarts(),
        }
    }
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// An actor and the actors it supervises.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActorNode {
    #[serde(flatten)]
    pub actor: ActorSnapshot,
    pub children: Vec<ActorNode>,
}

impl ActorNode {
    /// Number of actors in this subtree, itself included.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(ActorNode::count).sum::<usize>()
    }
}
