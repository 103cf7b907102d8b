//! Timings and names the runtime works with. Every value has the default the
//! MentraOS protocol documents; tests shorten them.

use std::time::Duration;

use crate::breaker::BreakerPolicy;
use crate::devices::DeviceConfig;
use sightline_transcription::AsrConfig;

/// Configuration of the session runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The `/app-ws` URL put into `session_request` webhooks.
    pub public_ws_url: String,
    /// How long an app may take from `start_app` to `tpa_connection_init`.
    pub app_start_timeout: Duration,
    /// Timeout of one webhook HTTP call. The SDK answers `session_request`
    /// only after the app has connected, so this is longer than the start
    /// timeout would suggest.
    pub webhook_timeout: Duration,
    /// First delay between `session_request` attempts (doubles, with jitter).
    pub webhook_initial_backoff: Duration,
    /// How long a session waits for the glasses to come back before it ends.
    pub glasses_grace: Duration,
    /// How long an app that dropped its socket is kept running, waiting for
    /// the SDK to reconnect (its retries span 1 + 2 + 4 s).
    pub app_reconnect_grace: Duration,
    /// An empty `subscription_update` this soon after an app (re)connects is
    /// ignored, so a reconnect does not wipe its subscriptions.
    pub empty_subscription_guard: Duration,
    /// Distinct subscriptions one app may hold; more in one
    /// `subscription_update` are left out with a `SUBSCRIPTION_LIMIT` error.
    pub max_subscriptions_per_app: usize,
    /// How long a change in what apps want from the microphone settles
    /// before it is acted on (an app re-subscribing sends `[]`, then its
    /// new list).
    pub mic_settle: Duration,
    /// How long the apps must want the microphone off before the glasses
    /// are told to switch it off.
    pub mic_off_delay: Duration,
    /// How many times an app that vanished is restarted before it is
    /// declared stopped.
    pub max_resurrections: u32,
    /// Package of the system dashboard.
    pub dashboard_package: String,
    /// Number of arbiter threads user sessions are spread over.
    pub session_threads: usize,
    /// How often each connection is pinged (`HEARTBEAT_INTERVAL_MS`).
    pub heartbeat_interval: Duration,
    /// Silence after which a connection is closed (`CONNECTION_TIMEOUT_MS`).
    pub connection_timeout: Duration,
    /// How often each session logs its health (`STATS_INTERVAL_MS`).
    pub stats_interval: Duration,
    /// Events kept at most for an app that is away.
    pub replay_max_events: usize,
    /// Bytes of events kept at most for an app that is away.
    pub replay_max_bytes: usize,
    /// When an app server's webhook breaker opens, and for how long.
    pub webhook_breaker: BreakerPolicy,
    /// This instance's id in a cluster (on every metric); `None`
    /// single-node.
    pub instance_id: Option<String>,
    /// Speech recognition: the provider and how streams behave.
    pub asr: AsrConfig,
    /// Deadlines and bounds of apps' device requests.
    pub devices: DeviceConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            public_ws_url: "ws://127.0.0.1:8002/app-ws".into(),
            app_start_timeout: Duration::from_secs(5),
            webhook_timeout: Duration::from_secs(10),
            webhook_initial_backoff: Duration::from_millis(250),
            glasses_grace: Duration::from_secs(60),
            app_reconnect_grace: Duration::from_secs(10),
            empty_subscription_guard: Duration::from_secs(8),
            max_subscriptions_per_app: 100,
            mic_settle: Duration::from_millis(100),
            mic_off_delay: Duration::from_secs(1),
            max_resurrections: 3,
            dashboard_package: "system.augmentos.dashboard".into(),
            session_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            heartbeat_interval: Duration::from_secs(15),
            connection_timeout: Duration::from_secs(45),
            stats_interval: Duration::from_secs(60),
            replay_max_events: 500,
            replay_max_bytes: 512 * 1024,
            webhook_breaker: BreakerPolicy::default(),
            instance_id: None,
            asr: AsrConfig::default(),
            devices: DeviceConfig::default(),
        }
    }
}

impl RuntimeConfig {
    /// The server's HTTP base, from the `/app-ws` URL apps are given
    /// (`ws://host:port/app-ws` → `http://host:port`).
    pub fn public_http_url(&self) -> String {
        let url = self.public_ws_url.trim_end_matches('/');
        let url = url.strip_suffix("/app-ws").unwrap_or(url);
        if let Some(rest) = url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if let Some(rest) = url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else {
            url.to_string()
        }
    }

    /// The same base as the SDK writes it for `speak()`: always https.
    pub fn sdk_https_url(&self) -> String {
        let http = self.public_http_url();
        match http.strip_prefix("http://") {
            Some(rest) => format!("https://{rest}"),
            None => http,
        }
    }
}
