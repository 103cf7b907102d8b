//! What Sightline knows about its own actors, for the actor stats endpoint
//! (`GET /actors`), the live inspector page and `sightline top`.
//!
//! Every actor of the runtime — the supervisor, each user session, each
//! glasses and app connection, each health monitor and transcription
//! stream — registers in one [`ActorRegistry`] when it is built and keeps an
//! [`ActorProbe`] with its counters. Counting a message touches only that
//! actor's own atomics; reading builds a [`ActorNode`] tree on demand.
//!
//! Reading order: [`probe`] (what one actor counts), [`totals`] (what
//! outlives it, per kind), then [`registry`] (the set of live actors and its
//! snapshots).

pub mod probe;
pub mod registry;
pub mod totals;

pub use probe::{ActorKind, ActorProbe};
pub use registry::{ActorFilter, ActorNode, ActorRegistry, ActorSnapshot, ProbeGuard};
pub use totals::KindTotals;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_is_listed_while_its_guard_lives() {
        let reg = ActorRegistry::new();
        let root = reg.register(ActorKind::Supervisor, None, "running");
        let session = reg.register(ActorKind::UserSession, Some(root.id()), "active");
        session.set_user("alice@example.com");
        let conn = reg.register(ActorKind::AppConnection, Some(session.id()), "bound");
        conn.set_user("alice@example.com");
        conn.set_package("com.example.a");
        let tree = reg.tree(&ActorFilter::default());
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].count(), 3);
        drop(conn);
        assert_eq!(reg.tree(&ActorFilter::default())[0].count(), 2);
        assert_eq!(reg.counts()[&ActorKind::AppConnection], 0);
        drop(session);
        assert_eq!(reg.snapshot().len(), 1);
    }

    #[test]
    fn mailbox_depth_is_sent_minus_received() {
        let reg = ActorRegistry::new();
        let a = reg.register(ActorKind::UserSession, None, "active");
        let sender = a.probe();
        sender.sent();
        sender.sent();
        sender.sent();
        a.received();
        assert_eq!(a.mailbox(), 2);
        a.handled(); // a stream frame: handled, not from the mailbox
        assert_eq!(a.mailbox(), 2);
        assert_eq!(a.handled_total(), 2);
        assert_eq!(a.rate_last_minute(), 2);
    }

    #[test]
    fn filters_keep_ancestors_of_matches() {
        let reg = ActorRegistry::new();
        let root = reg.register(ActorKind::Supervisor, None, "running");
        let mut keep = Vec::new();
        for (user, pkg) in [("a", "p1"), ("a", "p2"), ("b", "p1")] {
            let s = reg.register(ActorKind::UserSession, Some(root.id()), "active");
            s.set_user(user);
            let c = reg.register(ActorKind::AppConnection, Some(s.id()), "bound");
            c.set_user(user);
            c.set_package(pkg);
            keep.push((s, c));
        }
        let by_user = reg.tree(&ActorFilter {
            user: Some("b".into()),
            package: None,
        });
        assert_eq!(by_user[0].count(), 3); // root, b's session, its app
        let by_pkg = reg.tree(&ActorFilter {
            user: None,
            package: Some("p1".into()),
        });
        assert_eq!(by_pkg[0].children.len(), 2);
        assert!(
            by_pkg[0]
                .children
                .iter()
                .all(|s| s.children.len() == 1
                    && s.children[0].actor.package.as_deref() == Some("p1"))
        );
    }

    #[test]
    fn failures_are_totalled_per_kind_beyond_the_actor() {
        let reg = ActorRegistry::new();
        let a = reg.register(ActorKind::TranscriptionStream, None, "idle");
        a.failed();
        a.failed();
        drop(a);
        assert_eq!(reg.totals(ActorKind::TranscriptionStream).failures(), 2);
    }
}
