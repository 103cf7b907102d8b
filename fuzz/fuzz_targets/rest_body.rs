//! Fuzz target: REST request bodies and the checks each handler runs on
//! them before anything is stored. The same bytes are read as every body
//! type (actix's JSON extractor uses `serde_json::from_slice` too): a
//! `POST /api/admin/apps` body, a `PUT /api/admin/apps/{package}` body, a
//! `POST /appsettings/{package}` body, and as the query string of a
//! `/glasses-ws` upgrade. Each either fails with a message (a 400) or
//! yields a value that satisfies the handler's rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sightline_server::admin::{validate_package, validate_url, NewApp};
use sightline_server::fuzzing::{apply_settings_change, codec_from_query};
use sightline_server::views::AppUpdate;
use sightline_store::{hash_api_key, AppRecord, AppType};

fn stored_app() -> AppRecord {
    AppRecord {
        package_name: "com.example.notes".into(),
        name: "Notes".into(),
        description: String::new(),
        public_url: "http://127.0.0.1:9".into(),
        hashed_api_key: hash_api_key("notes-api-key"),
        app_type: AppType::Standard,
        permissions: vec!["MICROPHONE".into()],
        settings_schema: vec![json!({"key": "color", "type": "text", "value": "green"})],
        logo_url: None,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(new) = serde_json::from_slice::<NewApp>(data) {
        match new.into_record() {
            Ok((record, key)) => {
                assert!(validate_package(&record.package_name).is_ok());
                assert!(validate_url(&record.public_url).is_ok());
                assert!(key.len() >= 8);
                assert_eq!(record.hashed_api_key, hash_api_key(&key));
            }
            Err(reason) => assert!(!reason.is_empty()),
        }
    }

    if let Ok(update) = serde_json::from_slice::<AppUpdate>(data) {
        let mut app = stored_app();
        match update.apply_to(&mut app) {
            Ok(()) => assert!(validate_url(&app.public_url).is_ok()),
            Err(reason) => assert!(!reason.is_empty()),
        }
        assert_eq!(app.package_name, "com.example.notes");
    }

    if let Ok(change) = serde_json::from_slice::<Value>(data) {
        let schema = stored_app().settings_schema;
        // A value of a key the schema no longer declares is dropped.
        let stored = vec![json!({"key": "size", "value": 3})];
        match apply_settings_change(&schema, &stored, change.clone()) {
            Ok(settings) => {
                // Only {key, value} pairs of keys the schema declares.
                assert!(settings.iter().all(|s| s
                    .get("key")
                    .and_then(Value::as_str)
                    == Some("color")
                    && s.as_object().is_some_and(|o| o.len() == 2)));
                assert!(settings.len() <= 1);
            }
            Err(reason) => assert!(!reason.is_empty()),
        }
    }

    if let Ok(query) = std::str::from_utf8(data) {
        let _ = codec_from_query(query);
    }
});
