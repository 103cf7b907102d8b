//! Fuzz target: the glasses core token.
//!
//! Two modes, chosen by the first byte:
//! - `S`: the rest is a JWT header and a payload (split at the first NUL),
//!   signed with the secret, so the fuzzer reaches the claim checks behind
//!   the signature. A token that verifies must name a usable user: its
//!   `email` claim, trimmed, non-empty and at most 320 bytes.
//! - anything else: the input is an `Authorization` header value; `bearer`
//!   extracts the token and `verify_core_token` checks it. The fuzzer
//!   cannot forge a signature, so any success here is a finding.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{crypto, Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use sightline_server::auth::{bearer, verify_core_token, AuthError};

const SECRET: &str = "fuzz-secret";

/// The claim Sightline reads, decoded as Sightline decodes it (other
/// claims are skipped, not decoded).
#[derive(Deserialize)]
struct Email {
    email: String,
}

fuzz_target!(|data: &[u8]| {
    if let [b'S', rest @ ..] = data {
        signed(rest);
    } else {
        header(data);
    }
});

fn signed(data: &[u8]) {
    let (header, payload) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], data),
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let Ok(signature) = crypto::sign(message.as_bytes(), &key, Algorithm::HS256) else {
        return;
    };
    let token = format!("{message}.{signature}");
    if let Ok(email) = verify_core_token(Some(&token), SECRET) {
        assert!(!email.is_empty() && email.len() <= 320);
        assert_eq!(email, email.trim());
        match serde_json::from_slice::<Email>(payload) {
            Ok(claims) => assert_eq!(email, claims.email.trim(), "verified email differs"),
            Err(e) => panic!("verified claims without an email ({e})"),
        }
    }
    assert!(verify_core_token(Some(&token), "another-secret").is_err());
}

fn header(data: &[u8]) {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(AUTHORIZATION, value);
    }
    let token = bearer(&headers);
    if let Some(t) = token {
        assert!(!t.is_empty());
    }
    let result = verify_core_token(token, SECRET);
    if token.is_none() {
        assert_eq!(result, Err(AuthError::Missing));
    }
    if let Ok(email) = &result {
        panic!("a fuzzed token verified as {email:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(verify_core_token(Some(text), SECRET).is_err());
    }
}
