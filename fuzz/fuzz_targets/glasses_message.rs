//! Fuzz target: one text frame from the glasses, as `/glasses-ws` hands it
//! to `parse_glasses_message`. Besides not panicking, an event must come
//! out as valid JSON text of an object whose `type` is the event's kind,
//! and the `data_stream` built around it (written by hand, not by serde)
//! must be valid JSON carrying that text unchanged and the stream type and
//! session id it was given, because it is relayed to apps as it is.
//!
//! "Valid JSON" is the grammar, read as Sightline reads events (fields it
//! does not use are skipped, not decoded): a number too large for an f64
//! is valid JSON and is relayed as sent.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use sightline_protocol::glasses::{parse_glasses_message, GlassesMessage};
use sightline_protocol::outbound::DataStreamFrame;

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataStream<'a> {
    session_id: String,
    stream_type: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

fuzz_target!(|data: &[u8]| {
    // A WebSocket text frame is valid UTF-8 before it reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_glasses_message(text) {
        Ok(GlassesMessage::Event(event)) => {
            let relayed = event.json.get();
            if let Err(e) = serde_json::from_str::<&RawValue>(relayed) {
                panic!("relayed event is not JSON ({e}): {relayed}");
            }
            assert!(relayed.starts_with('{'), "relayed a non-object: {relayed}");
            match serde_json::from_str::<Typed>(relayed) {
                Ok(t) => assert_eq!(t.kind, event.kind, "relayed type differs from the kind"),
                Err(e) => panic!("relayed event has no string type ({e}): {relayed}"),
            }
            // The event's own type stands in for a hostile subscription
            // string and session id: both are written by hand.
            let message = DataStreamFrame::new(&event.kind, event.json.get(), "t").for_session(&event.kind);
            match serde_json::from_str::<DataStream>(&message) {
                Ok(m) => {
                    assert_eq!(m.data.get(), relayed, "data_stream changed the event");
                    assert_eq!(m.stream_type, event.kind);
                    assert_eq!(m.session_id, event.kind);
                }
                Err(e) => panic!("data_stream is not JSON ({e}): {message}"),
            }
        }
        Ok(
            GlassesMessage::StartApp { package_name } | GlassesMessage::StopApp { package_name },
        ) => {
            assert!(!package_name.is_empty());
        }
        Ok(_) => {}
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
});
