//! `GET /stats` (admin token): the runtime's health at a glance — live
//! sessions, connections by kind, timeouts, reconnects, resurrections,
//! replayed and dropped events, and the app servers whose webhook circuit
//! breaker has seen failures. `GET /stats?user=<email>` adds that user's
//! session: its own figures and each connection its health monitor
//! watches.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sightline_runtime::health::GetHealth;
use sightline_runtime::session::GetSessionHealth;
use sightline_runtime::supervisor::ListSessions;

use crate::admin::require_admin;
use crate::error::ApiError;
use crate::SharedState;

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    user: Option<String>,
}

pub async fn stats(
    req: HttpRequest,
    state: web::Data<SharedState>,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let runtime = &state.runtime;
    let sessions = runtime
        .supervisor
        .send(ListSessions)
        .await
        .unwrap_or_default();
    let mut body = json!({
        "sessions": sessions.len(),
        "health": runtime.shared.figures.snapshot(),
        "webhookBreakers": runtime.shared.breakers.states(Instant::now()),
    });
    if let Some(user) = &query.user {
        let Some((_, session)) = sessions.iter().find(|(u, _)| u == user) else {
            return Err(ApiError::NotFound(format!("session of {user}")));
        };
        let (figures, monitor) = session
            .send(GetSessionHealth)
            .await
            .map_err(|_| ApiError::NotFound(format!("session of {user}")))?;
        let connections = match monitor {
            Some(m) => m.send(GetHealth).await.ok(),
            None => None,
        };
        body["session"] = json!({
            "user": user,
            "figures": figures,
            "monitor": connections,
        });
    }
    Ok(HttpResponse::Ok().json(body))
}
