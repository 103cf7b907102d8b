//! The dashboard's rules, one test each, with a fixed clock.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use sightline_protocol::glasses::GlassesEvent;

use super::*;

const PKG: &str = "system.augmentos.dashboard";

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
}

fn event(kind: &str, body: Value) -> GlassesEvent {
    let mut v = body;
    v["type"] = json!(kind);
    GlassesEvent::synthetic(kind, &v)
}

fn texts(d: &Dashboard, now: DateTime<Utc>) -> (String, String) {
    let r = d.render(now);
    assert_eq!(r.view, "dashboard");
    assert_eq!(r.package_name, PKG);
    assert_eq!(r.layout["layoutType"], "double_text_wall");
    (
        r.layout["topText"].as_str().unwrap().to_string(),
        r.layout["bottomText"].as_str().unwrap().to_string(),
    )
}

fn modes(m: &[&str]) -> Vec<String> {
    m.iter().map(|s| s.to_string()).collect()
}

#[test]
fn main_mode_shows_time_and_app_content() {
    let mut d = Dashboard::new(PKG);
    assert!(d.set_content("com.a", "Weather 12°C".into(), &[], at(9, 0)));
    let (top, bottom) = texts(&d, at(9, 5));
    assert_eq!(top, "Mon Nov 23, 9:05");
    assert_eq!(bottom, "\nWeather 12°C");
}

#[test]
fn time_follows_the_users_timezone() {
    let mut d = Dashboard::new(PKG);
    assert!(d.set_timezone("America/New_York"));
    assert!(!d.set_timezone("Mars/Olympus"));
    let (top, _) = texts(&d, at(9, 5));
    assert_eq!(top, "Mon Nov 23, 4:05");
}

#[test]
fn battery_notifications_and_calendar_fill_the_sections() {
    let mut d = Dashboard::new(PKG);
    let now = at(9, 0);
    assert!(d.observe(
        &event(
            "glasses_battery_update",
            json!({"level": 84, "charging": false})
        ),
        now
    ));
    assert!(!d.observe(
        &event(
            "glasses_battery_update",
            json!({"level": 84, "charging": false})
        ),
        now
    ));
    for id in ["n1", "n2", "n3"] {
        assert!(d.observe(
            &event("phone_notification", json!({"notificationId": id})),
            now
        ));
    }
    assert!(d.observe(
        &event(
            "phone_notification_dismissed",
            json!({"notificationId": "n2"})
        ),
        now
    ));
    assert!(d.observe(
        &event(
            "calendar_event",
            json!({"eventId": "e1", "title": "Standup", "dtStart": "2026-11-23T10:00:00Z",
                   "dtEnd": "2026-11-23T10:15:00Z", "timezone": "UTC"})
        ),
        now
    ));
    let (top, bottom) = texts(&d, now);
    assert_eq!(top, "Mon Nov 23, 9:00\n2 notifications");
    assert_eq!(bottom, "84%\nStandup @ 10:00\n\n");
    // Once the event is over it is no longer "next".
    let (_, later) = texts(&d, at(10, 30));
    assert_eq!(later, "84%\n");
}

#[test]
fn calendar_times_accept_epoch_milliseconds() {
    let mut d = Dashboard::new(PKG);
    let start = at(14, 30).timestamp_millis();
    assert!(d.observe(
        &event(
            "calendar_event",
            json!({"eventId": "e", "title": "Dentist", "dtStart": start.to_string(),
                   "dtEnd": (start + 3_600_000).to_string(), "timezone": "Europe/Berlin"})
        ),
        at(9, 0)
    ));
    let (top, bottom) = texts(&d, at(9, 0));
    assert_eq!(
        top, "Mon Nov 23, 10:00",
        "the event's zone becomes the user's"
    );
    assert_eq!(bottom, "\nDentist @ 15:30\n\n");
}

#[test]
fn system_sections_override_and_hand_back() {
    let mut d = Dashboard::new(PKG);
    assert!(d.set_system_section("topLeft", "Custom".into()));
    assert!(d.set_system_section("bottomRight", "Flight 7:40".into()));
    assert!(!d.set_system_section("middle", "x".into()));
    let (top, bottom) = texts(&d, at(9, 0));
    assert_eq!(top, "Custom");
    assert_eq!(bottom, "\nFlight 7:40\n\n");
    assert!(d.set_system_section("topLeft", String::new()));
    assert_eq!(texts(&d, at(9, 0)).0, "Mon Nov 23, 9:00");
}

#[test]
fn newest_content_first_and_looking_up_rotates() {
    let mut d = Dashboard::new(PKG);
    d.set_content("com.a", "from A".into(), &[], at(9, 0));
    d.set_content("com.b", "from B".into(), &[], at(9, 1));
    assert!(texts(&d, at(9, 2)).1.ends_with("from B"));
    let up = event("head_position", json!({"position": "up"}));
    let down = event("head_position", json!({"position": "down"}));
    assert!(!d.observe(&down, at(9, 2)));
    assert!(d.observe(&up, at(9, 2)));
    assert!(texts(&d, at(9, 2)).1.ends_with("from A"));
    assert!(d.observe(&up, at(9, 2)));
    assert!(texts(&d, at(9, 2)).1.ends_with("from B"));
    // One app's content does not rotate.
    d.remove_app("com.a");
    assert!(!d.observe(&up, at(9, 2)));
}

#[test]
fn an_update_rerenders_only_for_the_mode_showing() {
    let mut d = Dashboard::new(PKG);
    assert!(!d.set_content("com.a", "long".into(), &modes(&["expanded"]), at(9, 0)));
    assert!(d.set_content(
        "com.a",
        "short".into(),
        &modes(&["main", "expanded"]),
        at(9, 0)
    ));
    d.set_mode(DashboardMode::Expanded);
    assert!(!d.set_content("com.a", "glance".into(), &modes(&["main"]), at(9, 1)));
    let r = d.render(at(9, 1));
    assert_eq!(r.layout["layoutType"], "text_wall");
    assert_eq!(r.layout["text"], "Mon Nov 23, 9:01 | \nshort");
}

#[test]
fn expanded_mode_without_content_says_so() {
    let mut d = Dashboard::new(PKG);
    d.set_mode(DashboardMode::Expanded);
    let r = d.render(at(9, 0));
    assert_eq!(
        r.layout["text"],
        "Mon Nov 23, 9:00 | \nNo expanded content available"
    );
}

#[test]
fn a_stopped_apps_content_goes() {
    let mut d = Dashboard::new(PKG);
    d.set_content("com.a", "A".into(), &modes(&["main", "expanded"]), at(9, 0));
    assert!(d.remove_app("com.a"));
    assert!(!d.remove_app("com.a"));
    assert_eq!(texts(&d, at(9, 0)).1, "\n");
}

#[test]
fn content_and_unread_lists_are_bounded() {
    let mut d = Dashboard::new(PKG);
    d.set_content("com.a", "x".repeat(5_000), &[], at(9, 0));
    assert_eq!(texts(&d, at(9, 0)).1.chars().count(), 1 + MAX_CONTENT_CHARS);
    for i in 0..(sections::MAX_UNREAD + 50) {
        d.observe(
            &event(
                "phone_notification",
                json!({"notificationId": i.to_string()}),
            ),
            at(9, 0),
        );
    }
    let (top, _) = texts(&d, at(9, 0));
    assert!(top.ends_with(&format!("{} notifications", sections::MAX_UNREAD)));
}

#[test]
fn the_clock_ticks_at_the_next_minute() {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 45).unwrap();
    let wait = until_next_minute(now);
    assert!(wait >= Duration::from_secs(15) && wait < Duration::from_millis(15_100));
}
