//! Lease timing with an injected clock.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn leases() -> (Leases, Instant) {
    (Leases::new(LeaseConfig::default()), Instant::now())
}

#[test]
fn the_default_timings_are_consistent_and_bad_ones_are_refused() {
    assert_eq!(LeaseConfig::default().check(), Ok(()));
    let late_renewal = LeaseConfig {
        renew_every: ms(5000),
        ..LeaseConfig::default()
    };
    assert!(late_renewal.check().is_err());
    let no_margin = LeaseConfig {
        margin: Duration::ZERO,
        ..LeaseConfig::default()
    };
    assert!(no_margin.check().is_err());
}

#[test]
fn a_lease_is_renewed_once_per_period_with_its_revision() {
    let (mut l, t0) = leases();
    l.claimed("ana", 7, t0);
    assert_eq!(l.tick(t0 + ms(1999)), vec![]);
    let due = l.tick(t0 + ms(2000));
    assert_eq!(
        due,
        vec![LeaseAction::Renew {
            user: "ana".into(),
            revision: 7
        }]
    );
    // In flight: not asked again.
    assert_eq!(l.tick(t0 + ms(2500)), vec![]);
    l.renewed("ana", 7, 12, t0 + ms(2000));
    let lease = l.get("ana").expect("held");
    assert_eq!(
        (lease.epoch, lease.revision),
        (7, 12),
        "the epoch stays the claim's"
    );
    assert_eq!(l.tick(t0 + ms(3999)), vec![]);
    assert_eq!(
        l.tick(t0 + ms(4000)),
        vec![LeaseAction::Renew {
            user: "ana".into(),
            revision: 12
        }]
    );
}

#[test]
fn an_unconfirmed_lease_is_fenced_before_its_key_can_expire() {
    let (mut l, t0) = leases();
    l.claimed("ana", 3, t0);
    l.tick(t0 + ms(2000));
    assert_eq!(
        l.renew_failed("ana", RenewRefusal::Unavailable),
        None,
        "NATS away: kept for now"
    );
    // Asked again at the next tick.
    assert!(matches!(
        l.tick(t0 + ms(2100)).as_slice(),
        [LeaseAction::Renew { .. }]
    ));
    l.renew_failed("ana", RenewRefusal::Unavailable);
    let fence_at = t0 + LeaseConfig::default().fence_after();
    assert!(fence_at < t0 + LeaseConfig::default().ttl);
    assert_eq!(
        l.tick(fence_at),
        vec![LeaseAction::Fence {
            user: "ana".into(),
            epoch: 3
        }]
    );
    assert!(l.get("ana").is_none(), "a fenced lease is forgotten");
    assert_eq!(l.tick(fence_at + ms(10)), vec![]);
}

#[test]
fn a_conflict_fences_at_once() {
    let (mut l, t0) = leases();
    l.claimed("ana", 3, t0);
    l.tick(t0 + ms(2000));
    assert_eq!(
        l.renew_failed("ana", RenewRefusal::Conflict),
        Some(LeaseAction::Fence {
            user: "ana".into(),
            epoch: 3
        })
    );
    assert!(l.is_empty());
}

#[test]
fn a_slow_answer_does_not_extend_the_lease_past_what_was_sent() {
    let (mut l, t0) = leases();
    l.claimed("ana", 3, t0);
    l.tick(t0 + ms(2000));
    // The answer to the renewal sent at 2.0 s arrives at 4.4 s.
    l.renewed("ana", 3, 9, t0 + ms(2000));
    let fence_after = LeaseConfig::default().fence_after();
    assert!(matches!(
        l.tick(t0 + ms(2000) + fence_after).as_slice(),
        [LeaseAction::Fence { .. }]
    ));
}

#[test]
fn a_stale_confirmation_is_ignored() {
    let (mut l, t0) = leases();
    l.claimed("ana", 3, t0);
    // A confirmation for a revision this lease no longer holds (an answer
    // to an older claim) changes nothing.
    l.renewed("ana", 2, 8, t0 + ms(5000));
    assert_eq!(l.get("ana").map(|x| x.revision), Some(3));
    assert!(matches!(
        l.tick(t0 + LeaseConfig::default().fence_after()).as_slice(),
        [LeaseAction::Fence { .. }]
    ));
}

#[test]
fn a_released_lease_is_neither_renewed_nor_fenced() {
    let (mut l, t0) = leases();
    l.claimed("ana", 3, t0);
    l.claimed("ben", 4, t0);
    assert_eq!(l.released("ana").map(|x| x.epoch), Some(3));
    assert_eq!(
        l.tick(t0 + ms(2000)),
        vec![LeaseAction::Renew {
            user: "ben".into(),
            revision: 4
        }]
    );
    assert_eq!(l.len(), 1);
}

#[test]
fn actions_come_in_user_order() {
    let (mut l, t0) = leases();
    for (u, r) in [("cy", 1), ("ana", 2), ("ben", 3)] {
        l.claimed(u, r, t0);
    }
    let users: Vec<_> = l
        .tick(t0 + ms(2000))
        .into_iter()
        .map(|a| match a {
            LeaseAction::Renew { user, .. } | LeaseAction::Fence { user, .. } => user,
        })
        .collect();
    assert_eq!(users, ["ana", "ben", "cy"]);
}

#[test]
fn a_lease_being_transferred_is_not_renewed_and_waits_for_a_renewal_in_flight() {
    let (mut l, t0) = leases();
    l.claimed("ana", 3, t0);
    assert_eq!(l.begin_transfer("ana"), Some(3));
    assert!(
        l.tick(t0 + ms(2000)).is_empty(),
        "no renewal races the transfer"
    );
    // The transfer went through: the lease is gone.
    assert!(l.released("ana").is_some());
    assert!(l.begin_transfer("ana").is_none(), "not held any more");
    // A renewal in flight makes the transfer wait.
    l.claimed("ben", 4, t0);
    assert!(matches!(
        l.tick(t0 + ms(2000)).as_slice(),
        [LeaseAction::Renew { .. }]
    ));
    assert_eq!(l.begin_transfer("ben"), None);
    l.renewed("ben", 4, 5, t0 + ms(2000));
    assert_eq!(l.begin_transfer("ben"), Some(5));
    // A refused transfer fences like a refused renewal.
    assert!(matches!(
        l.renew_failed("ben", RenewRefusal::Conflict),
        Some(LeaseAction::Fence { .. })
    ));
}
