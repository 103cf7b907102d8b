//! The dependency graph between sibling modules, and its cycles.
//!
//! A reference from `a::x::y` to `b::z` is a dependency of `a` on `b`
//! (siblings under the crate root); one from `session::apps` to
//! `session::routing` is a dependency of `apps` on `routing` (siblings
//! under `session`). A module using its own parent or children is not a
//! dependency between siblings and is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::refs::Reference;

/// A cycle between sibling modules: each depends on the next, and the
/// last on the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The module the siblings are children of (empty: the crate root).
    pub parent: Vec<String>,
    /// The siblings, in cycle order.
    pub modules: Vec<String>,
    /// For each step of the cycle, one path that makes it.
    pub evidence: Vec<String>,
    /// Every module of the group the cycle is in (all reach each other),
    /// when the group is larger than the cycle.
    pub group: Vec<String>,
    /// Every dependency inside that group, with one path that makes it.
    pub group_edges: Vec<String>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: &String| {
            let mut p = self.parent.clone();
            p.push(m.clone());
            p.join("::")
        };
        let mut names: Vec<String> = self.modules.iter().map(name).collect();
        if let Some(first) = names.first().cloned() {
            names.push(first);
        }
        write!(f, "{}", names.join(" -> "))?;
        for e in &self.evidence {
            write!(f, "\n    {e}")?;
        }
        if !self.group.is_empty() {
            let names: Vec<String> = self.group.iter().map(name).collect();
            write!(
                f,
                "\n  in a group of modules that all depend on each other: {}",
                names.join(", ")
            )?;
            for e in &self.group_edges {
                write!(f, "\n    {e}")?;
            }
        }
        Ok(())
    }
}

type Edges = BTreeMap<String, BTreeMap<String, String>>;

/// Every cycle between sibling modules, one per group of modules that
/// depend on each other.
pub fn cycles(references: &[Reference]) -> Vec<Cycle> {
    let mut graphs: BTreeMap<Vec<String>, Edges> = BTreeMap::new();
    for r in references {
        let common = r.from.iter().zip(&r.to).take_while(|(a, b)| a == b).count();
        if common < r.from.len() && common < r.to.len() {
            graphs
                .entry(r.from[..common].to_vec())
                .or_default()
                .entry(r.from[common].clone())
                .or_default()
                .entry(r.to[common].clone())
                .or_insert_with(|| r.evidence.clone());
        }
    }
    let mut found = Vec::new();
    for (parent, edges) in graphs {
        for group in strongly_connected(&edges) {
            if group.len() > 1 {
                found.push(cycle_in(&parent, &edges, &group));
            }
        }
    }
    found
}

/// The groups of nodes that can all reach each other (Tarjan).
fn strongly_connected(edges: &Edges) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            group.sort();
            s.groups.push(group);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.groups
}

/// One concrete cycle through the first module of a group: the shortest
/// way from it to a module that depends on it (breadth first, inside the
/// group).
fn cycle_in(parent: &[String], edges: &Edges, group: &[String]) -> Cycle {
    let members: BTreeSet<&str> = group.iter().map(String::as_str).collect();
    let start = group[0].as_str();
    let targets = |v: &str| -> Vec<&str> {
        edges
            .get(v)
            .into_iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
            .filter(|w| members.contains(w))
            .collect()
    };
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = start;
    while let Some(v) = queue.pop_front() {
        if v != start && targets(v).contains(&start) {
            last = v;
            break;
        }
        for w in targets(v) {
            if w != start && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut modules = vec![last.to_string()];
    let mut at = last;
    while let Some(&prev) = came_from.get(at) {
        modules.push(prev.to_string());
        at = prev;
    }
    modules.reverse();
    let evidence = modules
        .iter()
        .zip(modules.iter().cycle().skip(1))
        .map(|(a, b)| {
            let why = edges
                .get(a)
                .and_then(|m| m.get(b))
                .cloned()
                .unwrap_or_default();
            format!("{a} -> {b}: {why}")
        })
        .collect();
    let (group, group_edges) = if modules.len() < group.len() {
        let edges_inside = group
            .iter()
            .flat_map(|a| {
                edges
                    .get(a)
                    .into_iter()
                    .flat_map(|m| m.iter())
                    .filter(|(b, _)| members.contains(b.as_str()))
                    .map(move |(b, why)| format!("{a} -> {b}: {why}"))
            })
            .collect();
        (group.to_vec(), edges_inside)
    } else {
        (Vec::new(), Vec::new())
    };
    Cycle {
        parent: parent.to_vec(),
        modules,
        evidence,
        group,
        group_edges,
    }
}
