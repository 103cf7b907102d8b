//! The `sightline` command: run the server, register apps offline, and mint
//! development glasses tokens.

mod log_format;
mod log_instance;
mod top;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sightline::server::admin::{app_view, NewApp};
use sightline::server::{open_cluster, open_store, serve_on, ServerConfig, Sightline};
use sightline::store::{EmbeddedStore, MemoryStore, MongoConfig, Store};

#[derive(Parser)]
#[command(
    name = "sightline",
    version,
    about = "Actor-model session runtime for smart glasses (MentraOS cloud protocol)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (configuration from SIGHTLINE_* environment variables).
    Serve {
        /// Address to listen on (overrides SIGHTLINE_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Data directory of the embedded store (overrides SIGHTLINE_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Storage backend: "embedded", "memory", or a MongoDB URI
        /// (mongodb://... or mongodb+srv://...). Default: SIGHTLINE_MONGODB_URI
        /// if set, else embedded.
        #[arg(long)]
        store: Option<String>,
    },
    /// Manage registered apps in the embedded store (server stopped).
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// Print the OpenAPI description of the REST API (docs/openapi.json).
    Openapi,
    /// Show the actor tree of a running server (GET /actors) in the terminal.
    Top {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8002")]
        url: String,
        /// The server's admin token.
        #[arg(long, env = "SIGHTLINE_ADMIN_TOKEN", hide_env_values = true)]
        token: String,
        /// Only this user's session.
        #[arg(long)]
        user: Option<String>,
        /// Only this app's connections.
        #[arg(long)]
        package: Option<String>,
        /// Redraw every this many seconds instead of printing once.
        #[arg(long)]
        watch: Option<u64>,
    },
    /// Print a glasses core token for a user, signed with SIGHTLINE_JWT_SECRET.
    Token {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum AppsCommand {
    /// Register an app.
    Add {
        #[arg(long)]
        package: String,
        #[arg(long)]
        public_url: String,
        #[arg(long)]
        api_key: String,
        #[arg(long)]
        name: Option<String>,
        /// "standard" or "background".
        #[arg(long = "type")]
        app_type: Option<String>,
        /// Comma-separated permissions, e.g. MICROPHONE,LOCATION.
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
        #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "sightline-data")]
        data_dir: PathBuf,
    },
    /// List registered apps.
    List {
        #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "sightline-data")]
        data_dir: PathBuf,
    },
}

/// How long a draining cluster member waits for its sessions to move.
const DRAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("SIGHTLINE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if std::env::var("SIGHTLINE_LOG_FORMAT").as_deref() == Ok("json") {
        let inner = tracing_subscriber::fmt::format().json();
        builder
            .json()
            .event_format(log_instance::WithInstance { inner, json: true })
            .init();
    } else {
        // Field values are escaped so that no value starts a line.
        let inner = tracing_subscriber::fmt::format().with_ansi(ansi);
        builder
            .fmt_fields(log_format::EscapedFields)
            .event_format(log_instance::WithInstance { inner, json: false })
            .init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve {
            bind,
            data_dir,
            store,
        } => serve(bind, data_dir, store.as_deref()),
        Command::Apps { command } => apps(command),
        Command::Token { email } => token(&email),
        Command::Top {
            url,
            token,
            user,
            package,
            watch,
        } => top::run(top::TopOptions {
            url,
            token,
            user,
            package,
            watch: watch.map(|s| std::time::Duration::from_secs(s.max(1))),
        }),
        Command::Openapi => {
            print!("{}", sightline::server::openapi::openapi_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    store: Option<&str>,
) -> Result<(), String> {
    let mut config = ServerConfig::from_env().map_err(|e| e.to_string())?;
    if let Some(b) = bind {
        config.bind = b.parse().map_err(|e| format!("--bind {b:?}: {e}"))?;
        if std::env::var("SIGHTLINE_PUBLIC_WS_URL").is_err() {
            config.runtime.public_ws_url = sightline::server::config::default_public_ws_url_for(
                config.bind,
                config.tls.is_some(),
            );
        }
    }
    if let Some(d) = data_dir {
        config.data_dir = d;
    }
    let in_memory = match store {
        None => false,
        Some("embedded") => {
            config.mongodb = None;
            false
        }
        Some("memory") => true,
        Some(uri) if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") => {
            let mut m = config
                .mongodb
                .take()
                .unwrap_or_else(|| MongoConfig::new(uri));
            m.uri = uri.to_string();
            config.mongodb = Some(m);
            false
        }
        Some(other) => {
            return Err(format!(
                "unknown --store {other:?}: use \"embedded\", \"memory\" or a mongodb:// URI"
            ))
        }
    };
    // Instances of a cluster share their durable state: a new owner
    // restores a user's apps from the store the old one wrote.
    if let Some(cluster) = &config.cluster {
        log_instance::set(&cluster.instance_id);
        if in_memory || config.mongodb.is_none() {
            return Err(format!(
                "cluster mode (SIGHTLINE_NATS_URL {}) needs the MongoDB store every instance shares: set SIGHTLINE_MONGODB_URI",
                cluster.nats_url
            ));
        }
    }
    let backend = match (&config.mongodb, in_memory) {
        (_, true) => "memory".to_string(),
        (Some(m), false) => format!("mongodb {}", m.redacted_uri()),
        (None, false) => format!("embedded {}", config.data_dir.display()),
    };
    // A certificate that cannot be used stops the start before anything runs.
    if let Some(files) = &config.tls {
        files.load().map_err(|e| e.to_string())?;
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(bind = %config.bind, scheme, public_ws_url = %config.runtime.public_ws_url, public_api_url = %config.public_api_url(), store = %backend, "Sightline starting");
    actix_rt::System::new().block_on(async move {
        // The SIGTERM handler is installed before the port listens, so a
        // stop sent as soon as the server answers is never missed.
        #[cfg(unix)]
        let mut terminate =
            actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::terminate())
                .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
        let listener = TcpListener::bind(config.bind)
            .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
        let store: Arc<dyn Store> = if in_memory {
            Arc::new(MemoryStore::new())
        } else {
            open_store(&config)
                .await
                .map_err(|e| format!("cannot open the store ({backend}): {e}"))?
        };
        let bucket = open_cluster(&config)
            .await
            .map_err(|e| format!("cannot join the cluster: {e}"))?;
        let mut builder = Sightline::builder(config).store(store);
        if let Some(bucket) = bucket {
            builder = builder.cluster(bucket);
        }
        let sightline = builder.build().map_err(|e| e.to_string())?;
        // The signing key of signed user tokens exists from the first start.
        let key = sightline
            .user_token_keys()
            .get()
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            kid = %key.kid,
            file = ?sightline.user_token_keys().file(),
            "user token key ready; apps verify signed user tokens with GET /.well-known/sightline-user-token-key.pem"
        );
        sightline
            .join_cluster()
            .await
            .map_err(|e| format!("cannot join the cluster: {e}"))?;
        let cluster = sightline.cluster().cloned();
        let cluster_left = cluster.clone();
        let server = serve_on(listener, sightline).map_err(|e| e.to_string())?;
        let handle = server.handle();
        actix_rt::spawn(async move {
            // Ctrl-C, or SIGTERM (what container runtimes and service
            // managers send): stop accepting, let connections close.
            #[cfg(unix)]
            let terminated = async move {
                terminate.recv().await;
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            let signal = tokio::select! {
                r = actix_rt::signal::ctrl_c() => r.is_ok().then_some("SIGINT"),
                _ = terminated => Some("SIGTERM"),
            };
            if let Some(signal) = signal {
                // A cluster member hands its sessions to the others first:
                // glasses are sent away, reconnect through the load
                // balancer and their new instance asks for the session.
                if let Some(cluster) = &cluster {
                    tracing::info!(signal, "draining: handing every session to the other instances");
                    let left = cluster.drain(DRAIN_WITHIN).await;
                    tracing::info!(left, "drained");
                }
                tracing::info!(signal, "shutting down");
                handle.stop(true).await;
            }
        });
        let served = server.await.map_err(|e| e.to_string());
        // Subscriptions end while the runtime still runs.
        if let Some(c) = &cluster_left {
            c.bus.close();
            actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        served
    })
}

fn apps(command: AppsCommand) -> Result<(), String> {
    let rt = actix_rt::System::new();
    match command {
        AppsCommand::Add {
            package,
            public_url,
            api_key,
            name,
            app_type,
            permissions,
            data_dir,
        } => {
            let (record, _) = NewApp {
                package_name: package,
                name,
                description: String::new(),
                public_url,
                api_key: Some(api_key),
                app_type,
                permissions,
                settings: Vec::new(),
                logo_url: None,
            }
            .into_record()?;
            let store = open_embedded(&data_dir)?;
            rt.block_on(store.upsert_app(record.clone()))
                .map_err(|e| e.to_string())?;
            println!("{}", app_view(&record));
        }
        AppsCommand::List { data_dir } => {
            let store = open_embedded(&data_dir)?;
            for app in rt.block_on(store.list_apps()).map_err(|e| e.to_string())? {
                println!("{}", app_view(&app));
            }
        }
    }
    Ok(())
}

fn open_embedded(data_dir: &std::path::Path) -> Result<EmbeddedStore, String> {
    EmbeddedStore::open(data_dir).map_err(|e| {
        format!("{e} (if the server is running, register apps with POST /api/admin/apps instead)")
    })
}

fn token(email: &str) -> Result<(), String> {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let config = ServerConfig::from_env().map_err(|e| e.to_string())?;
    let claims = serde_json::json!({"email": email, "sub": email, "iat": chrono_now()});
    let t = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(config.jwt_secret.as_bytes()),
    )
    .map_err(|e| format!("could not sign a token: {e}"))?;
    println!("{t}");
    Ok(())
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
