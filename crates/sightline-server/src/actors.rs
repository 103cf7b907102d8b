//! The actor stats endpoint and what the inspector reads (admin token on
//! every route):
//!
//! - `GET /actors[?user=&package=]`: the supervision tree — supervisor →
//!   user sessions → their glasses connection, app connections, health
//!   monitor and transcription streams — with each actor's counters;
//! - `GET /actors/{id}`: one actor;
//! - `GET /sessions/{user}`: one session as its actor describes it (apps,
//!   subscriptions, current display, health);
//! - `GET /actors/live[?user=&package=&session=]`: the same, pushed as
//!   Server-Sent Events every second, for the inspector page;
//! - `GET /metrics`: Prometheus text format.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use sightline_probe::ActorFilter;
use sightline_runtime::session::{DescribeSession, SessionView};
use sightline_runtime::Runtime;

use serde_json::Value;

use crate::actor_views::actors_view;
use crate::admin::require_admin;
use crate::cluster::sessions;
use crate::cluster::wire::SessionCommand;
use crate::error::ApiError;
use crate::SharedState;

/// How often the live stream pushes a fresh picture.
pub const LIVE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Deserialize)]
pub struct ActorQuery {
    user: Option<String>,
    package: Option<String>,
    /// For the live stream: also describe this user's session.
    session: Option<String>,
}

impl ActorQuery {
    fn filter(&self) -> ActorFilter {
        ActorFilter {
            user: self.user.clone().filter(|u| !u.is_empty()),
            package: self.package.clone().filter(|p| !p.is_empty()),
        }
    }
}

async fn describe(runtime: &Runtime, user: &str) -> Option<SessionView> {
    let session = runtime.live_session(user).await?;
    session.send(DescribeSession).await.ok()
}

/// The session of `user` as its owner describes it, on any instance.
async fn describe_anywhere(state: &SharedState, user: &str) -> Result<Option<Value>, ApiError> {
    Ok(sessions::ask(state, user, SessionCommand::Describe).await?)
}

/// `GET /actors`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<SharedState>,
    query: web::Query<ActorQuery>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let filter = query.filter();
    let view = actors_view(&state.runtime, &filter);
    // A user whose actors live on another instance: that instance's view.
    if let (Some(user), 0, Some(_)) = (&filter.user, view.shown, &state.cluster) {
        let asked = SessionCommand::Actors {
            package: filter.package.clone(),
        };
        if let Some(remote) = sessions::ask(&state, user, asked).await? {
            return Ok(HttpResponse::Ok().json(remote));
        }
    }
    let mut view = view;
    view.cluster = roster_of(&state, &filter).await;
    Ok(HttpResponse::Ok().json(view))
}

/// The cluster's instances, for a view not narrowed to one user.
async fn roster_of(state: &SharedState, filter: &ActorFilter) -> Option<Value> {
    let cluster = state.cluster.as_ref().filter(|_| filter.user.is_none())?;
    match crate::cluster::roster::members(&cluster.bus).await {
        Ok(m) => serde_json::to_value(m).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "cluster roster unavailable");
            None
        }
    }
}

/// `GET /actors/{id}`.
pub async fn one(
    req: HttpRequest,
    state: web::Data<SharedState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = id.into_inner();
    let actor = id
        .parse::<u64>()
        .ok()
        .and_then(|n| state.runtime.shared.actors.get(n))
        .ok_or_else(|| ApiError::NotFound(format!("actor {id}")))?;
    Ok(HttpResponse::Ok().json(actor))
}

/// `GET /sessions/{user}`.
pub async fn session(
    req: HttpRequest,
    state: web::Data<SharedState>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let user = user.into_inner();
    let view = describe_anywhere(&state, &user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("session of {user}")))?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /actors/live`: Server-Sent Events, one `data:` line of
/// [`ActorsView`] JSON per [`LIVE_INTERVAL`], until the client goes.
pub async fn live(
    req: HttpRequest,
    state: web::Data<SharedState>,
    query: web::Query<ActorQuery>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let query = query.into_inner();
    let filter = query.filter();
    let session = query.session.filter(|s| !s.is_empty());
    let runtime = state.runtime.clone();
    let shared = state.clone();
    let ticks = futures_util::stream::unfold(true, move |first| {
        let (runtime, filter, session) = (runtime.clone(), filter.clone(), session.clone());
        let shared = shared.clone();
        async move {
            if !first {
                actix_rt::time::sleep(LIVE_INTERVAL).await;
            }
            let mut view = actors_view(&runtime, &filter);
            view.cluster = roster_of(&shared, &filter).await;
            if let Some(user) = &session {
                view.session = describe(&runtime, user).await;
            }
            let json = serde_json::to_string(&view).unwrap_or_else(|_| "{}".into());
            let event = Bytes::from(format!("event: actors\ndata: {json}\n\n"));
            Some((Ok::<_, actix_web::Error>(event), false))
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(ticks))
}

/// `GET /metrics`: Prometheus text exposition format.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .body(state.runtime.shared.render_metrics()))
}
