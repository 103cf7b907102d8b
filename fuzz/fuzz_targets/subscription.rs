//! Fuzz target: subscription strings and app session ids. The input is
//! split at its first NUL byte into a subscription string (or session id)
//! and an event type (or package name); a JSON list after a second NUL is
//! decoded as a whole `subscription_update` list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_protocol::session_id::{app_session_id, user_from_app_session_id};
use sightline_protocol::stream::{
    canonical_event, parse_list, Subscription, SubscriptionItem, MAX_SUBSCRIPTION_LEN,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let first = parts.next().unwrap_or_default();
    let second = parts.next().unwrap_or_default();

    let sub = Subscription::parse(first);
    assert!(sub.raw.len() <= MAX_SUBSCRIPTION_LEN);
    assert!(first.starts_with(&sub.raw));
    let _ = sub.matches_event(second, Some(second));
    let _ = sub.matches_event(second, None);
    let _ = sub.matches_transcription(second);
    let _ = (
        sub.required_permission(),
        sub.needs_audio(),
        sub.needs_transcription(),
    );
    let _ = canonical_event(first);

    if let Some(user) = user_from_app_session_id(first, second) {
        assert!(!user.is_empty());
        assert_eq!(app_session_id(user, second), first);
    }
    if !first.is_empty() && !second.is_empty() {
        let id = app_session_id(first, second);
        assert_eq!(user_from_app_session_id(&id, second), Some(first));
    }

    if let Some(list) = parts.next() {
        if let Ok(items) = serde_json::from_str::<Vec<SubscriptionItem>>(list) {
            let subs = parse_list(&items, usize::MAX).subscriptions;
            assert!(subs.len() <= items.len());
            assert!(subs.iter().all(|s| s.raw.len() <= MAX_SUBSCRIPTION_LEN));
        }
    }
});
