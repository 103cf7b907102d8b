//! Every transition of the app lifecycle, without sockets or sleeping: the
//! tests feed the table inputs at chosen instants and check the effects.

use std::time::{Duration, Instant};

use serde_json::json;
use sightline_protocol::stream::SubscriptionItem;
use sightline_protocol::webhook::StopReason;
use sightline_store::{AppRecord, AppType};

use super::*;
use crate::handoff::AppHandoff;

/// A connection, as the table sees it.
#[derive(Debug, Clone, PartialEq)]
struct Conn(u64);

impl AppLink for Conn {
    fn id(&self) -> ConnectionId {
        ConnectionId(self.0)
    }
}

const PKG: &str = "com.example.notes";
const OTHER: &str = "com.example.maps";
const DASH: &str = "system.augmentos.dashboard";

fn config() -> LifecycleConfig {
    LifecycleConfig {
        start_timeout: Duration::from_secs(5),
        webhook_initial_backoff: Duration::from_millis(250),
        reconnect_grace: Duration::from_secs(10),
        empty_subscription_guard: Duration::from_secs(8),
        max_resurrections: 2,
        dashboard_package: DASH.into(),
        replay_max_events: 10,
        replay_max_bytes: 10_000,
        max_subscriptions: 3,
    }
}

fn record(package: &str, app_type: AppType) -> AppRecord {
    AppRecord {
        package_name: package.into(),
        name: format!("{package} app"),
        description: String::new(),
        public_url: format!("http://{package}.example"),
        hashed_api_key: String::new(),
        app_type,
        permissions: vec!["MICROPHONE".into()],
        settings_schema: vec![],
        logo_url: None,
    }
}

type Table = AppTable<Conn>;

fn table() -> Table {
    let mut t = AppTable::new("ana@example.com", config());
    let _ = t.glasses_connected(Instant::now());
    t
}

fn lookup_of(effects: &[Effect<Conn>]) -> u64 {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::LookUp { intent, .. } => Some(*intent),
            _ => None,
        })
        .expect("a lookup")
}

fn session_request(effects: &[Effect<Conn>]) -> Option<u64> {
    effects.iter().find_map(|e| match e {
        Effect::PostSessionRequest { generation, .. } => Some(*generation),
        _ => None,
    })
}

fn stop_request(effects: &[Effect<Conn>]) -> Option<AfterStop> {
    effects.iter().find_map(|e| match e {
        Effect::PostStopRequest { then, .. } => Some(then.clone()),
        _ => None,
    })
}

fn timers(effects: &[Effect<Conn>]) -> Vec<(Instant, Timer)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Arm { at, timer } => Some((*at, timer.clone())),
            _ => None,
        })
        .collect()
}

fn timer_of(effects: &[Effect<Conn>], kind: TimerKind) -> (Instant, Timer) {
    timers(effects)
        .into_iter()
        .find(|(_, t)| t.kind == kind)
        .unwrap_or_else(|| panic!("a {kind:?} timer in {effects:?}"))
}

fn persisted(effects: &[Effect<Conn>]) -> Vec<bool> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist { running, .. } => Some(*running),
            _ => None,
        })
        .collect()
}

fn sent_texts(effects: &[Effect<Conn>]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn state_error(effects: &[Effect<Conn>]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::AppStates { error } => error.clone(),
        _ => None,
    })
}

/// Starts `package` through to Loading: returns the session_request's
/// generation and the start timeout timer.
fn start_loading(t: &mut Table, now: Instant, package: &str, app_type: AppType) -> (u64, Timer) {
    let e = t.start(now, package);
    let intent = lookup_of(&e);
    let e = t.looked_up(now, package, intent, Ok(Some(record(package, app_type))));
    let generation = session_request(&e).expect("session_request");
    (generation, timer_of(&e, TimerKind::StartTimeout).1)
}

/// Starts `package` and connects it on `conn`.
fn start_running(t: &mut Table, now: Instant, package: &str, conn: u64) -> Effects<Conn> {
    start_loading(t, now, package, AppType::Background);
    t.connected(now, record(package, AppType::Background), Conn(conn))
}

fn items(list: &[&str]) -> Vec<SubscriptionItem> {
    list.iter()
        .map(|s| SubscriptionItem::Name(s.to_string()))
        .collect()
}

// ---------------------------------------------------------------- start --

#[test]
fn a_start_looks_up_then_loads_with_a_timeout_and_a_webhook() {
    let mut t = table();
    let now = Instant::now();
    let e = t.start(now, PKG);
    assert!(matches!(e.as_slice(), [Effect::LookUp { .. }]));
    let e = t.looked_up(
        now,
        PKG,
        lookup_of(&e),
        Ok(Some(record(PKG, AppType::Standard))),
    );
    assert_eq!(t.get(PKG).map(|a| a.state), Some(AppState::Loading));
    assert!(session_request(&e).is_some());
    assert_eq!(persisted(&e), [true]);
    let (at, _) = timer_of(&e, TimerKind::StartTimeout);
    assert_eq!(at, now + Duration::from_secs(5));
    assert!(e.iter().any(|x| matches!(x, Effect::ScreenStarted { .. })));
}

#[test]
fn a_second_start_while_loading_only_reports_the_states() {
    let mut t = table();
    let now = Instant::now();
    let e = t.start(now, PKG);
    assert_eq!(t.start(now, PKG), vec![Effect::AppStates { error: None }]);
    t.looked_up(
        now,
        PKG,
        lookup_of(&e),
        Ok(Some(record(PKG, AppType::Standard))),
    );
    assert_eq!(t.start(now, PKG), vec![Effect::AppStates { error: None }]);
}

#[test]
fn an_unknown_app_is_refused_and_forgotten() {
    let mut t = table();
    let now = Instant::now();
    let e = t.start(now, PKG);
    let e = t.looked_up(now, PKG, lookup_of(&e), Ok(None));
    assert_eq!(persisted(&e), [false]);
    assert!(state_error(&e).is_some_and(|m| m.contains("not registered")));
    assert!(t.is_empty());
}

#[test]
fn starts_under_way_are_bounded() {
    let mut t = table();
    let now = Instant::now();
    for n in 0..MAX_STARTS_UNDER_WAY {
        lookup_of(&t.start(now, &format!("com.example.app{n}")));
    }
    let e = t.start(now, "com.example.one-too-many");
    assert!(state_error(&e).is_some_and(|m| m.contains("under way")));
}

#[test]
fn a_standard_app_replaces_the_running_standard_app() {
    let mut t = table();
    let now = Instant::now();
    start_loading(&mut t, now, OTHER, AppType::Standard);
    let e = t.start(now, PKG);
    let e = t.looked_up(
        now,
        PKG,
        lookup_of(&e),
        Ok(Some(record(PKG, AppType::Standard))),
    );
    assert!(
        stop_request(&e).is_some(),
        "the other standard app is stopped"
    );
    assert!(!t.contains_key(OTHER));
    assert!(t.contains_key(PKG));
}

#[test]
fn a_failed_webhook_is_retried_only_while_loading_and_within_the_timeout() {
    let mut t = table();
    let now = Instant::now();
    let (generation, _) = start_loading(&mut t, now, PKG, AppType::Background);
    let e = t.webhook_answered(now, PKG, generation, Err("500".into()));
    let (at, retry) = timer_of(&e, TimerKind::RetryWebhook);
    let delay = at - now;
    assert!(
        delay >= Duration::from_millis(175) && delay <= Duration::from_millis(325),
        "{delay:?}"
    );
    assert_eq!(
        session_request(&t.timer_fired(at, &retry)),
        Some(generation)
    );
    // Near the start timeout there is no room for another attempt.
    let late = now + Duration::from_millis(4_990);
    assert!(t
        .webhook_answered(late, PKG, generation, Err("500".into()))
        .is_empty());
}

#[test]
fn a_webhook_failing_after_the_app_connected_never_unloads_it() {
    let mut t = table();
    let now = Instant::now();
    let (generation, _) = start_loading(&mut t, now, PKG, AppType::Background);
    t.connected(now, record(PKG, AppType::Background), Conn(1));
    assert!(t
        .webhook_answered(now, PKG, generation, Err("timeout".into()))
        .is_empty());
    assert_eq!(t.get(PKG).map(|a| a.state), Some(AppState::Running));
}

#[test]
fn an_app_that_never_connects_times_out() {
    let mut t = table();
    let now = Instant::now();
    let (_, timeout) = start_loading(&mut t, now, PKG, AppType::Background);
    let e = t.timer_fired(now + Duration::from_secs(5), &timeout);
    assert!(!t.contains_key(PKG));
    assert_eq!(persisted(&e), [false]);
    assert!(state_error(&e).is_some_and(|m| m.contains("did not connect within 5000 ms")));
}

#[test]
fn a_stale_start_timeout_does_nothing() {
    let mut t = table();
    let now = Instant::now();
    let (_, timeout) = start_loading(&mut t, now, PKG, AppType::Background);
    t.connected(now, record(PKG, AppType::Background), Conn(1));
    assert!(t
        .timer_fired(now + Duration::from_secs(5), &timeout)
        .is_empty());
    assert!(t.is_connected(PKG));
}

// ----------------------------------------------------------------- stop --

#[test]
fn a_stop_during_the_lookup_cancels_the_start() {
    let mut t = table();
    let now = Instant::now();
    let intent = lookup_of(&t.start(now, PKG));
    let e = t.stop(now, PKG, StopReason::UserDisabled);
    assert_eq!(persisted(&e), [false]);
    let e = t.looked_up(now, PKG, intent, Ok(Some(record(PKG, AppType::Standard))));
    assert!(e.is_empty(), "the cancelled start does nothing: {e:?}");
    assert!(t.is_empty());
}

#[test]
fn start_stop_start_during_lookups_starts_once_with_the_last_intent() {
    let mut t = table();
    let now = Instant::now();
    let first = lookup_of(&t.start(now, PKG));
    t.stop(now, PKG, StopReason::UserDisabled);
    let second = lookup_of(&t.start(now, PKG));
    assert!(t
        .looked_up(now, PKG, first, Ok(Some(record(PKG, AppType::Standard))))
        .is_empty());
    let e = t.looked_up(now, PKG, second, Ok(Some(record(PKG, AppType::Standard))));
    assert!(session_request(&e).is_some());
}

#[test]
fn a_stop_of_a_loading_app_sends_stop_request_and_refuses_its_connection() {
    let mut t = table();
    let now = Instant::now();
    start_loading(&mut t, now, PKG, AppType::Background);
    let e = t.stop(now, PKG, StopReason::UserDisabled);
    assert_eq!(stop_request(&e), Some(AfterStop::Release));
    let e = t.connected(now, record(PKG, AppType::Background), Conn(1));
    assert!(matches!(
        e.as_slice(),
        [Effect::Reject {
            code: "APP_NOT_STARTED",
            ..
        }]
    ));
}

#[test]
fn a_stop_of_a_running_app_tells_and_closes_its_socket() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.stop(now, PKG, StopReason::UserDisabled);
    assert!(sent_texts(&e).iter().any(|m| m.contains("app_stopped")));
    assert!(e.contains(&Effect::Close {
        link: Conn(1),
        code: 1000,
        reason: "App stopped"
    }));
    assert!(e.contains(&Effect::Unwatch {
        id: ConnectionId(1)
    }));
}

#[test]
fn a_quick_restart_waits_for_the_stop_webhook() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let stop = t.stop(now, PKG, StopReason::UserDisabled);
    let then = stop_request(&stop).expect("stop_request");
    assert!(t.start(now, PKG).is_empty(), "the start waits");
    let e = t.stop_answered(now, PKG, &then);
    assert!(matches!(e.as_slice(), [Effect::LookUp { .. }]), "{e:?}");
}

#[test]
fn a_stop_cancels_a_start_waiting_for_an_earlier_stop() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let then = stop_request(&t.stop(now, PKG, StopReason::UserDisabled)).expect("stop");
    t.start(now, PKG);
    t.stop(now, PKG, StopReason::UserDisabled);
    assert!(t.stop_answered(now, PKG, &then).is_empty());
    assert!(t.is_empty());
}

#[test]
fn dispose_ends_every_app_without_webhooks() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.dispose();
    assert!(stop_request(&e).is_none());
    assert!(sent_texts(&e)
        .iter()
        .any(|m| m.contains("user_session_ended")));
    assert!(t.is_empty());
}

// ----------------------------------------------------------- connection --

#[test]
fn connecting_accepts_watches_and_counts_the_start_time() {
    let mut t = table();
    let now = Instant::now();
    start_loading(&mut t, now, PKG, AppType::Background);
    let later = now + Duration::from_millis(40);
    let e = t.connected(later, record(PKG, AppType::Background), Conn(7));
    assert_eq!(
        e[0],
        Effect::Accept {
            package: PKG.into(),
            link: Conn(7)
        }
    );
    assert!(e.contains(&Effect::Count(Count::StartTook(Duration::from_millis(40)))));
    assert!(e.contains(&Effect::Watch {
        package: PKG.into(),
        link: Conn(7)
    }));
}

#[test]
fn a_new_socket_supersedes_the_old_one() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.connected(now, record(PKG, AppType::Background), Conn(2));
    assert!(e.contains(&Effect::Supersede { link: Conn(1) }));
    assert!(e.contains(&Effect::Unwatch {
        id: ConnectionId(1)
    }));
    assert!(t.current_link(PKG, ConnectionId(1)).is_none());
    assert!(t.current_link(PKG, ConnectionId(2)).is_some());
    // The old socket's late close changes nothing.
    assert!(t.disconnected(now, PKG, ConnectionId(1), None).is_empty());
}

#[test]
fn the_dashboard_connects_without_a_start() {
    let mut t = table();
    let e = t.connected(Instant::now(), record(DASH, AppType::Background), Conn(3));
    assert!(matches!(e[0], Effect::Accept { .. }));
    assert!(t.is_connected(DASH));
}

#[test]
fn a_lost_socket_waits_for_the_sdk_and_keeps_events() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.disconnected(now, PKG, ConnectionId(1), Some(1006));
    assert_eq!(t.get(PKG).map(|a| a.state), Some(AppState::Reconnecting));
    assert!(t.get(PKG).is_some_and(|a| a.replay.is_some()));
    let (at, _) = timer_of(&e, TimerKind::ReconnectGrace);
    assert_eq!(at, now + Duration::from_secs(10));
    // Events kept meanwhile reach the reconnected socket, in order.
    for n in 0..3 {
        if let Some(r) = t.get_mut(PKG).and_then(|a| a.replay.as_mut()) {
            r.push("button_press", format!("event {n}"));
        }
    }
    let e = t.connected(now, record(PKG, AppType::Background), Conn(2));
    assert_eq!(sent_texts(&e), ["event 0", "event 1", "event 2"]);
    assert!(e.contains(&Effect::Count(Count::AppReconnected)));
    assert!(e.contains(&Effect::Count(Count::Replayed(3))));
}

#[test]
fn a_grace_that_ends_with_the_glasses_here_resurrects_then_relaunches() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.disconnected(now, PKG, ConnectionId(1), None);
    let (at, grace) = timer_of(&e, TimerKind::ReconnectGrace);
    let e = t.timer_fired(at, &grace);
    assert!(e.contains(&Effect::Count(Count::Resurrected)));
    let then = stop_request(&e).expect("stop_request first");
    assert!(
        session_request(&e).is_none(),
        "no session_request before the stop is answered"
    );
    let e = t.stop_answered(at, PKG, &then);
    assert!(session_request(&e).is_some());
    assert_eq!(t.get(PKG).map(|a| a.state), Some(AppState::Loading));
}

#[test]
fn a_reconnect_during_resurrection_cancels_the_relaunch() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.disconnected(now, PKG, ConnectionId(1), None);
    let (at, grace) = timer_of(&e, TimerKind::ReconnectGrace);
    let then = stop_request(&t.timer_fired(at, &grace)).expect("stop");
    // The SDK reconnects before the stop_request is answered.
    t.connected(at, record(PKG, AppType::Background), Conn(2));
    assert!(t.stop_answered(at, PKG, &then).is_empty());
    assert!(t.is_connected(PKG));
}

#[test]
fn a_grace_that_ends_with_the_glasses_away_makes_the_app_dormant_until_they_return() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    t.glasses_left();
    let e = t.disconnected(now, PKG, ConnectionId(1), None);
    let (at, grace) = timer_of(&e, TimerKind::ReconnectGrace);
    assert!(t.timer_fired(at, &grace).is_empty());
    assert_eq!(t.get(PKG).map(|a| a.state), Some(AppState::Dormant));
    let e = t.glasses_connected(at);
    assert!(stop_request(&e).is_some(), "woken by a resurrection");
}

#[test]
fn an_app_restarted_too_often_is_stopped_when_its_grace_ends() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    if let Some(a) = t.get_mut(PKG) {
        a.resurrections = 2; // the limit in config()
    }
    let e = t.disconnected(now, PKG, ConnectionId(1), None);
    let (at, grace) = timer_of(&e, TimerKind::ReconnectGrace);
    let e = t.timer_fired(at, &grace);
    assert!(state_error(&e).is_some_and(|m| m.contains("could not be restarted")));
    assert!(stop_request(&e).is_none());
    assert!(!t.contains_key(PKG));
}

#[test]
fn an_app_that_released_its_session_is_not_restarted() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    t.ownership_released(PKG, ConnectionId(1));
    let e = t.disconnected(now, PKG, ConnectionId(1), Some(1000));
    let (at, grace) = timer_of(&e, TimerKind::ReconnectGrace);
    let e = t.timer_fired(at, &grace);
    assert!(state_error(&e).is_some_and(|m| m.contains("released its session")));
    assert_eq!(persisted(&e), [false]);
}

// -------------------------------------------------------- subscriptions --

#[test]
fn subscriptions_replace_the_list_and_refuse_what_lacks_permission() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.subscriptions_changed(
        now,
        PKG,
        ConnectionId(1),
        &items(&["audio_chunk", "location_update"]),
    );
    let texts = sent_texts(&e);
    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains("permission_error") && texts[0].contains("LOCATION"));
    let subs: Vec<&str> = t
        .get(PKG)
        .map(|a| a.subscriptions.iter().map(|s| s.raw.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(subs, ["audio_chunk"]);
    assert!(e.contains(&Effect::MicrophoneMayChange));
}

#[test]
fn subscriptions_past_the_limit_are_left_out_with_one_error() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let e = t.subscriptions_changed(
        now,
        PKG,
        ConnectionId(1),
        &items(&["a", "b", "c", "d", "e", "a"]),
    );
    assert!(sent_texts(&e)[0].contains("SUBSCRIPTION_LIMIT"));
    assert!(e.contains(&Effect::Count(Count::SubscriptionsRefused)));
    assert_eq!(t.get(PKG).map(|a| a.subscriptions.len()), Some(3));
}

#[test]
fn an_empty_list_right_after_a_reconnect_is_ignored() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    t.subscriptions_changed(now, PKG, ConnectionId(1), &items(&["button_press"]));
    assert!(t
        .subscriptions_changed(now + Duration::from_secs(1), PKG, ConnectionId(1), &[])
        .is_empty());
    let later = now + Duration::from_secs(9);
    t.subscriptions_changed(later, PKG, ConnectionId(1), &[]);
    assert_eq!(t.get(PKG).map(|a| a.subscriptions.len()), Some(0));
}

#[test]
fn a_superseded_socket_cannot_change_subscriptions() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    t.connected(now, record(PKG, AppType::Background), Conn(2));
    assert!(t
        .subscriptions_changed(now, PKG, ConnectionId(1), &items(&["button_press"]))
        .is_empty());
}

#[test]
fn a_restarted_app_gets_kept_events_once_it_subscribes_and_only_those_it_wants() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    t.subscriptions_changed(
        now,
        PKG,
        ConnectionId(1),
        &items(&["button_press", "head_position"]),
    );
    let e = t.disconnected(now, PKG, ConnectionId(1), None);
    if let Some(r) = t.get_mut(PKG).and_then(|a| a.replay.as_mut()) {
        r.push("button_press", "press".into());
        r.push("head_position", "head".into());
    }
    let (at, grace) = timer_of(&e, TimerKind::ReconnectGrace);
    let then = stop_request(&t.timer_fired(at, &grace)).expect("resurrect");
    t.stop_answered(at, PKG, &then);
    // The restarted SDK connects: nothing is replayed before it subscribes.
    let e = t.connected(at, record(PKG, AppType::Background), Conn(2));
    assert!(sent_texts(&e).is_empty());
    assert!(t.get(PKG).is_some_and(|a| !a.receives_live()));
    let later = at + Duration::from_secs(9);
    let e = t.subscriptions_changed(later, PKG, ConnectionId(2), &items(&["button_press"]));
    assert_eq!(sent_texts(&e), ["press"]);
    assert!(e.contains(&Effect::Count(Count::Dropped(1))));
    assert!(t.get(PKG).is_some_and(|a| a.receives_live()));
}

#[test]
fn the_record_the_start_looked_up_is_kept_when_the_app_connects() {
    let mut t = table();
    let now = Instant::now();
    let mut r = record(PKG, AppType::Background);
    r.settings_schema = vec![json!({"key": "color", "type": "text", "defaultValue": "red"})];
    start_loading(&mut t, now, PKG, AppType::Background);
    t.connected(now, r.clone(), Conn(1));
    assert_eq!(
        t.get(PKG).map(|a| a.record.settings_schema.len()),
        Some(0),
        "the started record is kept"
    );
}

// ------------------------------------------------------------- hand-off --

#[test]
fn a_handed_off_app_keeps_running_and_takes_its_state_along() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let _ = t.subscriptions_changed(now, PKG, ConnectionId(1), &items(&["button_press"]));
    start_running(&mut t, now, OTHER, 2);
    let _ = t.disconnected(now, OTHER, ConnectionId(2), Some(1006));
    if let Some(r) = t.get_mut(OTHER).and_then(|a| a.replay.as_mut()) {
        r.push("button_press", "missed".into());
    }
    let (apps, links) = t.hand_off();
    assert!(t.is_empty(), "nothing is left to stop here");
    assert_eq!(links, vec![Conn(1)], "the open socket is left for the SDK");
    let notes = apps.iter().find(|a| a.record.package_name == PKG).unwrap();
    assert_eq!(notes.subscriptions, ["button_press"]);
    let maps = apps
        .iter()
        .find(|a| a.record.package_name == OTHER)
        .unwrap();
    assert_eq!(maps.kept.len(), 1);
    assert_eq!(maps.kept[0].text, "missed");
}

#[test]
fn an_adopted_app_keeps_every_event_until_it_has_subscribed_again() {
    let mut old = table();
    let now = Instant::now();
    start_running(&mut old, now, PKG, 1);
    let _ = old.subscriptions_changed(now, PKG, ConnectionId(1), &items(&["button_press"]));
    let (mut apps, _) = old.hand_off();
    apps[0].kept.push(crate::handoff::KeptEvent {
        stream_type: "button_press".into(),
        text: "during the move".into(),
    });

    let mut new = table();
    let e = new.adopt(now, apps.remove(0));
    assert!(session_request(&e).is_some(), "pointed at the new owner");
    assert!(persisted(&e).is_empty(), "still running in the store");
    let app = new.get(PKG).unwrap();
    assert_eq!(app.state, AppState::Loading);
    assert_eq!(app.subscriptions.len(), 1);
    assert!(!app.receives_live());
    // Connected, but not subscribed yet: events are still kept.
    let e = new.connected(now, record(PKG, AppType::Background), Conn(7));
    assert!(sent_texts(&e).is_empty());
    assert!(!new.get(PKG).unwrap().receives_live());
    if let Some(r) = new.get_mut(PKG).and_then(|a| a.replay.as_mut()) {
        r.push("button_press", "after the connect".into());
    }
    // Its subscription list lets everything out, in order.
    let e = new.subscriptions_changed(now, PKG, ConnectionId(7), &items(&["button_press"]));
    assert_eq!(sent_texts(&e), ["during the move", "after the connect"]);
    assert!(new.get(PKG).unwrap().receives_live());
    // Adopting the same app twice changes nothing.
    let again = AppHandoff {
        record: record(PKG, AppType::Background),
        subscriptions: vec![],
        kept: vec![],
    };
    assert!(new.adopt(now, again).is_empty());
}

#[test]
fn an_app_that_reached_another_instance_is_pointed_back_unless_connected_here() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    assert!(
        t.repoint(now, PKG).is_empty(),
        "connected here: nothing to do"
    );
    let _ = t.disconnected(now, PKG, ConnectionId(1), Some(1006));
    let e = t.repoint(now, PKG);
    assert!(session_request(&e).is_some());
    assert_eq!(t.get(PKG).map(|a| a.state), Some(AppState::Loading));
    assert!(
        t.repoint(now, OTHER).is_empty(),
        "not an app of this session"
    );
}

#[test]
fn a_changed_registration_drops_subscriptions_its_permissions_no_longer_cover() {
    let mut t = table();
    let now = Instant::now();
    start_running(&mut t, now, PKG, 1);
    let _ = t.subscriptions_changed(
        now,
        PKG,
        ConnectionId(1),
        &items(&["button_press", "transcription:en-US"]),
    );
    assert_eq!(t.get(PKG).map(|a| a.subscriptions.len()), Some(2));
    let mut changed = record(PKG, AppType::Background);
    changed.permissions.clear();
    changed.public_url = "http://moved.example".into();
    let e = t.record_changed(changed);
    assert!(e.contains(&Effect::MicrophoneMayChange));
    let app = t.get(PKG).unwrap();
    let subs: Vec<&str> = app.subscriptions.iter().map(|s| s.raw.as_str()).collect();
    assert_eq!(subs, ["button_press"], "transcription needs the microphone");
    assert_eq!(app.record.public_url, "http://moved.example");
    assert!(t
        .record_changed(record(OTHER, AppType::Background))
        .is_empty());
}
