//! Hostile input at Sightline's front door: `Authorization` headers and
//! glasses core tokens, the REST bodies of the admin and settings APIs, and
//! the codec query of a `/glasses-ws` upgrade.
//!
//! Nothing may panic; a token verifies only when it is signed with the
//! secret and names a usable user; a body is either refused with a message
//! (the handler's 400) or yields a value that keeps the handler's rules.
//! Valid inputs round-trip. The end-to-end side (real sockets, the status
//! codes the handlers answer) is in the workspace's `tests/hostile_input.rs`;
//! the `jwt` and `rest_body` fuzz targets in `fuzz/` run these checks for
//! hours.

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sightline_audio::AudioCodec;
use sightline_server::admin::{validate_package, validate_url, NewApp};
use sightline_server::auth::{bearer, verify_core_token, AuthError, MAX_TOKEN_BYTES};
use sightline_server::fuzzing::{apply_settings_change, codec_from_query};
use sightline_server::views::AppUpdate;
use sightline_store::{hash_api_key, AppRecord, AppType};

const SECRET: &str = "hostile-secret";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-zA-Z0-9._:/?# -]{0,30}",
        1 => (0usize..3000).prop_map(|n| "é".repeat(n)),
        1 => "[\\x00-\\x1f]{1,8}",
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(nasty_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field that is usually of the right kind and otherwise anything.
fn field(right: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        3 => right.prop_map(Some),
        2 => any_json().prop_map(Some),
    ]
}

fn object(entries: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in entries {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

fn url() -> impl Strategy<Value = String> {
    "https?://[a-z0-9.-]{1,30}(:[0-9]{1,5})?(/[a-z/]{0,20})?"
}

/// A `POST /api/admin/apps` body with fields of any type.
fn almost_new_app() -> impl Strategy<Value = Value> {
    (
        field("[a-zA-Z0-9._-]{1,130}".prop_map(Value::from)),
        field(nasty_string().prop_map(Value::from)),
        field(prop_oneof![url(), nasty_string()].prop_map(Value::from)),
        field(nasty_string().prop_map(Value::from)),
        field(prop::sample::select(&["standard", "background", "other"][..]).prop_map(Value::from)),
        field(prop::collection::vec("[A-Z_]{1,20}", 0..4).prop_map(|v| json!(v))),
        field(prop::collection::vec(any_json(), 0..4).prop_map(Value::Array)),
    )
        .prop_map(
            |(package, name, public_url, key, app_type, perms, settings)| {
                object(vec![
                    ("packageName", package),
                    ("name", name.clone()),
                    ("description", name),
                    ("publicUrl", public_url),
                    ("apiKey", key),
                    ("appType", app_type),
                    ("permissions", perms),
                    ("settings", settings),
                ])
            },
        )
}

fn stored_app() -> AppRecord {
    AppRecord {
        package_name: "com.example.notes".into(),
        name: "Notes".into(),
        description: String::new(),
        public_url: "http://127.0.0.1:9".into(),
        hashed_api_key: hash_api_key("notes-api-key"),
        app_type: AppType::Standard,
        permissions: vec!["MICROPHONE".into()],
        settings_schema: vec![
            json!({"key": "color", "type": "text", "value": "green"}),
            json!({"key": "size", "value": 2}),
        ],
        logo_url: None,
    }
}

/// What the user stored for `stored_app()`: a value for `size` only.
fn stored_values() -> Vec<Value> {
    vec![json!({"key": "size", "value": 3})]
}

fn sign(claims: &Value, alg: Algorithm, secret: &str, kid: Option<String>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid;
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

// ---------------------------------------------------------------- tokens --

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_authorization_header_is_read_safely(value in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.insert(AUTHORIZATION, v);
        }
        let token = bearer(&headers);
        if let Some(t) = token {
            prop_assert!(!t.is_empty());
            prop_assert_eq!(t, t.trim());
        }
        prop_assert!(verify_core_token(token, SECRET).is_err());
    }

    #[test]
    fn bearer_round_trips(token in "[!-~]{1,100}") {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| TestCaseError::fail(e.to_string()))?);
        prop_assert_eq!(bearer(&headers), Some(token.as_str()));
    }

    #[test]
    fn unsigned_tokens_never_verify(token in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
        (0usize..3).prop_map(|n| "a.".repeat(MAX_TOKEN_BYTES / 2 + n)),
    ]) {
        prop_assert!(verify_core_token(Some(&token), SECRET).is_err());
    }

    #[test]
    fn signed_tokens_with_any_claims_verify_only_with_a_usable_email(claims in any_json(), kid in proptest::option::of(nasty_string())) {
        let token = sign(&claims, Algorithm::HS256, SECRET, kid);
        if let Ok(email) = verify_core_token(Some(&token), SECRET) {
            let sent = claims["email"].as_str().unwrap_or_default();
            prop_assert_eq!(email.as_str(), sent.trim());
            prop_assert!(!email.is_empty() && email.len() <= 320);
        }
    }

    #[test]
    fn time_claims_that_are_not_positive_numbers_never_verify(
        claim in prop::sample::select(&["exp", "nbf", "iat"][..]),
        value in any_json().prop_filter("not a positive number", |v| !v.as_f64().is_some_and(|t| t > 0.0)),
    ) {
        let token = sign(&json!({"email": "a@b.c", claim: value}), Algorithm::HS256, SECRET, None);
        prop_assert_eq!(verify_core_token(Some(&token), SECRET), Err(AuthError::Invalid));
    }

    #[test]
    fn email_claims_round_trip(email in nasty_string(), extra in prop::collection::btree_map("[a-z]{1,8}", any_json(), 0..4)) {
        let mut claims: Map<String, Value> = extra
            .into_iter()
            .filter(|(k, _)| !["exp", "nbf", "iat", "aud", "iss", "sub"].contains(&k.as_str()))
            .collect();
        claims.insert("email".into(), email.clone().into());
        let token = sign(&Value::Object(claims), Algorithm::HS256, SECRET, None);
        let trimmed = email.trim();
        let expected = if trimmed.is_empty() || trimmed.len() > 320 || token.len() > MAX_TOKEN_BYTES {
            Err(AuthError::Invalid)
        } else {
            Ok(trimmed.to_string())
        };
        prop_assert_eq!(verify_core_token(Some(&token), SECRET), expected);
    }

    #[test]
    fn tokens_of_other_secrets_or_algorithms_never_verify(
        email in "[a-z]{1,10}@[a-z]{1,10}\\.com",
        alg in prop::sample::select(&[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][..]),
        secret in "[a-z]{0,20}",
    ) {
        prop_assume!(!(alg == Algorithm::HS256 && secret == SECRET));
        let token = sign(&json!({"email": email}), alg, &secret, None);
        prop_assert_eq!(verify_core_token(Some(&token), SECRET), Err(AuthError::Invalid));
    }
}

// ------------------------------------------------------------ REST bodies --

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_a_body_or_an_error(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = serde_json::from_slice::<NewApp>(&body).map(NewApp::into_record);
        if let Ok(update) = serde_json::from_slice::<AppUpdate>(&body) {
            let _ = update.apply_to(&mut stored_app());
        }
        if let Ok(change) = serde_json::from_slice::<Value>(&body) {
            let _ = apply_settings_change(&stored_app().settings_schema, &stored_values(), change);
        }
    }

    #[test]
    fn new_app_bodies_are_checked(body in almost_new_app()) {
        let Ok(new) = serde_json::from_value::<NewApp>(body.clone()) else {
            return Ok(());
        };
        match new.into_record() {
            Ok((record, key)) => {
                prop_assert!(validate_package(&record.package_name).is_ok());
                prop_assert!(validate_url(&record.public_url).is_ok(), "{}", record.public_url);
                prop_assert!(key.len() >= 8);
                prop_assert_eq!(record.hashed_api_key, hash_api_key(&key));
                prop_assert_eq!(Some(record.package_name.as_str()), body["packageName"].as_str());
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn valid_new_apps_round_trip(
        package in "[a-zA-Z0-9._-]{1,128}",
        public_url in url(),
        key in "[!-~]{8,64}",
        background in any::<bool>(),
        permissions in prop::collection::vec("[A-Z_]{1,20}", 0..4),
    ) {
        let body = json!({
            "packageName": package, "publicUrl": format!("{public_url}/"), "apiKey": key,
            "appType": if background { "background" } else { "standard" }, "permissions": permissions,
        });
        let new: NewApp = serde_json::from_value(body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (record, returned_key) = new.into_record().map_err(TestCaseError::fail)?;
        prop_assert_eq!(record.package_name, package.clone());
        prop_assert_eq!(record.name, package);
        prop_assert_eq!(record.public_url, public_url.trim_end_matches('/'));
        prop_assert_eq!(&returned_key, &key);
        prop_assert_eq!(record.hashed_api_key, hash_api_key(&key));
        prop_assert_eq!(record.app_type, if background { AppType::Background } else { AppType::Standard });
        prop_assert_eq!(record.permissions, permissions);
    }

    #[test]
    fn app_updates_are_checked(body in almost_new_app()) {
        let Ok(update) = serde_json::from_value::<AppUpdate>(body) else {
            return Ok(());
        };
        let mut app = stored_app();
        match update.apply_to(&mut app) {
            Ok(()) => prop_assert!(validate_url(&app.public_url).is_ok()),
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
        prop_assert_eq!(app.package_name, "com.example.notes");
    }

    #[test]
    fn settings_changes_are_checked(change in prop_oneof![
        any_json(),
        prop::collection::vec(field(Just(json!({"key": "color", "value": "red"}))), 0..5)
            .prop_map(|v| Value::Array(v.into_iter().map(|x| x.unwrap_or(Value::Null)).collect())),
        (field(nasty_string().prop_map(Value::from)), any_json())
            .prop_map(|(key, value)| object(vec![("key", key), ("value", Some(value))])),
        any_json().prop_map(|value| json!({"key": "size", "value": value})),
    ]) {
        let schema = stored_app().settings_schema;
        let stored = stored_values();
        match apply_settings_change(&schema, &stored, change.clone()) {
            Ok(settings) => {
                // Only {key, value} pairs of declared keys, each key once.
                let mut keys: Vec<&str> = settings.iter().filter_map(|s| s["key"].as_str()).collect();
                prop_assert_eq!(keys.len(), settings.len());
                prop_assert!(settings.iter().all(|s| s.as_object().is_some_and(|o| o.len() == 2)));
                prop_assert!(keys.iter().all(|k| *k == "color" || *k == "size"));
                keys.dedup();
                prop_assert_eq!(keys.len(), settings.len());
                // Every value the change sets is stored, the others kept.
                let sets: Vec<Value> = match &change {
                    Value::Array(all) => all.clone(),
                    one => vec![one.clone()],
                };
                for key in ["color", "size"] {
                    let stored_now = settings.iter().find(|s| s["key"] == key).map(|s| &s["value"]);
                    let last = sets.iter().rev().find(|s| s["key"] == key).and_then(|s| s.get("value"));
                    let before = stored.iter().find(|s| s["key"] == key).map(|s| &s["value"]);
                    prop_assert_eq!(stored_now, last.or(before));
                }
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn codec_queries_are_a_codec_or_an_error(query in any::<String>()) {
        let _ = codec_from_query(&query);
    }

    #[test]
    fn codec_queries_round_trip(n in 0u32..1000, junk in "[a-z]{1,5}=[a-z0-9]{0,5}") {
        let got = codec_from_query(&format!("{junk}&audioCodec=lc3&lc3FrameBytes={n}"));
        if (20..=400).contains(&n) {
            prop_assert_eq!(got, Ok(AudioCodec::Lc3 { frame_bytes: n as usize }));
        } else {
            prop_assert!(got.is_err());
        }
    }
}
