//! App settings and registrations changed outside the session — a user
//! edited settings through the REST API, or a developer changed the app's
//! registration (the running app takes the new record). The session refreshes its cached copy (the next ack of the
//! app carries the new values) and, if the app is connected, pushes the
//! full array to it as `settings_update` (protocol §4.3, §10).

use actix::{Context, Handler, Message};
use serde_json::{json, Value};

use super::{AppState, UserSession};
use crate::now_iso;

/// The user's settings of one app changed. Answers whether a connected app
/// was sent `settings_update`.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AppSettingsChanged {
    pub package_name: String,
    /// What the store now holds for the app (the user's `{key, value}`
    /// pairs); the session's copy of the user record takes it.
    pub stored: Value,
    /// The full settings the app sees (every declared setting with its
    /// value), sent as `settings_update`.
    pub settings: Value,
}

impl Handler<AppSettingsChanged> for UserSession {
    type Result = bool;

    fn handle(&mut self, msg: AppSettingsChanged, _: &mut Context<Self>) -> bool {
        self.user
            .app_settings
            .insert(msg.package_name.clone(), msg.stored);
        let Some(entry) = self.apps.get(&msg.package_name) else {
            return false;
        };
        let Some(link) = entry
            .link
            .as_ref()
            .filter(|_| entry.state == AppState::Running)
        else {
            return false;
        };
        let update = json!({
            "type": "settings_update",
            "packageName": msg.package_name,
            "sessionId": entry.session_id,
            "settings": msg.settings,
            "timestamp": now_iso(),
        });
        tracing::info!(user = %self.user.email, package = %msg.package_name, "app settings pushed to the app");
        link.text(update.to_string());
        true
    }
}

/// Whether the app runs in this session with a connection whose API key
/// was accepted. The SDK's settings fetch carries only the user id, so the
/// server answers it only while the app itself is connected for that user.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AppIsConnected {
    pub package_name: String,
}

impl Handler<AppIsConnected> for UserSession {
    type Result = bool;

    fn handle(&mut self, msg: AppIsConnected, _: &mut Context<Self>) -> bool {
        self.apps.is_connected(&msg.package_name)
    }
}

/// The user uninstalled an app: if it runs, it is stopped as the user
/// would stop it from the phone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppUninstalled {
    pub package_name: String,
}

impl Handler<AppUninstalled> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: AppUninstalled, ctx: &mut Context<Self>) {
        if self.apps.get(&msg.package_name).is_some() {
            tracing::info!(package = %msg.package_name, "app uninstalled while running; stopping it");
            self.stop_app(
                &msg.package_name,
                sightline_protocol::webhook::StopReason::UserDisabled,
                ctx,
            );
        }
    }
}

/// A developer changed an app's registration (`PUT /api/admin/apps/..`):
/// the session takes it if the app runs here.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct AppRecordChanged(pub sightline_store::AppRecord);

impl Handler<AppRecordChanged> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: AppRecordChanged, ctx: &mut Context<Self>) {
        let _in_session = self.span.clone().entered();
        let effects = self.apps.record_changed(msg.0);
        self.carry_out(effects, ctx);
    }
}
