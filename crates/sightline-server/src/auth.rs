//! Who is calling: glasses (HS256 JWT whose `email` is the user id) and
//! operators (the admin bearer token). Secrets and tokens never reach logs
//! or error messages.

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("No core token provided")]
    Missing,
    #[error("Invalid core token")]
    Invalid,
}

#[derive(Deserialize)]
struct CoreClaims {
    email: String,
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// Verifies a glasses core token and returns the user id (its `email`).
/// Only HS256 is accepted; `exp` is checked when present (core tokens
/// usually have none).
pub fn verify_core_token(token: Option<&str>, secret: &str) -> Result<String, AuthError> {
    let token = token.ok_or(AuthError::Missing)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Invalid);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    let data = decode::<CoreClaims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|_| AuthError::Invalid)?;
    let email = data.claims.email.trim().to_string();
    if email.is_empty() || email.len() > 320 {
        return Err(AuthError::Invalid);
    }
    Ok(email)
}

/// Compares a presented admin token with the configured one in constant time.
pub fn admin_token_matches(presented: Option<&str>, configured: &str) -> bool {
    match presented {
        Some(p) => p.as_bytes().ct_eq(configured.as_bytes()).into(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(alg: Algorithm, claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn accepts_hs256_without_exp() {
        let t = token(Algorithm::HS256, json!({"email": "a@b.c", "sub": "x"}), "s");
        assert_eq!(verify_core_token(Some(&t), "s"), Ok("a@b.c".into()));
    }

    #[test]
    fn refuses_wrong_secret_alg_expired_and_missing_email() {
        let t = token(Algorithm::HS256, json!({"email": "a@b.c"}), "other");
        assert_eq!(verify_core_token(Some(&t), "s"), Err(AuthError::Invalid));
        let t = token(Algorithm::HS512, json!({"email": "a@b.c"}), "s");
        assert_eq!(verify_core_token(Some(&t), "s"), Err(AuthError::Invalid));
        let t = token(
            Algorithm::HS256,
            json!({"email": "a@b.c", "exp": 1000}),
            "s",
        );
        assert_eq!(verify_core_token(Some(&t), "s"), Err(AuthError::Invalid));
        let t = token(Algorithm::HS256, json!({"sub": "x"}), "s");
        assert_eq!(verify_core_token(Some(&t), "s"), Err(AuthError::Invalid));
        assert_eq!(verify_core_token(None, "s"), Err(AuthError::Missing));
        // alg "none": header {"alg":"none"} with an empty signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJlbWFpbCI6ImFAYi5jIn0.";
        assert_eq!(verify_core_token(Some(none), "s"), Err(AuthError::Invalid));
    }

    #[test]
    fn admin_token_compare() {
        assert!(admin_token_matches(Some("t0k"), "t0k"));
        assert!(!admin_token_matches(Some("t0"), "t0k"));
        assert!(!admin_token_matches(None, "t0k"));
    }
}
