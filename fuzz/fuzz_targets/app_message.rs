//! Fuzz target: one text frame from an app, as `/app-ws` hands it to
//! `parse_app_message`, followed by what the session does with the result
//! (subscription lists decoded, display requests rebuilt for the glasses,
//! layouts flattened for the dashboard). Every outbound message built
//! from app input must be valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sightline_protocol::app::{flatten_layout, parse_app_message, AppMessage};
use sightline_protocol::outbound::display_event;
use sightline_protocol::session_id::user_from_app_session_id;
use sightline_protocol::stream::{parse_list, MAX_SUBSCRIPTION_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_app_message(text) {
        Ok(AppMessage::ConnectionInit(init)) => {
            assert!(!init.package_name.is_empty());
            if let Some(user) = user_from_app_session_id(&init.session_id, &init.package_name) {
                assert!(!user.is_empty());
            }
        }
        Ok(AppMessage::SubscriptionUpdate(items)) => {
            let subs = parse_list(&items, usize::MAX).subscriptions;
            assert!(subs.len() <= items.len());
            for s in &subs {
                assert!(s.raw.len() <= MAX_SUBSCRIPTION_LEN);
                let _ = (
                    s.required_permission(),
                    s.needs_audio(),
                    s.needs_transcription(),
                );
                let _ = s.matches_event("touch_event", Some("single_tap"));
            }
        }
        Ok(AppMessage::DisplayEvent(req)) => {
            assert!(req.view == "main" || req.view == "dashboard");
            let _ = req.layout_type();
            let _ = flatten_layout(&Value::Object(req.layout.clone()));
            let out = display_event("com.x", &req, "t");
            if let Err(e) = serde_json::from_str::<Value>(&out) {
                panic!("display_event is not JSON ({e}): {out}");
            }
        }
        Ok(_) => {}
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let _ = flatten_layout(&v);
    }
});
