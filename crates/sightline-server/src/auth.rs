//! Who is calling: glasses (HS256 JWT whose `email` is the user id) and
//! operators (the admin bearer token). Secrets and tokens never reach logs
//! or error messages.
//!
//! REST handlers take [`CoreUser`] or [`AdminAuth`] as their first argument:
//! actix extracts arguments in order and these extractors answer at once,
//! so a request without a valid credential gets its 401 before its body is
//! read or parsed.

use std::future::{ready, Ready};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::error::ApiError;
use crate::SharedState;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Clock skew allowed on `exp`, `nbf` and `iat` by default, in seconds.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 60;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("No core token provided")]
    Missing,
    #[error("Invalid core token")]
    Invalid,
}

/// How strictly the time claims of a core token are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreTokenRules {
    /// Seconds of clock skew allowed between the token's issuer and
    /// Sightline (`SIGHTLINE_JWT_LEEWAY_SECS`).
    pub leeway_secs: u64,
    /// Refuse tokens without `exp` (`SIGHTLINE_JWT_REQUIRE_EXP`). MentraOS
    /// core tokens carry none, so this is off by default.
    pub require_exp: bool,
}

impl Default for CoreTokenRules {
    fn default() -> Self {
        CoreTokenRules {
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            require_exp: false,
        }
    }
}

#[derive(Deserialize)]
struct CoreClaims {
    email: String,
    // The time claims are read raw so that a claim of the wrong type is
    // refused rather than skipped.
    #[serde(default, deserialize_with = "present")]
    exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iat: Option<Value>,
}

/// A claim that is in the token, even as `null` (which is not a time).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A JWT NumericDate: a positive, finite JSON number of seconds.
fn numeric_date(v: &Value) -> Option<f64> {
    v.as_f64().filter(|t| t.is_finite() && *t > 0.0)
}

impl CoreClaims {
    /// Checks `exp`, `nbf` and `iat` against `now` (seconds since the
    /// epoch): each, when present, must be a positive number; `exp` must
    /// not be past, `nbf` and `iat` not in the future (all within the
    /// leeway).
    fn check_times(&self, now: f64, rules: &CoreTokenRules) -> Result<(), AuthError> {
        let leeway = rules.leeway_secs as f64;
        let time = |claim: &Option<Value>| -> Result<Option<f64>, AuthError> {
            match claim {
                None => Ok(None),
                Some(v) => numeric_date(v).map(Some).ok_or(AuthError::Invalid),
            }
        };
        match time(&self.exp)? {
            Some(exp) if now > exp + leeway => return Err(AuthError::Invalid),
            None if rules.require_exp => return Err(AuthError::Invalid),
            _ => {}
        }
        if let Some(nbf) = time(&self.nbf)? {
            if nbf > now + leeway {
                return Err(AuthError::Invalid);
            }
        }
        if let Some(iat) = time(&self.iat)? {
            if iat > now + leeway {
                return Err(AuthError::Invalid);
            }
        }
        Ok(())
    }
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

/// Verifies a glasses core token with the default [`CoreTokenRules`] and
/// returns the user id (its `email`).
pub fn verify_core_token(token: Option<&str>, secret: &str) -> Result<String, AuthError> {
    verify_core_token_with(token, secret, &CoreTokenRules::default())
}

/// Verifies a glasses core token and returns the user id (its `email`).
/// Only HS256 is accepted. `exp`, `nbf` and `iat` are checked when present
/// (see [`CoreTokenRules`]); a time claim that is not a positive number
/// makes the token invalid.
pub fn verify_core_token_with(
    token: Option<&str>,
    secret: &str,
    rules: &CoreTokenRules,
) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    verify_core_token_at(token, secret, rules, now)
}

fn verify_core_token_at(
    token: Option<&str>,
    secret: &str,
    rules: &CoreTokenRules,
    now: f64,
) -> Result<String, AuthError> {
    let token = token.ok_or(AuthError::Missing)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Invalid);
    }
    // The library checks the signature and algorithm only; the time
    // claims are checked below, strictly typed.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = decode::<CoreClaims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|_| AuthError::Invalid)?;
    data.claims.check_times(now, rules)?;
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

fn shared_state(req: &HttpRequest) -> Result<&SharedState, ApiError> {
    req.app_data::<web::Data<SharedState>>()
        .map(|d| d.get_ref())
        .ok_or(ApiError::Internal("server state is not mounted"))
}

/// The user named by a request's core token (`Authorization: Bearer`).
/// As an extractor it fails with 401 before later arguments (the body)
/// are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreUser(pub String);

impl CoreUser {
    /// Checks the request's core token against the server's secret and rules.
    pub fn of(req: &HttpRequest, state: &SharedState) -> Result<CoreUser, ApiError> {
        let config = &state.config;
        verify_core_token_with(
            bearer(req.headers()),
            &config.jwt_secret,
            &config.core_token_rules,
        )
        .map(CoreUser)
        .map_err(|_| ApiError::Unauthorized)
    }
}

impl FromRequest for CoreUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(shared_state(req).and_then(|state| CoreUser::of(req, state)))
    }
}

/// Proof that a request carries the admin token. As an extractor it fails
/// (401, or 403 when the admin API is disabled) before later arguments
/// (the body) are read.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl AdminAuth {
    /// Checks the request's bearer against the configured admin token.
    pub fn of(req: &HttpRequest, state: &SharedState) -> Result<AdminAuth, ApiError> {
        let Some(configured) = state.config.admin_token.as_deref() else {
            return Err(ApiError::AdminDisabled);
        };
        if admin_token_matches(bearer(req.headers()), configured) {
            Ok(AdminAuth)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(shared_state(req).and_then(|state| AdminAuth::of(req, state)))
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

    const NOW: f64 = 1_700_000_000.0;

    fn at(claims: serde_json::Value, rules: &CoreTokenRules) -> Result<String, AuthError> {
        let t = token(Algorithm::HS256, claims, "s");
        verify_core_token_at(Some(&t), "s", rules, NOW)
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_refused() {
        let rules = CoreTokenRules::default();
        for bad in [
            json!("9999999999"),
            json!(-5),
            json!(0),
            json!(null),
            json!(true),
            json!([1]),
            json!({"t": 1}),
        ] {
            for claim in ["exp", "nbf", "iat"] {
                let claims = json!({"email": "a@b.c", claim: bad.clone()});
                assert_eq!(at(claims, &rules), Err(AuthError::Invalid), "{claim}={bad}");
            }
        }
        // Fractional NumericDates are numbers too.
        let ok = json!({"email": "a@b.c", "exp": NOW + 10.5, "nbf": NOW - 0.5, "iat": NOW});
        assert_eq!(at(ok, &rules), Ok("a@b.c".into()));
    }

    #[test]
    fn exp_and_nbf_are_checked_within_the_leeway() {
        let rules = CoreTokenRules {
            leeway_secs: 10,
            require_exp: false,
        };
        let email = |claims: serde_json::Value| at(claims, &rules);
        assert!(email(json!({"email": "a@b.c", "exp": NOW - 5.0})).is_ok());
        assert_eq!(
            email(json!({"email": "a@b.c", "exp": NOW - 11.0})),
            Err(AuthError::Invalid)
        );
        assert!(email(json!({"email": "a@b.c", "nbf": NOW + 5.0})).is_ok());
        assert_eq!(
            email(json!({"email": "a@b.c", "nbf": NOW + 11.0})),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            email(json!({"email": "a@b.c", "iat": NOW + 3600.0})),
            Err(AuthError::Invalid),
            "issued in the future"
        );
        let strict = CoreTokenRules {
            leeway_secs: 0,
            require_exp: false,
        };
        assert_eq!(
            at(json!({"email": "a@b.c", "exp": NOW - 1.0}), &strict),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn exp_can_be_required() {
        let rules = CoreTokenRules {
            leeway_secs: 60,
            require_exp: true,
        };
        assert_eq!(
            at(json!({"email": "a@b.c"}), &rules),
            Err(AuthError::Invalid)
        );
        assert!(at(json!({"email": "a@b.c", "exp": NOW + 60.0}), &rules).is_ok());
    }
}
