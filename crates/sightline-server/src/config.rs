//! Server configuration, read from the environment (the binary's flags
//! override it). Every knob has a default that works on a laptop; only the
//! JWT secret must be given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sightline_runtime::RuntimeConfig;
use sightline_speech::{ProviderChoice, SpeechConfig};
use sightline_store::MongoConfig;
use sightline_transcription::{AsrConfig, ProviderKind, TranslatorKind};
use thiserror::Error;

use crate::auth::CoreTokenRules;
use crate::limits::{Limits, Rate};
use crate::settings_change::SettingsLimits;
use crate::temp_tokens::TempTokenLimits;
use crate::tls::TlsFiles;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("no JWT secret: set SIGHTLINE_JWT_SECRET (or AUGMENTOS_AUTH_JWT_SECRET) to the HS256 secret the glasses tokens are signed with")]
    MissingJwtSecret,
}

/// Everything the HTTP/WebSocket front needs.
#[derive(Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// HS256 secret of glasses tokens.
    pub jwt_secret: String,
    /// The identity provider whose tokens the phone exchanges for core
    /// tokens (`POST /auth/exchange-token`); `None` disables the exchange.
    pub identity_provider: Option<crate::token_exchange::IdentityProvider>,
    /// Leeway and `exp` policy of glasses tokens.
    pub core_token_rules: CoreTokenRules,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<String>,
    /// Close an app socket that has not sent `tpa_connection_init` by then
    /// (`SIGHTLINE_APP_INIT_TIMEOUT_MS`).
    pub app_init_timeout: Duration,
    /// Time to read a request's head (`SIGHTLINE_REQUEST_HEAD_TIMEOUT_MS`);
    /// applied by [`crate::serve_on`].
    pub request_head_timeout: Duration,
    /// Time to read a request's whole body, from the request's start
    /// (`SIGHTLINE_REQUEST_BODY_TIMEOUT_MS`); see [`crate::deadline`].
    pub request_body_timeout: Duration,
    /// Time a closing connection gets to shut down
    /// (`SIGHTLINE_CLIENT_DISCONNECT_TIMEOUT_MS`); applied by
    /// [`crate::serve_on`].
    pub client_disconnect_timeout: Duration,
    /// Message sizes, connections, rates and send backlogs.
    pub limits: Limits,
    /// Bounds on the app settings a user stores.
    pub settings_limits: SettingsLimits,
    /// MongoDB connection; `None` runs on the embedded store in `data_dir`.
    pub mongodb: Option<MongoConfig>,
    pub runtime: RuntimeConfig,
    /// Text-to-speech behind `GET /api/tts` (`SIGHTLINE_TTS_*`).
    pub speech: SpeechConfig,
    /// Certificate and key to terminate TLS with (`SIGHTLINE_TLS_CERT`,
    /// `SIGHTLINE_TLS_KEY`); `None` serves plain HTTP. Applied by
    /// [`crate::serve_on`].
    pub tls: Option<TlsFiles>,
    /// The URL apps call Sightline's REST API at, put in webview URLs as
    /// `cloudApiUrl` (`SIGHTLINE_PUBLIC_API_URL`); `None` derives it from
    /// the public WebSocket URL (see [`ServerConfig::public_api_url`]).
    pub public_api_url: Option<String>,
    /// The signing key of signed user tokens, as PEM text or a file path
    /// (`SIGHTLINE_USER_TOKEN_PRIVATE_KEY`); `None` keeps one in `data_dir`
    /// (see [`crate::user_token_key`]).
    pub user_token_private_key: Option<String>,
    /// Lifetime and bounds of temporary webview tokens
    /// (`SIGHTLINE_WEBVIEW_*`).
    pub webview_tokens: TempTokenLimits,
    /// Cluster mode (`SIGHTLINE_NATS_URL`); `None` runs single-node.
    pub cluster: Option<ClusterConfig>,
}

/// How this instance takes part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS, with JetStream (`SIGHTLINE_NATS_URL`).
    pub nats_url: String,
    /// This instance's id (`SIGHTLINE_INSTANCE_ID`; default
    /// `sightline-<port>`).
    pub instance_id: String,
    /// The ownership bucket (`SIGHTLINE_OWNERSHIP_BUCKET`).
    pub bucket: String,
    /// Lease timings (`SIGHTLINE_LEASE_TTL_MS`: renewals every third of
    /// it, fenced a quarter of it before it can expire).
    pub lease: sightline_cluster::LeaseConfig,
}

impl std::fmt::Debug for ServerConfig {
    // Secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &"<redacted>")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("core_token_rules", &self.core_token_rules)
            .field("app_init_timeout", &self.app_init_timeout)
            .field("request_head_timeout", &self.request_head_timeout)
            .field("request_body_timeout", &self.request_body_timeout)
            .field("client_disconnect_timeout", &self.client_disconnect_timeout)
            .field("limits", &self.limits)
            .field("settings_limits", &self.settings_limits)
            .field("mongodb", &self.mongodb)
            .field("cluster", &self.cluster)
            .field("runtime", &self.runtime)
            .field("speech", &self.speech)
            .field("tls", &self.tls)
            .field("public_api_url", &self.public_api_url)
            .field(
                "user_token_private_key",
                &self.user_token_private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("webview_tokens", &self.webview_tokens)
            .finish()
    }
}

impl ServerConfig {
    /// A configuration with defaults, for embedding and tests.
    pub fn new(jwt_secret: impl Into<String>) -> Self {
        let bind: SocketAddr = ([0, 0, 0, 0], 8002).into();
        ServerConfig {
            bind,
            data_dir: PathBuf::from("sightline-data"),
            jwt_secret: jwt_secret.into(),
            identity_provider: None,
            core_token_rules: CoreTokenRules::default(),
            admin_token: None,
            app_init_timeout: Duration::from_secs(5),
            request_head_timeout: Duration::from_secs(5),
            request_body_timeout: Duration::from_secs(10),
            client_disconnect_timeout: Duration::from_secs(1),
            limits: Limits::default(),
            settings_limits: SettingsLimits::default(),
            mongodb: None,
            runtime: RuntimeConfig {
                public_ws_url: default_public_ws_url(bind),
                ..RuntimeConfig::default()
            },
            speech: SpeechConfig::default(),
            tls: None,
            public_api_url: None,
            user_token_private_key: None,
            webview_tokens: TempTokenLimits::default(),
            cluster: None,
        }
    }

    /// Sightline's public REST API URL: [`ServerConfig::public_api_url`]
    /// when set, else the public WebSocket URL with `ws` made `http`, `wss`
    /// made `https` and `/app-ws` dropped (`wss://h:8443/app-ws` gives
    /// `https://h:8443`).
    pub fn public_api_url(&self) -> String {
        match &self.public_api_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => api_url_of_ws_url(&self.runtime.public_ws_url),
        }
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in
    /// tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = get("SIGHTLINE_JWT_SECRET")
            .or_else(|| get("AUGMENTOS_AUTH_JWT_SECRET"))
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::MissingJwtSecret)?;
        let mut c = ServerConfig::new(secret);
        if let Some(b) = get("SIGHTLINE_BIND") {
            c.bind = b.parse().map_err(|e| ConfigError::Invalid {
                name: "SIGHTLINE_BIND",
                reason: format!("{b:?}: {e}"),
            })?;
        }
        c.tls = read_tls(&get)?;
        c.cluster = read_cluster(&get, c.bind.port())?;
        c.runtime.instance_id = c.cluster.as_ref().map(|k| k.instance_id.clone());
        let tls = c.tls.is_some();
        c.runtime.public_ws_url = get("SIGHTLINE_PUBLIC_WS_URL")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| default_public_ws_url_for(c.bind, tls));
        if let Some(u) = get("SIGHTLINE_PUBLIC_API_URL").filter(|u| !u.is_empty()) {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    name: "SIGHTLINE_PUBLIC_API_URL",
                    reason: format!("{u:?}: expected an http:// or https:// URL"),
                });
            }
            c.public_api_url = Some(u);
        }
        c.user_token_private_key =
            get("SIGHTLINE_USER_TOKEN_PRIVATE_KEY").filter(|k| !k.is_empty());
        if let Some(d) = get("SIGHTLINE_DATA_DIR") {
            c.data_dir = PathBuf::from(d);
        }
        c.admin_token = get("SIGHTLINE_ADMIN_TOKEN").filter(|t| !t.is_empty());
        let idp_keys =
            match (
                get("SIGHTLINE_IDP_JWT_SECRET").filter(|s| !s.is_empty()),
                get("SIGHTLINE_IDP_JWKS_URL").filter(|s| !s.is_empty()),
            ) {
                (Some(_), Some(_)) => return Err(ConfigError::Invalid {
                    name: "SIGHTLINE_IDP_JWKS_URL",
                    reason:
                        "set either SIGHTLINE_IDP_JWT_SECRET or SIGHTLINE_IDP_JWKS_URL, not both"
                            .into(),
                }),
                (Some(secret), None) => Some(crate::token_exchange::IdpKeys::Secret(secret)),
                (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
                    Some(crate::token_exchange::IdpKeys::Jwks(url))
                }
                (None, Some(url)) => {
                    return Err(ConfigError::Invalid {
                        name: "SIGHTLINE_IDP_JWKS_URL",
                        reason: format!("{url:?} is not an http(s) URL"),
                    })
                }
                (None, None) => None,
            };
        c.identity_provider = idp_keys.map(|keys| crate::token_exchange::IdentityProvider {
            keys,
            issuer: get("SIGHTLINE_IDP_ISSUER").filter(|s| !s.is_empty()),
            audience: get("SIGHTLINE_IDP_AUDIENCE").filter(|s| !s.is_empty()),
        });
        if let Some(p) = get("SIGHTLINE_ASR_PROVIDER") {
            let kind = ProviderKind::parse(&p).ok_or_else(|| ConfigError::Invalid {
                name: "SIGHTLINE_ASR_PROVIDER",
                reason: format!("{p:?}: expected soniox, deepgram, vosk or none"),
            })?;
            c.runtime.asr = AsrConfig::new(
                kind,
                get("SIGHTLINE_ASR_URL").filter(|u| !u.is_empty()),
                get("SIGHTLINE_ASR_API_KEY").filter(|k| !k.is_empty()),
            );
        }
        if let Some(p) = get("SYSTEM_DASHBOARD_PACKAGE_NAME").filter(|p| !p.is_empty()) {
            c.runtime.dashboard_package = p;
        }
        let ms = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|e| ConfigError::Invalid {
                            name,
                            reason: format!("{v:?}: {e}"),
                        })
                })
                .transpose()
        };
        if let Some(d) = ms("HEARTBEAT_INTERVAL_MS")? {
            c.runtime.heartbeat_interval = d;
        }
        if let Some(d) = ms("CONNECTION_TIMEOUT_MS")? {
            c.runtime.connection_timeout = d;
        }
        if let Some(d) = ms("STATS_INTERVAL_MS")? {
            c.runtime.stats_interval = d;
        }
        if let Some(d) = ms("SIGHTLINE_APP_START_TIMEOUT_MS")? {
            c.runtime.app_start_timeout = d;
        }
        if let Some(d) = ms("SIGHTLINE_GLASSES_GRACE_MS")? {
            c.runtime.glasses_grace = d;
        }
        if let Some(d) = ms("SIGHTLINE_APP_GRACE_MS")? {
            c.runtime.app_reconnect_grace = d;
        }
        if let Some(d) = ms("SIGHTLINE_MIC_SETTLE_MS")? {
            c.runtime.mic_settle = d;
        }
        if let Some(d) = ms("SIGHTLINE_MIC_OFF_DELAY_MS")? {
            c.runtime.mic_off_delay = d;
        }
        if let Some(n) = count(&get, "SIGHTLINE_MAX_SUBSCRIPTIONS_PER_APP")? {
            c.runtime.max_subscriptions_per_app = n as usize;
        }
        // Device request deadlines: each must stay under the SDK's own
        // timer for that call, so the app hears Sightline's reason.
        let d = &mut c.runtime.devices;
        let deadlines: [(&'static str, &mut Duration, Option<u64>); 6] = [
            (
                "SIGHTLINE_PHOTO_DEADLINE_MS",
                &mut d.photo_deadline,
                Some(30_000),
            ),
            (
                "SIGHTLINE_AUDIO_DEADLINE_MS",
                &mut d.audio_deadline,
                Some(60_000),
            ),
            (
                "SIGHTLINE_LOCATION_DEADLINE_MS",
                &mut d.location_deadline,
                Some(15_000),
            ),
            ("SIGHTLINE_LED_DEADLINE_MS", &mut d.led_deadline, None),
            (
                "SIGHTLINE_STREAM_KEEPALIVE_MS",
                &mut d.keepalive_interval,
                None,
            ),
            (
                "SIGHTLINE_STREAM_ACK_DEADLINE_MS",
                &mut d.ack_deadline,
                None,
            ),
        ];
        for (name, field, sdk_ms) in deadlines {
            if let Some(v) = ms(name)? {
                if let Some(sdk) = sdk_ms.filter(|sdk| v.as_millis() as u64 >= *sdk) {
                    return Err(ConfigError::Invalid {
                        name,
                        reason: format!(
                            "{} ms must be under the SDK's own timeout of {sdk} ms",
                            v.as_millis()
                        ),
                    });
                }
                *field = v;
            }
        }
        let timeouts: [(&'static str, &mut Duration); 4] = [
            ("SIGHTLINE_APP_INIT_TIMEOUT_MS", &mut c.app_init_timeout),
            (
                "SIGHTLINE_REQUEST_HEAD_TIMEOUT_MS",
                &mut c.request_head_timeout,
            ),
            (
                "SIGHTLINE_REQUEST_BODY_TIMEOUT_MS",
                &mut c.request_body_timeout,
            ),
            (
                "SIGHTLINE_CLIENT_DISCONNECT_TIMEOUT_MS",
                &mut c.client_disconnect_timeout,
            ),
        ];
        for (name, field) in timeouts {
            if let Some(d) = ms(name)? {
                *field = d;
            }
        }
        let l = &mut c.limits;
        let sizes: [(&'static str, &mut usize); 14] = [
            ("SIGHTLINE_PHOTO_MAX_BYTES", &mut l.photo_upload_bytes),
            ("SIGHTLINE_STORAGE_MAX_BYTES", &mut l.storage_bytes),
            ("SIGHTLINE_STORAGE_MAX_KEY_BYTES", &mut l.storage_key_bytes),
            ("SIGHTLINE_STORAGE_RATE_MAX_APPS", &mut l.storage_rate_apps),
            (
                "SIGHTLINE_GLASSES_MAX_TEXT_BYTES",
                &mut l.glasses_text_bytes,
            ),
            (
                "SIGHTLINE_GLASSES_MAX_BINARY_BYTES",
                &mut l.glasses_binary_bytes,
            ),
            ("SIGHTLINE_APP_MAX_TEXT_BYTES", &mut l.app_text_bytes),
            ("SIGHTLINE_MAX_CONNECTIONS", &mut l.max_connections),
            (
                "SIGHTLINE_MAX_SEND_BACKLOG_BYTES",
                &mut l.send_backlog_bytes,
            ),
            ("SIGHTLINE_MAX_FRAGMENTS_PER_MESSAGE", &mut l.max_fragments),
            (
                "SIGHTLINE_APP_MAX_INBOUND_BACKLOG_BYTES",
                &mut l.app_inbound_backlog_bytes,
            ),
            (
                "SIGHTLINE_GLASSES_MAX_INBOUND_BACKLOG_BYTES",
                &mut l.glasses_inbound_backlog_bytes,
            ),
            ("SIGHTLINE_MAX_UNAUTHENTICATED", &mut l.max_unauthenticated),
            (
                "SIGHTLINE_MAX_UNAUTHENTICATED_PER_ADDRESS",
                &mut l.max_unauthenticated_per_address,
            ),
        ];
        for (name, field) in sizes {
            if let Some(n) = count(&get, name)? {
                *field = n as usize;
            }
        }
        let rates: [(&'static str, &'static str, &mut Rate); 3] = [
            (
                "SIGHTLINE_STORAGE_RATE_PER_SECOND",
                "SIGHTLINE_STORAGE_RATE_BURST",
                &mut l.storage_rate,
            ),
            (
                "SIGHTLINE_GLASSES_MESSAGES_PER_SECOND",
                "SIGHTLINE_GLASSES_MESSAGES_BURST",
                &mut l.glasses_rate,
            ),
            (
                "SIGHTLINE_APP_MESSAGES_PER_SECOND",
                "SIGHTLINE_APP_MESSAGES_BURST",
                &mut l.app_rate,
            ),
        ];
        for (per_second, burst, rate) in rates {
            if let Some(n) = count(&get, per_second)? {
                rate.per_second = n;
            }
            if let Some(n) = count(&get, burst)? {
                rate.burst = n;
            }
        }
        read_token_rules(&get, &mut c.core_token_rules)?;
        if let Some(d) = ms("SIGHTLINE_WEBVIEW_TOKEN_TTL_MS")? {
            c.webview_tokens.ttl = d;
        }
        if let Some(n) = count(&get, "SIGHTLINE_WEBVIEW_MAX_PENDING_TOKENS")? {
            c.webview_tokens.max_pending = n as usize;
        }
        if let Some(n) = count(&get, "SIGHTLINE_WEBVIEW_MAX_TOKENS_PER_USER")? {
            c.webview_tokens.max_per_user = (n as usize).max(1);
        }
        read_settings_limits(&get, &mut c.settings_limits)?;
        // Text translation (translation pairs the speech provider cannot serve).
        if let Some(p) = get("SIGHTLINE_TRANSLATE_PROVIDER") {
            let kind = TranslatorKind::parse(&p).ok_or_else(|| ConfigError::Invalid {
                name: "SIGHTLINE_TRANSLATE_PROVIDER",
                reason: format!("{p:?}: expected libretranslate, deepl or none"),
            })?;
            let t = &mut c.runtime.asr.translate;
            t.provider = kind;
            t.url = get("SIGHTLINE_TRANSLATE_URL").filter(|u| !u.is_empty());
            t.api_key = get("SIGHTLINE_TRANSLATE_API_KEY").filter(|k| !k.is_empty());
        }
        if let Some(d) = ms("SIGHTLINE_TRANSLATE_TIMEOUT_MS")? {
            c.runtime.asr.translate.limits.timeout = d;
        }
        if let Some(n) = count(&get, "SIGHTLINE_TRANSLATE_MAX_CHARS")? {
            c.runtime.asr.translate.limits.max_chars = (n as usize).max(1);
        }
        if let Some(n) = count(&get, "SIGHTLINE_TRANSLATE_MAX_PENDING")? {
            c.runtime.asr.translate.relay.max_pending = (n as usize).max(1);
        }
        if let Some(v) = get("SIGHTLINE_TRANSLATE_INTERIM").filter(|v| !v.is_empty()) {
            c.runtime.asr.translate.relay.interim = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "SIGHTLINE_TRANSLATE_INTERIM",
                        reason: format!("{v:?}: expected true or false"),
                    })
                }
            };
        }
        read_speech(&get, &mut c.speech)?;
        if let Some(uri) = get("SIGHTLINE_MONGODB_URI").filter(|u| !u.is_empty()) {
            let mut m = MongoConfig::new(uri);
            m.database = get("SIGHTLINE_MONGODB_DATABASE").filter(|d| !d.is_empty());
            if let Some(n) = count(&get, "SIGHTLINE_MONGODB_MAX_POOL_SIZE")? {
                m.max_pool_size = n;
            }
            if let Some(n) = count(&get, "SIGHTLINE_MONGODB_MIN_POOL_SIZE")? {
                m.min_pool_size = n;
            }
            if let Some(d) = ms("SIGHTLINE_MONGODB_CONNECT_TIMEOUT_MS")? {
                m.connect_timeout = d;
            }
            if let Some(d) = ms("SIGHTLINE_STORE_TIMEOUT_MS")? {
                m.operation_timeout = d;
            }
            c.mongodb = Some(m);
        }
        Ok(c)
    }
}

fn count(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<u32>, ConfigError> {
    get(name)
        .map(|v| {
            v.parse::<u32>().map_err(|e| ConfigError::Invalid {
                name,
                reason: format!("{v:?}: {e}"),
            })
        })
        .transpose()
}

/// `SIGHTLINE_TLS_CERT` and `SIGHTLINE_TLS_KEY`: both or neither.
fn read_tls(get: &impl Fn(&str) -> Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = get("SIGHTLINE_TLS_CERT").filter(|v| !v.is_empty());
    let key = get("SIGHTLINE_TLS_KEY").filter(|v| !v.is_empty());
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })),
        (Some(_), None) => Err(ConfigError::Invalid {
            name: "SIGHTLINE_TLS_KEY",
            reason: "SIGHTLINE_TLS_CERT is set: give the certificate's private key too".into(),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            name: "SIGHTLINE_TLS_CERT",
            reason: "SIGHTLINE_TLS_KEY is set: give the certificate too".into(),
        }),
    }
}

/// `SIGHTLINE_JWT_LEEWAY_SECS` and `SIGHTLINE_JWT_REQUIRE_EXP`.
fn read_token_rules(
    get: &impl Fn(&str) -> Option<String>,
    rules: &mut CoreTokenRules,
) -> Result<(), ConfigError> {
    if let Some(n) = count(get, "SIGHTLINE_JWT_LEEWAY_SECS")? {
        rules.leeway_secs = u64::from(n);
    }
    if let Some(v) = get("SIGHTLINE_JWT_REQUIRE_EXP") {
        rules.require_exp = match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "SIGHTLINE_JWT_REQUIRE_EXP",
                    reason: format!("{v:?}: expected true or false"),
                })
            }
        };
    }
    Ok(())
}

/// The `SIGHTLINE_SETTINGS_MAX_*` bounds on stored app settings.
fn read_settings_limits(
    get: &impl Fn(&str) -> Option<String>,
    limits: &mut SettingsLimits,
) -> Result<(), ConfigError> {
    let fields: [(&'static str, &mut usize); 4] = [
        (
            "SIGHTLINE_SETTINGS_MAX_VALUE_BYTES",
            &mut limits.value_bytes,
        ),
        (
            "SIGHTLINE_SETTINGS_MAX_KEYS_PER_APP",
            &mut limits.keys_per_app,
        ),
        ("SIGHTLINE_SETTINGS_MAX_APP_BYTES", &mut limits.app_bytes),
        ("SIGHTLINE_SETTINGS_MAX_USER_BYTES", &mut limits.user_bytes),
    ];
    for (name, field) in fields {
        if let Some(n) = count(get, name)? {
            *field = n as usize;
        }
    }
    Ok(())
}

/// The `SIGHTLINE_TTS_*` settings of text-to-speech. The ElevenLabs key may
/// also be given as `ELEVENLABS_API_KEY`, the MentraOS cloud's name.
fn read_speech(
    get: &impl Fn(&str) -> Option<String>,
    speech: &mut SpeechConfig,
) -> Result<(), ConfigError> {
    if let Some(p) = get("SIGHTLINE_TTS_PROVIDER").filter(|p| !p.is_empty()) {
        speech.provider = ProviderChoice::parse(&p).ok_or_else(|| ConfigError::Invalid {
            name: "SIGHTLINE_TTS_PROVIDER",
            reason: format!("{p:?}: expected espeak, elevenlabs or off"),
        })?;
    }
    let e = &mut speech.elevenlabs;
    if let Some(k) = get("SIGHTLINE_TTS_ELEVENLABS_API_KEY")
        .or_else(|| get("ELEVENLABS_API_KEY"))
        .filter(|k| !k.is_empty())
    {
        e.api_key = k;
    }
    if let Some(u) = get("SIGHTLINE_TTS_ELEVENLABS_URL").filter(|u| !u.is_empty()) {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "SIGHTLINE_TTS_ELEVENLABS_URL",
                reason: format!("{u:?}: expected an http:// or https:// URL"),
            });
        }
        e.base_url = u;
    }
    if let Some(v) = get("SIGHTLINE_TTS_ESPEAK_VOICE").filter(|v| !v.is_empty()) {
        let fine = v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/'));
        if !fine {
            return Err(ConfigError::Invalid {
                name: "SIGHTLINE_TTS_ESPEAK_VOICE",
                reason: format!("{v:?}: expected an espeak-ng voice name such as en-us"),
            });
        }
        speech.espeak.voice = v;
    }
    if let Some(n) = count(get, "SIGHTLINE_TTS_TIMEOUT_MS")? {
        let d = Duration::from_millis(u64::from(n.max(1)));
        speech.espeak.timeout = d;
        speech.elevenlabs.timeout = d;
    }
    if let Some(n) = count(get, "SIGHTLINE_TTS_MAX_AUDIO_BYTES")? {
        let n = (n as usize).max(1);
        speech.espeak.max_audio_bytes = n;
        speech.elevenlabs.max_audio_bytes = n;
    }
    if let Some(n) = count(get, "SIGHTLINE_TTS_MAX_TEXT_CHARS")? {
        speech.limits.max_text_chars = (n as usize).max(1);
    }
    if let Some(n) = count(get, "SIGHTLINE_TTS_MAX_CONCURRENT")? {
        speech.max_concurrent = (n as usize).max(1);
    }
    if let Some(n) = count(get, "SIGHTLINE_TTS_CACHE_ENTRIES")? {
        speech.cache.max_entries = n as usize;
    }
    if let Some(n) = count(get, "SIGHTLINE_TTS_CACHE_BYTES")? {
        speech.cache.max_bytes = n as usize;
    }
    Ok(())
}

/// `ws://<host>:<port>/app-ws` for a bind address; an unspecified address
/// (0.0.0.0) becomes 127.0.0.1, which app servers on the same host reach.
pub fn default_public_ws_url(bind: SocketAddr) -> String {
    default_public_ws_url_for(bind, false)
}

/// [`default_public_ws_url`], as `wss://` when Sightline terminates TLS.
pub fn default_public_ws_url_for(bind: SocketAddr, tls: bool) -> String {
    let host = if bind.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        SocketAddr::new(bind.ip(), 0)
            .to_string()
            .trim_end_matches(":0")
            .to_string()
    };
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://{host}:{}/app-ws", bind.port())
}

/// The REST API URL the SDK derives from a WebSocket URL.
pub fn api_url_of_ws_url(ws_url: &str) -> String {
    let (scheme, rest) = if let Some(r) = ws_url.strip_prefix("wss://") {
        ("https://", r)
    } else if let Some(r) = ws_url.strip_prefix("ws://") {
        ("http://", r)
    } else {
        ("", ws_url)
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix("/app-ws").unwrap_or(rest);
    format!("{scheme}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn secret_is_required_and_legacy_name_accepted() {
        assert!(matches!(
            ServerConfig::from_lookup(lookup(&[])),
            Err(ConfigError::MissingJwtSecret)
        ));
        let c = ServerConfig::from_lookup(lookup(&[("AUGMENTOS_AUTH_JWT_SECRET", "s")])).unwrap();
        assert_eq!(c.jwt_secret, "s");
    }

    #[test]
    fn public_url_follows_bind() {
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_BIND", "127.0.0.1:9000"),
        ]))
        .unwrap();
        assert_eq!(c.runtime.public_ws_url, "ws://127.0.0.1:9000/app-ws");
        assert!(!format!("{c:?}").contains("\"s\""));
    }

    #[test]
    fn tls_makes_the_default_urls_secure() {
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_BIND", "127.0.0.1:8443"),
            ("SIGHTLINE_TLS_CERT", "/etc/sightline/cert.pem"),
            ("SIGHTLINE_TLS_KEY", "/etc/sightline/key.pem"),
            (
                "SIGHTLINE_USER_TOKEN_PRIVATE_KEY",
                "-----BEGIN PRIVATE KEY-----",
            ),
        ]))
        .unwrap();
        assert_eq!(c.runtime.public_ws_url, "wss://127.0.0.1:8443/app-ws");
        assert_eq!(c.public_api_url(), "https://127.0.0.1:8443");
        assert_eq!(
            c.tls.as_ref().map(|t| t.key.clone()),
            Some(PathBuf::from("/etc/sightline/key.pem"))
        );
        assert!(!format!("{c:?}").contains("BEGIN PRIVATE"));
        let plain = ServerConfig::from_lookup(lookup(&[("SIGHTLINE_JWT_SECRET", "s")])).unwrap();
        assert_eq!(plain.public_api_url(), "http://127.0.0.1:8002");
        let given = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_PUBLIC_WS_URL", "wss://glass.example/app-ws"),
            ("SIGHTLINE_PUBLIC_API_URL", "https://api.glass.example/"),
            ("SIGHTLINE_WEBVIEW_TOKEN_TTL_MS", "5000"),
            ("SIGHTLINE_WEBVIEW_MAX_PENDING_TOKENS", "7"),
            ("SIGHTLINE_WEBVIEW_MAX_TOKENS_PER_USER", "2"),
        ]))
        .unwrap();
        assert_eq!(given.public_api_url(), "https://api.glass.example");
        assert_eq!(given.webview_tokens.ttl, Duration::from_secs(5));
        assert_eq!(
            (
                given.webview_tokens.max_pending,
                given.webview_tokens.max_per_user
            ),
            (7, 2)
        );
        assert_eq!(
            api_url_of_ws_url("wss://glass.example/app-ws"),
            "https://glass.example"
        );
        for (name, pairs) in [
            ("SIGHTLINE_TLS_KEY", [("SIGHTLINE_TLS_CERT", "c.pem")]),
            ("SIGHTLINE_TLS_CERT", [("SIGHTLINE_TLS_KEY", "k.pem")]),
            (
                "SIGHTLINE_PUBLIC_API_URL",
                [("SIGHTLINE_PUBLIC_API_URL", "ftp://x")],
            ),
        ] {
            let mut all = vec![("SIGHTLINE_JWT_SECRET", "s")];
            all.extend(pairs);
            let e = ServerConfig::from_lookup(lookup(&all)).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn connection_limits_and_timeouts_are_read() {
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_APP_INIT_TIMEOUT_MS", "1500"),
            ("SIGHTLINE_REQUEST_HEAD_TIMEOUT_MS", "2000"),
            ("SIGHTLINE_REQUEST_BODY_TIMEOUT_MS", "3000"),
            ("SIGHTLINE_CLIENT_DISCONNECT_TIMEOUT_MS", "400"),
            ("SIGHTLINE_MAX_FRAGMENTS_PER_MESSAGE", "16"),
            ("SIGHTLINE_APP_MAX_INBOUND_BACKLOG_BYTES", "1000"),
            ("SIGHTLINE_GLASSES_MAX_INBOUND_BACKLOG_BYTES", "2000"),
            ("SIGHTLINE_MAX_UNAUTHENTICATED", "50"),
            ("SIGHTLINE_MAX_UNAUTHENTICATED_PER_ADDRESS", "5"),
        ]))
        .unwrap();
        assert_eq!(c.app_init_timeout, Duration::from_millis(1500));
        assert_eq!(c.request_head_timeout, Duration::from_secs(2));
        assert_eq!(c.request_body_timeout, Duration::from_secs(3));
        assert_eq!(c.client_disconnect_timeout, Duration::from_millis(400));
        let l = &c.limits;
        assert_eq!(l.max_fragments, 16);
        assert_eq!(l.app_inbound_backlog_bytes, 1000);
        assert_eq!(l.glasses_inbound_backlog_bytes, 2000);
        assert_eq!(l.max_unauthenticated, 50);
        assert_eq!(l.max_unauthenticated_per_address, 5);
        let d = ServerConfig::new("s");
        assert_eq!(d.request_body_timeout, Duration::from_secs(10));
        assert_eq!(d.limits.max_unauthenticated_per_address, 32);
    }

    #[test]
    fn bad_numbers_are_named() {
        let e = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("HEARTBEAT_INTERVAL_MS", "soon"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("HEARTBEAT_INTERVAL_MS"));
    }

    #[test]
    fn speech_provider_url_and_key_are_read() {
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_ASR_PROVIDER", "Deepgram"),
            ("SIGHTLINE_ASR_URL", "wss://asr.example.com/v1/listen"),
            ("SIGHTLINE_ASR_API_KEY", "dg-key"),
        ]))
        .unwrap();
        assert_eq!(c.runtime.asr.provider, ProviderKind::Deepgram);
        assert_eq!(
            c.runtime.asr.url.as_deref(),
            Some("wss://asr.example.com/v1/listen")
        );
        assert_eq!(c.runtime.asr.api_key.as_deref(), Some("dg-key"));
        let provider = c.runtime.asr.build_provider().expect("a provider");
        assert_eq!(provider.name(), "deepgram");
        assert_eq!(provider.headers()[0].1, "Token dg-key");
        assert!(
            !format!("{c:?}").contains("dg-key"),
            "the key is not printed"
        );

        // A provider without a URL uses its default endpoint; empty values
        // count as unset.
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_ASR_PROVIDER", "vosk"),
            ("SIGHTLINE_ASR_URL", ""),
            ("SIGHTLINE_ASR_API_KEY", ""),
        ]))
        .unwrap();
        assert_eq!(c.runtime.asr.provider, ProviderKind::Vosk);
        assert_eq!(
            (
                c.runtime.asr.url.as_deref(),
                c.runtime.asr.api_key.as_deref()
            ),
            (None, None)
        );
        let spec = sightline_transcription::StreamSpec::transcription("en-US");
        assert_eq!(
            c.runtime.asr.build_provider().expect("vosk").url(&spec),
            sightline_transcription::config::DEFAULT_VOSK_URL
        );

        // Without SIGHTLINE_ASR_PROVIDER, transcription is off.
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_ASR_URL", "ws://127.0.0.1:2700"),
        ]))
        .unwrap();
        assert_eq!(c.runtime.asr.provider, ProviderKind::None);
        assert!(c.runtime.asr.build_provider().is_none());
    }

    #[test]
    fn the_text_translator_is_read() {
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_ASR_PROVIDER", "vosk"),
            ("SIGHTLINE_TRANSLATE_PROVIDER", "DeepL"),
            ("SIGHTLINE_TRANSLATE_URL", "https://deepl.example.com"),
            ("SIGHTLINE_TRANSLATE_API_KEY", "dl-key"),
            ("SIGHTLINE_TRANSLATE_TIMEOUT_MS", "1500"),
            ("SIGHTLINE_TRANSLATE_MAX_CHARS", "300"),
            ("SIGHTLINE_TRANSLATE_MAX_PENDING", "4"),
            ("SIGHTLINE_TRANSLATE_INTERIM", "false"),
        ]))
        .unwrap();
        let t = &c.runtime.asr.translate;
        assert_eq!(t.provider, TranslatorKind::DeepL);
        assert_eq!(t.url.as_deref(), Some("https://deepl.example.com"));
        assert_eq!(t.api_key.as_deref(), Some("dl-key"));
        assert_eq!(t.limits.timeout, Duration::from_millis(1500));
        assert_eq!(t.limits.max_chars, 300);
        assert_eq!(t.relay.max_pending, 4);
        assert!(!t.relay.interim);
        assert!(!format!("{c:?}").contains("dl-key"));
        let c = ServerConfig::from_lookup(lookup(&[("SIGHTLINE_JWT_SECRET", "s")])).unwrap();
        assert_eq!(c.runtime.asr.translate.provider, TranslatorKind::None);
        let e = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_TRANSLATE_PROVIDER", "babelfish"),
        ]))
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("SIGHTLINE_TRANSLATE_PROVIDER"), "{text}");
        assert!(text.contains("libretranslate, deepl or none"), "{text}");
    }

    #[test]
    fn an_unknown_speech_provider_is_refused_by_name() {
        let e = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_ASR_PROVIDER", "azure"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    name: "SIGHTLINE_ASR_PROVIDER",
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("SIGHTLINE_ASR_PROVIDER"), "{text}");
        assert!(text.contains("\"azure\""), "{text}");
        assert!(
            text.contains("soniox, deepgram, vosk or none"),
            "the error lists the choices: {text}"
        );
    }

    #[test]
    fn token_rules_and_settings_limits_are_read() {
        let c = ServerConfig::from_lookup(lookup(&[("SIGHTLINE_JWT_SECRET", "s")])).unwrap();
        assert_eq!(c.core_token_rules, CoreTokenRules::default());
        assert_eq!(c.core_token_rules.leeway_secs, 60);
        assert_eq!(c.settings_limits, SettingsLimits::default());
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_JWT_LEEWAY_SECS", "5"),
            ("SIGHTLINE_JWT_REQUIRE_EXP", "true"),
            ("SIGHTLINE_SETTINGS_MAX_VALUE_BYTES", "100"),
            ("SIGHTLINE_SETTINGS_MAX_KEYS_PER_APP", "3"),
            ("SIGHTLINE_SETTINGS_MAX_APP_BYTES", "1000"),
            ("SIGHTLINE_SETTINGS_MAX_USER_BYTES", "5000"),
        ]))
        .unwrap();
        assert_eq!(
            c.core_token_rules,
            CoreTokenRules {
                leeway_secs: 5,
                require_exp: true
            }
        );
        assert_eq!(
            c.settings_limits,
            SettingsLimits {
                value_bytes: 100,
                keys_per_app: 3,
                app_bytes: 1000,
                user_bytes: 5000
            }
        );
        let e = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_JWT_REQUIRE_EXP", "maybe"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SIGHTLINE_JWT_REQUIRE_EXP"));
    }

    #[test]
    fn text_to_speech_is_read() {
        let c = ServerConfig::from_lookup(lookup(&[("SIGHTLINE_JWT_SECRET", "s")])).unwrap();
        assert_eq!(c.speech, SpeechConfig::default());
        assert_eq!(c.speech.provider, ProviderChoice::Espeak);
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_TTS_PROVIDER", "ElevenLabs"),
            ("SIGHTLINE_TTS_ELEVENLABS_API_KEY", "xi-secret"),
            ("SIGHTLINE_TTS_ELEVENLABS_URL", "http://127.0.0.1:9000"),
            ("SIGHTLINE_TTS_ESPEAK_VOICE", "en-gb"),
            ("SIGHTLINE_TTS_TIMEOUT_MS", "2500"),
            ("SIGHTLINE_TTS_MAX_AUDIO_BYTES", "100000"),
            ("SIGHTLINE_TTS_MAX_TEXT_CHARS", "200"),
            ("SIGHTLINE_TTS_MAX_CONCURRENT", "4"),
            ("SIGHTLINE_TTS_CACHE_ENTRIES", "10"),
            ("SIGHTLINE_TTS_CACHE_BYTES", "5000"),
        ]))
        .unwrap();
        let s = &c.speech;
        assert_eq!(s.provider, ProviderChoice::ElevenLabs);
        assert_eq!(s.elevenlabs.api_key, "xi-secret");
        assert_eq!(s.elevenlabs.base_url, "http://127.0.0.1:9000");
        assert_eq!(s.espeak.voice, "en-gb");
        assert_eq!(s.elevenlabs.timeout, Duration::from_millis(2500));
        assert_eq!(s.espeak.timeout, Duration::from_millis(2500));
        assert_eq!(s.espeak.max_audio_bytes, 100_000);
        assert_eq!(s.limits.max_text_chars, 200);
        assert_eq!(s.max_concurrent, 4);
        assert_eq!((s.cache.max_entries, s.cache.max_bytes), (10, 5000));
        assert!(
            !format!("{c:?}").contains("xi-secret"),
            "the key is not printed"
        );
        let legacy = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("ELEVENLABS_API_KEY", "old-name"),
        ]))
        .unwrap();
        assert_eq!(legacy.speech.elevenlabs.api_key, "old-name");
        for (name, value) in [
            ("SIGHTLINE_TTS_PROVIDER", "polly"),
            ("SIGHTLINE_TTS_ELEVENLABS_URL", "ftp://x"),
            ("SIGHTLINE_TTS_ESPEAK_VOICE", "en; rm"),
            ("SIGHTLINE_TTS_MAX_TEXT_CHARS", "lots"),
        ] {
            let e =
                ServerConfig::from_lookup(lookup(&[("SIGHTLINE_JWT_SECRET", "s"), (name, value)]))
                    .unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn mongodb_is_chosen_by_its_uri() {
        let c = ServerConfig::from_lookup(lookup(&[("SIGHTLINE_JWT_SECRET", "s")])).unwrap();
        assert!(c.mongodb.is_none());
        let c = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_MONGODB_URI", "mongodb://u:pw@db:27017/prod"),
            ("SIGHTLINE_MONGODB_MAX_POOL_SIZE", "7"),
            ("SIGHTLINE_STORE_TIMEOUT_MS", "1500"),
        ]))
        .unwrap();
        let m = c.mongodb.as_ref().unwrap();
        assert_eq!(m.max_pool_size, 7);
        assert_eq!(m.operation_timeout, Duration::from_millis(1500));
        assert!(!format!("{c:?}").contains("pw"));
        let e = ServerConfig::from_lookup(lookup(&[
            ("SIGHTLINE_JWT_SECRET", "s"),
            ("SIGHTLINE_MONGODB_URI", "mongodb://db"),
            ("SIGHTLINE_MONGODB_MIN_POOL_SIZE", "many"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SIGHTLINE_MONGODB_MIN_POOL_SIZE"));
    }
}

/// `SIGHTLINE_NATS_URL` and the settings that go with it.
fn read_cluster(
    get: &impl Fn(&str) -> Option<String>,
    port: u16,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let Some(nats_url) = get("SIGHTLINE_NATS_URL").filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let ttl_ms = match get("SIGHTLINE_LEASE_TTL_MS") {
        None => 6000,
        Some(v) => v.parse::<u64>().map_err(|e| ConfigError::Invalid {
            name: "SIGHTLINE_LEASE_TTL_MS",
            reason: format!("{v:?}: {e}"),
        })?,
    };
    let ttl = Duration::from_millis(ttl_ms);
    let lease = sightline_cluster::LeaseConfig {
        ttl,
        renew_every: ttl / 3,
        margin: ttl / 4,
    };
    lease.check().map_err(|reason| ConfigError::Invalid {
        name: "SIGHTLINE_LEASE_TTL_MS",
        reason,
    })?;
    let instance_id = get("SIGHTLINE_INSTANCE_ID")
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| format!("sightline-{port}"));
    if !sightline_cluster::bus::valid_instance_id(&instance_id) {
        return Err(ConfigError::Invalid {
            name: "SIGHTLINE_INSTANCE_ID",
            reason: format!("{instance_id:?}: use 1 to 64 letters, digits, '-' or '_'"),
        });
    }
    Ok(Some(ClusterConfig {
        nats_url,
        instance_id,
        bucket: get("SIGHTLINE_OWNERSHIP_BUCKET")
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "sightline-owners".into()),
        lease,
    }))
}
