//! The breaker's states, with the clock passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{BreakerPolicy, CircuitBreaker, Recorded};

fn breaker(threshold: u32, cooldown_s: u64) -> Arc<CircuitBreaker> {
    Arc::new(CircuitBreaker::new(BreakerPolicy {
        failure_threshold: threshold,
        cooldown: Duration::from_secs(cooldown_s),
    }))
}

fn fail(b: &Arc<CircuitBreaker>, now: Instant) -> Recorded {
    b.check(now).expect("a call may go").record(false, now)
}

#[test]
fn opens_after_the_threshold_and_refuses_with_the_time_left() {
    let b = breaker(3, 10);
    let t = Instant::now();
    assert_eq!(fail(&b, t), Recorded::Counted { failures: 1 });
    assert_eq!(fail(&b, t), Recorded::Counted { failures: 2 });
    assert!(!b.is_open(t));
    let third = fail(&b, t);
    assert!(third.opened(), "the third failure opens it: {third:?}");
    assert_eq!(b.check(t).unwrap_err(), Duration::from_secs(10));
    assert!(b.is_open(t + Duration::from_secs(9)));
    assert!(!b.is_open(t + Duration::from_secs(11)));
    assert_eq!(b.open_for(t), Duration::from_secs(10));
    assert_eq!(b.consecutive_failures(), 3);
}

#[test]
fn one_trial_after_the_cooldown_closes_or_reopens() {
    let b = breaker(3, 10);
    let t = Instant::now();
    for _ in 0..3 {
        let _ = fail(&b, t);
    }
    let later = t + Duration::from_secs(11);
    let trial = b.check(later).expect("the trial call");
    assert!(trial.is_trial());
    assert!(b.check(later).is_err(), "only one trial at a time");
    assert!(b.is_open(later), "a trial under way holds the others back");
    let reopened = trial.record(false, later);
    assert_eq!(reopened, Recorded::Reopened { failures: 4 });
    assert!(reopened.started_refusing() && !reopened.opened());
    assert!(b.check(later + Duration::from_secs(1)).is_err());
    let again = later + Duration::from_secs(11);
    let trial = b.check(again).expect("the next trial");
    assert_eq!(trial.record(true, again), Recorded::Closed);
    let closed = b.check(again).expect("closed again");
    assert!(!closed.is_trial());
    assert_eq!(b.consecutive_failures(), 0);
}

#[test]
fn a_failure_while_open_starts_the_cooldown_again() {
    let b = breaker(1, 10);
    let t = Instant::now();
    let slow = b.check(t).expect("closed");
    let _ = fail(&b, t);
    let late = slow.record(false, t + Duration::from_secs(5));
    assert_eq!(late, Recorded::KeptOpen { failures: 2 });
    assert_eq!(
        b.open_for(t + Duration::from_secs(5)),
        Duration::from_secs(10)
    );
}

#[test]
fn the_others_wait_for_the_trial_for_at_most_the_trial_timeout() {
    let window = Duration::from_secs(1);
    let b = Arc::new(
        CircuitBreaker::new(BreakerPolicy {
            failure_threshold: 1,
            cooldown: Duration::from_secs(10),
        })
        .with_trial_timeout(window),
    );
    let t = Instant::now();
    let _ = fail(&b, t);
    let after = t + Duration::from_secs(10);
    let probe = b.check(after).expect("the first caller tries");
    let others = b.check(after + Duration::from_millis(100));
    assert_eq!(others.unwrap_err(), window - Duration::from_millis(100));
    // A trial that never reports back frees the turn after the window.
    std::mem::forget(probe);
    assert!(b.check(after + window).expect("the next trial").is_trial());
}

#[test]
fn a_trial_dropped_without_an_outcome_gives_its_turn_back() {
    let b = breaker(3, 10);
    let t = Instant::now();
    for _ in 0..3 {
        let _ = fail(&b, t);
    }
    let later = t + Duration::from_secs(11);
    let trial = b.check(later).expect("the trial call");
    drop(trial); // its actor stopped mid-call
    let next = b.check(later).expect("the next caller may try");
    assert_eq!(next.record(true, later), Recorded::Closed);
}

#[test]
fn a_silent_trial_given_up_cannot_free_the_turn_of_the_next_one() {
    let b = breaker(1, 10);
    let t = Instant::now();
    let _ = fail(&b, t);
    let later = t + Duration::from_secs(10);
    let lost = b.check(later).expect("the trial call");
    let next = b
        .check(later + Duration::from_secs(10))
        .expect("a silent trial does not block for ever");
    drop(lost); // comes back late, without an outcome
    assert!(
        b.check(later + Duration::from_secs(11)).is_err(),
        "the next trial still has the turn"
    );
    assert_eq!(next.record(true, later), Recorded::Closed);
}

#[test]
fn a_threshold_of_zero_opens_at_the_first_failure() {
    let b = breaker(0, 10);
    let t = Instant::now();
    assert!(fail(&b, t).opened());
    assert!(b.check(t).is_err());
}
