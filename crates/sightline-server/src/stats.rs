//! `GET /stats` (admin token): the runtime's health at a glance — live
//! sessions, connections by kind, timeouts, reconnects, resurrections,
//! replayed and dropped events, and the app servers whose webhook circuit
//! breaker has seen failures.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use sightline_runtime::supervisor::ListSessions;

use crate::admin::require_admin;
use crate::error::ApiError;
use crate::SharedState;

pub async fn stats(
    req: HttpRequest,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let runtime = &state.runtime;
    let sessions = runtime
        .supervisor
        .send(ListSessions)
        .await
        .map(|s| s.len())
        .unwrap_or(0);
    Ok(HttpResponse::Ok().json(json!({
        "sessions": sessions,
        "health": runtime.health.figures.snapshot(),
        "webhookBreakers": runtime.health.breakers.states(Instant::now()),
    })))
}
