//! Sightline's HTTP and WebSocket front.
//!
//! `/glasses-ws` and `/app-ws` turn sockets into connection actors that talk
//! to the runtime's user sessions; `/api/admin/*` registers apps (developers),
//! `/api/apps*` and `/appsettings/*` serve users and SDK apps (described in
//! `docs/openapi.json`, see [`openapi`]); `/api/tts` speaks the SDK's
//! `session.audio.speak()` texts ([`tts`]); `/api/sdk/simple-storage/*`
//! keeps each app's per-user key/value map ([`simple_storage`]) and
//! `/api/public/permissions/*` names an app's declared permissions
//! ([`permissions`]); `/health` and `/ready` answer
//! liveness and readiness, `/stats`, `/actors`, `/metrics` and the `/inspect`
//! page show operators what runs (see [`actors`]); `/api/auth/*` signs users
//! in to apps' webviews ([`webview`]). [`serve_on`] terminates TLS itself
//! when given a certificate ([`tls`]). Embed it in any actix-web
//! application:
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{App, HttpServer};
//! use sightline_server::{ServerConfig, Sightline};
//! use sightline_store::MemoryStore;
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let sightline = Sightline::builder(ServerConfig::new("jwt-secret"))
//!         .store(Arc::new(MemoryStore::new()))
//!         .build()
//!         .expect("store");
//!     let routes = sightline.configure();
//!     HttpServer::new(move || App::new().configure(routes.clone()))
//!         .bind(("127.0.0.1", 8002))?
//!         .run()
//!         .await
//! }
//! ```

pub mod actor_views;
pub mod actors;
pub mod admin;
pub mod app_communication;
pub mod app_rate;
pub mod app_settings;
pub mod app_ws;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod deadline;
pub mod error;
pub mod frame_guard;
pub mod frame_header;
mod frames;
#[doc(hidden)]
pub mod fuzzing;
pub mod glasses_ws;
pub mod inspect;
pub mod limits;
pub mod mentraos_settings;
pub mod openapi;
pub mod permissions;
pub mod photo_upload;
pub mod preauth;
pub mod self_checks;
pub mod settings_change;
pub mod simple_storage;
pub mod stats;
pub mod temp_tokens;
pub mod tls;
pub mod token_exchange;
pub mod tts;
pub mod user_apps;
pub mod user_token_key;
pub mod views;
pub mod webview;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{guard, web, App, HttpResponse, HttpServer, Route};
use sightline_runtime::Runtime;
use sightline_store::{EmbeddedStore, MongoStore, Store, StoreError};
use thiserror::Error;

pub use config::{ConfigError, ServerConfig};

/// What every request handler can reach.
pub struct SharedState {
    pub config: ServerConfig,
    pub runtime: Runtime,
    /// Open WebSocket connections, against `config.limits.max_connections`.
    pub slots: Arc<limits::ConnectionSlots>,
    /// App sockets not yet authenticated, against
    /// `config.limits.max_unauthenticated` (and per address).
    pub pre_auth: Arc<preauth::PreAuthBudget>,
    /// Text-to-speech for `GET /api/tts`.
    pub speech: sightline_speech::SpeechService,
    /// The identity provider's keys, as last fetched.
    pub jwks: token_exchange::JwksCache,
    /// Temporary webview tokens waiting to be exchanged.
    pub temp_tokens: temp_tokens::TempTokens,
    /// The signing key of signed user tokens.
    pub user_token_keys: user_token_key::UserTokenKeys,
    /// Each app's simple storage request rate.
    pub storage_rates: app_rate::AppRates,
    /// Paces every connection's own checks.
    pub self_checks: actix::Addr<self_checks::SelfChecks>,
    /// This instance's cluster membership (`None`: single-node).
    pub cluster: Option<cluster::Cluster>,
}

/// Why a [`Sightline`] could not be built.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    UserTokenKey(#[from] user_token_key::KeyError),
    #[error("{0}")]
    Cluster(String),
}

/// Opens the ownership bucket of the configured cluster (`None` when
/// single-node).
pub async fn open_cluster(
    config: &ServerConfig,
) -> Result<Option<sightline_cluster::OwnershipBucket>, sightline_cluster::OwnershipError> {
    match &config.cluster {
        None => Ok(None),
        Some(c) => sightline_cluster::OwnershipBucket::open(&c.nats_url, &c.bucket, c.lease.ttl)
            .await
            .map(Some),
    }
}

/// A running Sightline: its runtime, ready to mount on an actix-web app.
#[derive(Clone)]
pub struct Sightline {
    state: web::Data<SharedState>,
}

/// Opens the store `config` asks for: MongoDB when
/// [`ServerConfig::mongodb`] is set (connecting and creating its indexes),
/// else the embedded store in [`ServerConfig::data_dir`].
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, StoreError> {
    match &config.mongodb {
        Some(m) => Ok(Arc::new(MongoStore::connect(m.clone()).await?)),
        None => Ok(Arc::new(EmbeddedStore::open(&config.data_dir)?)),
    }
}

/// Builds a [`Sightline`] from a config and, optionally, a store.
pub struct SightlineBuilder {
    config: ServerConfig,
    store: Option<Arc<dyn Store>>,
    cluster: Option<sightline_cluster::OwnershipBucket>,
}

impl SightlineBuilder {
    /// Uses this store instead of the embedded one under the data dir.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Takes part in a cluster through this ownership bucket (from
    /// [`open_cluster`]).
    pub fn cluster(mut self, bucket: sightline_cluster::OwnershipBucket) -> Self {
        self.cluster = Some(bucket);
        self
    }

    /// Starts the runtime. Must run inside an actix system. Without a
    /// store it opens the embedded one; a config naming MongoDB needs the
    /// store from [`open_store`]. A user token signing key that is given or
    /// kept but unusable is an error here.
    pub fn build(self) -> Result<Sightline, BuildError> {
        let user_token_keys = user_token_key::UserTokenKeys::open(
            self.config.user_token_private_key.as_deref(),
            &self.config.data_dir,
        )?;
        let store: Arc<dyn Store> = match (self.store, &self.config.mongodb) {
            (Some(s), _) => s,
            (None, None) => Arc::new(EmbeddedStore::open(&self.config.data_dir)?),
            (None, Some(m)) => {
                return Err(BuildError::Store(StoreError::Backend {
                    op: "choose the store",
                    reason: format!(
                        "MongoDB is configured ({}): connect with `open_store(&config).await` \
                         and pass the store to `.store()`",
                        m.redacted_uri()
                    ),
                }))
            }
        };
        let runtime = Runtime::start(self.config.runtime.clone(), store);
        let cluster = match (&self.config.cluster, self.cluster) {
            (None, _) => None,
            (Some(c), Some(bucket)) => {
                let me = sightline_cluster::Owner {
                    instance: c.instance_id.clone(),
                    url: self.config.runtime.public_ws_url.clone(),
                };
                let bus = sightline_cluster::Bus::new(bucket.client(), cluster::REQUEST_TIMEOUT);
                let member = cluster::member::ClusterMember::new(
                    bucket.clone(),
                    bus.clone(),
                    me.clone(),
                    c.lease,
                    runtime.supervisor.clone(),
                    runtime.shared.clone(),
                );
                Some(cluster::Cluster {
                    // Lease renewals on a thread of their own: a busy
                    // instance must not miss them and fence its users.
                    member: <cluster::member::ClusterMember as actix::Actor>::start_in_arbiter(
                        &actix::Arbiter::new().handle(),
                        |_| member,
                    ),
                    bucket,
                    bus,
                    me,
                    draining: Arc::default(),
                })
            }
            (Some(c), None) => return Err(BuildError::Cluster(format!(
                "cluster mode is configured (NATS at {}): open the bucket with `open_cluster(&config).await` and pass it to `.cluster()`",
                c.nats_url
            ))),
        };
        let speech = sightline_speech::SpeechService::from_config(&self.config.speech);
        Ok(Sightline {
            state: web::Data::new(SharedState {
                speech,
                temp_tokens: temp_tokens::TempTokens::new(self.config.webview_tokens),
                user_token_keys,
                storage_rates: app_rate::AppRates::new(
                    self.config.limits.storage_rate,
                    self.config.limits.storage_rate_apps,
                ),
                self_checks: actix::Actor::start(self_checks::SelfChecks::new(
                    self.config.runtime.heartbeat_interval,
                )),
                config: self.config,
                runtime,
                slots: Arc::default(),
                pre_auth: Arc::default(),
                jwks: Default::default(),
                cluster,
            }),
        })
    }
}

impl Sightline {
    pub fn builder(config: ServerConfig) -> SightlineBuilder {
        SightlineBuilder {
            config,
            store: None,
            cluster: None,
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.state.runtime
    }

    /// In cluster mode, starts answering the other instances (hand-overs,
    /// requests for this instance's sessions, app-to-app messaging); call
    /// it before the server listens. Single-node it does nothing.
    pub async fn join_cluster(&self) -> Result<(), cluster::ClusterError> {
        let Some(c) = &self.state.cluster else {
            return Ok(());
        };
        let instance = c.me.instance.clone();
        cluster::member::serve_handovers(c.bus.clone(), &instance, c.member.clone()).await?;
        cluster::sessions::serve(c.bus.clone(), instance.clone(), self.state.runtime.clone())
            .await?;
        cluster::messaging::join(c.bus.clone(), instance.clone(), &self.state.runtime).await?;
        cluster::roster::serve(c.clone(), self.state.runtime.clone()).await?;
        cluster::sessions::serve_app_changes(
            c.bus.clone(),
            instance.clone(),
            self.state.runtime.clone(),
        )
        .await?;
        c.bus.flush().await;
        tracing::info!(instance = %instance, url = %c.me.url, "joined the cluster");
        Ok(())
    }

    /// This instance's part in a cluster (`None`: single-node).
    pub fn cluster(&self) -> Option<&cluster::Cluster> {
        self.state.cluster.as_ref()
    }

    /// The signing key of signed user tokens (generated on first use).
    pub fn user_token_keys(&self) -> &user_token_key::UserTokenKeys {
        &self.state.user_token_keys
    }

    /// A function mounting every Sightline route, for `App::configure`.
    ///
    /// Every REST route but `/health` (which reads no body) reads its
    /// request body under [`deadline::body_deadline`]; the WebSocket routes
    /// are bounded frame by frame instead ([`frame_guard`]).
    pub fn configure(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let state = self.state.clone();
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone())
                .app_data(web::JsonConfig::default().error_handler(error::json_error))
                .route("/glasses-ws", web::get().to(glasses_ws::glasses_ws))
                .route("/app-ws", web::get().to(app_ws::app_ws))
                .route("/health", web::get().to(health))
                .service(timed("/ready", Method::GET, web::get().to(ready)))
                .service(timed("/stats", Method::GET, web::get().to(stats::stats)))
                .service(timed(
                    "/metrics",
                    Method::GET,
                    web::get().to(actors::metrics),
                ))
                .service(timed("/actors", Method::GET, web::get().to(actors::list)))
                .service(timed(
                    "/actors/live",
                    Method::GET,
                    web::get().to(actors::live),
                ))
                .service(timed(
                    "/actors/{id}",
                    Method::GET,
                    web::get().to(actors::one),
                ))
                .service(timed(
                    "/sessions/{user}",
                    Method::GET,
                    web::get().to(actors::session),
                ))
                .service(timed("/inspect", Method::GET, web::get().to(inspect::page)))
                .service(timed(
                    "/openapi.json",
                    Method::GET,
                    web::get().to(openapi::serve),
                ))
                .service(
                    web::scope("/api/admin")
                        .wrap(from_fn(deadline::body_deadline))
                        .route("/apps", web::post().to(admin::create_app))
                        .route("/apps", web::get().to(admin::list_apps))
                        .route("/apps/{package}", web::get().to(admin::get_app))
                        .route("/apps/{package}", web::put().to(admin::update_app))
                        .route("/apps/{package}", web::delete().to(admin::delete_app))
                        .route("/apps/{package}/api-key", web::post().to(admin::rotate_key))
                        .route("/user-token-key", web::post().to(webview::rotate_key)),
                )
                .service(timed(
                    "/.well-known/sightline-user-token-key.pem",
                    Method::GET,
                    web::get().to(webview::public_key),
                ))
                .service(timed(
                    "/api/auth/generate-webview-token",
                    Method::POST,
                    web::post().to(webview::generate_webview_token),
                ))
                .service(timed(
                    "/api/auth/generate-webview-signed-user-token",
                    Method::POST,
                    web::post().to(webview::generate_signed_user_token),
                ))
                .service(timed(
                    "/api/auth/exchange-user-token",
                    Method::POST,
                    web::post().to(webview::exchange_user_token),
                ))
                .service(timed(
                    "/api/auth/hash-with-api-key",
                    Method::POST,
                    web::post().to(webview::hash_with_api_key),
                ))
                .service(timed(
                    "/api/apps",
                    Method::GET,
                    web::get().to(user_apps::list_apps),
                ))
                .service(timed(
                    "/api/apps/installed",
                    Method::GET,
                    web::get().to(user_apps::list_installed),
                ))
                .service(timed(
                    "/api/v1/apps",
                    Method::GET,
                    web::get().to(user_apps::list_apps_v1),
                ))
                .service(timed(
                    "/api/apps/install/{package}",
                    Method::POST,
                    web::post().to(user_apps::install),
                ))
                .service(timed(
                    "/api/apps/uninstall/{package}",
                    Method::POST,
                    web::post().to(user_apps::uninstall),
                ))
                .service(timed("/api/tts", Method::GET, web::get().to(tts::speak)))
                .service(timed(
                    "/augmentos-settings",
                    Method::GET,
                    web::get().to(mentraos_settings::get_settings),
                ))
                .service(timed(
                    "/augmentos-settings",
                    Method::POST,
                    web::post().to(mentraos_settings::post_settings),
                ))
                .service(timed(
                    "/auth/exchange-token",
                    Method::POST,
                    web::post().to(token_exchange::exchange),
                ))
                .service(timed(
                    "/api/auth/exchange-token",
                    Method::POST,
                    web::post().to(token_exchange::exchange),
                ))
                .service(timed(
                    "/api/app-communication/discover-users",
                    Method::POST,
                    web::post().to(app_communication::discover_users),
                ))
                .service(timed(
                    "/api/public/permissions/{package}",
                    Method::GET,
                    web::get().to(permissions::permissions),
                ))
                .service(timed(
                    "/api/sdk/simple-storage/{user}",
                    Method::GET,
                    web::get().to(simple_storage::get_all),
                ))
                .service(timed(
                    "/api/sdk/simple-storage/{user}",
                    Method::PUT,
                    web::put().to(simple_storage::put_many),
                ))
                .service(timed(
                    "/api/sdk/simple-storage/{user}",
                    Method::DELETE,
                    web::delete().to(simple_storage::clear),
                ))
                .service(timed(
                    "/api/sdk/simple-storage/{user}/{key}",
                    Method::GET,
                    web::get().to(simple_storage::get_one),
                ))
                .service(timed(
                    "/api/sdk/simple-storage/{user}/{key}",
                    Method::PUT,
                    web::put().to(simple_storage::put_one),
                ))
                .service(timed(
                    "/api/sdk/simple-storage/{user}/{key}",
                    Method::DELETE,
                    web::delete().to(simple_storage::delete_one),
                ))
                .service(timed(
                    "/api/photos/{user}/{request_id}",
                    Method::POST,
                    web::post().to(photo_upload::upload),
                ))
                .service(timed(
                    "/appsettings/user/{package}",
                    Method::GET,
                    web::get().to(app_settings::sdk_settings),
                ))
                .service(timed(
                    "/tpasettings/user/{package}",
                    Method::GET,
                    web::get().to(app_settings::sdk_settings),
                ))
                .service(timed(
                    "/appsettings/{package}",
                    Method::GET,
                    web::get().to(app_settings::get_settings),
                ))
                .service(timed(
                    "/appsettings/{package}",
                    Method::POST,
                    web::post().to(app_settings::post_settings),
                ));
        }
    }
}

/// One REST route whose request body must arrive in time
/// ([`deadline::body_deadline`]). The method guard sits on the resource, so
/// several resources on one path each answer their own method.
fn timed(path: &str, method: Method, route: Route) -> impl HttpServiceFactory {
    web::resource(path)
        .guard(guard::Method(method))
        .wrap(from_fn(deadline::body_deadline))
        .route(route)
}

/// Liveness, unauthenticated: it says only that the process answers and
/// which store backend it runs on. Session counts are at the admin-only
/// `/stats`.
async fn health(state: web::Data<SharedState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "store": state.runtime.store.backend(),
    }))
}

/// Readiness: the store answers and the supervisor accepts work.
async fn ready(state: web::Data<SharedState>) -> HttpResponse {
    if state.cluster.as_ref().is_some_and(|c| c.is_draining()) {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"ready": false, "draining": true}));
    }
    let store = state.runtime.store.ping().await;
    let supervisor = state.runtime.supervisor.connected();
    match (store, supervisor) {
        (Ok(()), true) => HttpResponse::Ok().json(serde_json::json!({"ready": true})),
        (store, supervisor) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "ready": false,
            "store": store.err().map(|e| e.to_string()),
            "supervisor": supervisor,
        })),
    }
}

/// Runs Sightline on an already-bound listener until the server stops,
/// over TLS when [`ServerConfig::tls`] names a certificate (a file that
/// cannot be read or used is an `InvalidInput` error naming it).
/// Returns the server handle so the caller can stop it.
pub fn serve_on(
    listener: TcpListener,
    sightline: Sightline,
) -> std::io::Result<actix_web::dev::Server> {
    let routes = sightline.configure();
    let config = &sightline.state.config;
    let tls = match &config.tls {
        Some(files) => Some(
            files
                .load()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        ),
        None => None,
    };
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
        // A client must send its request head in time; the body has its
        // own deadline in every route (see `deadline`).
        .client_request_timeout(config.request_head_timeout)
        .client_disconnect_timeout(config.client_disconnect_timeout)
        // Small frames go out at once: without this, a frame written while
        // the previous one is unacknowledged waits for the peer's delayed
        // ACK (up to 40 ms on Linux).
        .tcp_nodelay(true)
        // On a graceful stop, connections still open after this are
        // dropped (WebSocket clients reconnect).
        .shutdown_timeout(10)
        .disable_signals();
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    }
    .run();
    Ok(server)
}

pub(crate) fn now_iso() -> String {
    sightline_protocol::time::iso8601(chrono::Utc::now())
}
