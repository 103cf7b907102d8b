//! When the glasses are told to switch the microphone: a plain struct that
//! takes the time and what the apps want, and says what to send.
//!
//! The apps' subscriptions say whether audio is wanted; telling the glasses
//! at every change would make the microphone flap, because an app that
//! re-subscribes sends `[]` and then its new list. So:
//!
//! - a change in what the apps want *settles* for `settle` (100 ms) from
//!   the first change of a burst before anything is decided, so `[]`
//!   followed by a list within that time changes nothing;
//! - once settled, switching on (or changing the formats asked for) is
//!   sent at once;
//! - switching off is sent only when the apps have wanted it off for
//!   `off_delay` (1 s) without a break;
//! - when the glasses (re)connect, the current wish is sent at once.
//!
//! The session carries out what this returns: it sends the state, or arms a
//! timer for [`MicAction::Wake`] and calls [`MicrophoneGate::tick`] when it
//! fires. A timer that fires early or late does no harm: every decision is
//! made from the clock.

use std::time::{Duration, Instant};

/// What the glasses' microphone should do: stream or not, and in which
/// formats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MicState {
    pub on: bool,
    pub required: Vec<&'static str>,
}

/// What the session should do after telling the gate something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicAction {
    /// Nothing now.
    Nothing,
    /// Send this state to the glasses.
    Send(MicState),
    /// Call [`MicrophoneGate::tick`] at this instant.
    Wake(Instant),
}

/// The microphone rules of one session.
#[derive(Debug)]
pub struct MicrophoneGate {
    settle: Duration,
    off_delay: Duration,
    /// What the glasses were last told (`None`: nothing yet).
    sent: Option<MicState>,
    /// What the apps want now, and since when.
    wanted: MicState,
    wanted_since: Instant,
    /// The end of the current settling burst, if one is under way.
    settles_at: Option<Instant>,
}

impl MicrophoneGate {
    pub fn new(settle: Duration, off_delay: Duration, now: Instant) -> Self {
        MicrophoneGate {
            settle,
            off_delay,
            sent: None,
            wanted: MicState::default(),
            wanted_since: now,
            settles_at: None,
        }
    }

    /// The apps' subscriptions changed: they now want `state`.
    pub fn want(&mut self, now: Instant, state: MicState) -> MicAction {
        if state != self.wanted {
            self.wanted = state;
            self.wanted_since = now;
        }
        match self.settles_at {
            Some(_) => MicAction::Nothing,
            None => {
                let at = now + self.settle;
                self.settles_at = Some(at);
                MicAction::Wake(at)
            }
        }
    }

    /// The glasses (re)connected: they learn the current wish at once.
    pub fn force(&mut self, now: Instant, state: MicState) -> MicAction {
        if state != self.wanted {
            self.wanted = state;
            self.wanted_since = now;
        }
        self.settles_at = None;
        self.sent = Some(self.wanted.clone());
        MicAction::Send(self.wanted.clone())
    }

    /// A timer fired (or any moment): decides from the clock.
    pub fn tick(&mut self, now: Instant) -> MicAction {
        if let Some(at) = self.settles_at {
            if now < at {
                return MicAction::Wake(at);
            }
            self.settles_at = None;
        }
        if self.sent.as_ref() == Some(&self.wanted) {
            return MicAction::Nothing;
        }
        if !self.wanted.on && self.sent.is_some() {
            let off_at = self.wanted_since + self.off_delay;
            if now < off_at {
                return MicAction::Wake(off_at);
            }
        }
        self.sent = Some(self.wanted.clone());
        MicAction::Send(self.wanted.clone())
    }

    /// Whether a settling burst is under way (the session defers work that
    /// a re-subscribe should not disturb until it ends).
    pub fn settling(&self) -> bool {
        self.settles_at.is_some()
    }

    /// What the glasses were last told.
    pub fn sent(&self) -> Option<&MicState> {
        self.sent.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(100);
    const OFF: Duration = Duration::from_secs(1);

    fn on() -> MicState {
        MicState {
            on: true,
            required: vec!["pcm"],
        }
    }

    fn off() -> MicState {
        MicState::default()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the gate's wake-ups up to `until`, collecting what it sends.
    fn run(gate: &mut MicrophoneGate, mut action: MicAction, until: Instant) -> Vec<MicState> {
        let mut sent = Vec::new();
        loop {
            match action {
                MicAction::Wake(at) if at <= until => action = gate.tick(at),
                MicAction::Send(s) => {
                    sent.push(s);
                    action = MicAction::Nothing;
                }
                _ => return sent,
            }
        }
    }

    #[test]
    fn switching_on_waits_only_for_the_burst_to_settle() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, off());
        assert_eq!(g.want(t0, on()), MicAction::Wake(t0 + SETTLE));
        assert_eq!(g.tick(t0 + ms(50)), MicAction::Wake(t0 + SETTLE));
        assert_eq!(g.tick(t0 + SETTLE), MicAction::Send(on()));
        assert_eq!(g.tick(t0 + ms(200)), MicAction::Nothing);
    }

    #[test]
    fn a_resubscribe_within_the_settle_time_sends_nothing() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, on());
        let first = g.want(t0, off()); // the SDK's `[]`
        assert_eq!(first, MicAction::Wake(t0 + SETTLE));
        assert_eq!(g.want(t0 + ms(5), on()), MicAction::Nothing); // its new list
        assert!(run(&mut g, first, t0 + ms(5_000)).is_empty());
        assert_eq!(g.sent(), Some(&on()));
    }

    #[test]
    fn switching_off_waits_until_off_has_held_for_the_delay() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, on());
        assert_eq!(g.want(t0, off()), MicAction::Wake(t0 + SETTLE));
        assert_eq!(g.tick(t0 + SETTLE), MicAction::Wake(t0 + OFF));
        assert_eq!(g.tick(t0 + ms(999)), MicAction::Wake(t0 + OFF));
        assert_eq!(g.tick(t0 + OFF), MicAction::Send(off()));
    }

    #[test]
    fn wanting_it_back_before_the_off_delay_cancels_the_switch_off() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, on());
        g.want(t0, off());
        assert_eq!(g.tick(t0 + SETTLE), MicAction::Wake(t0 + OFF));
        // Another app subscribes to audio after 500 ms.
        assert_eq!(g.want(t0 + ms(500), on()), MicAction::Wake(t0 + ms(600)));
        assert_eq!(g.tick(t0 + ms(600)), MicAction::Nothing);
        assert_eq!(
            g.tick(t0 + OFF),
            MicAction::Nothing,
            "the stale off timer does nothing"
        );
        assert_eq!(g.sent(), Some(&on()));
    }

    #[test]
    fn the_off_delay_counts_from_the_last_change() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, on());
        g.want(t0, off());
        g.tick(t0 + SETTLE);
        g.want(t0 + ms(300), on());
        g.want(t0 + ms(350), off()); // within the same burst
        assert_eq!(g.tick(t0 + ms(400)), MicAction::Wake(t0 + ms(1_350)));
        assert_eq!(g.tick(t0 + ms(1_350)), MicAction::Send(off()));
    }

    #[test]
    fn the_first_state_goes_out_once_settled_even_if_off() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        assert_eq!(g.want(t0, off()), MicAction::Wake(t0 + SETTLE));
        assert_eq!(g.tick(t0 + SETTLE), MicAction::Send(off()));
    }

    #[test]
    fn reconnected_glasses_get_the_current_wish_at_once() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, on());
        g.want(t0, off());
        assert_eq!(g.force(t0 + ms(10), off()), MicAction::Send(off()));
        assert!(!g.settling());
        assert_eq!(g.tick(t0 + OFF), MicAction::Nothing);
    }

    #[test]
    fn a_change_of_formats_while_on_is_sent_once_settled() {
        let t0 = Instant::now();
        let mut g = MicrophoneGate::new(SETTLE, OFF, t0);
        g.force(t0, on());
        let lc3 = MicState {
            on: true,
            required: vec!["lc3"],
        };
        g.want(t0, lc3.clone());
        assert_eq!(g.tick(t0 + SETTLE), MicAction::Send(lc3));
    }
}
