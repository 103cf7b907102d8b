//! What the phone tells Sightline about the user, beyond the glasses:
//! MentraOS settings changes (stored, and sent to every running app as
//! `augmentos_settings_update`; written in order by the session's
//! settings writer), `custom_message`s for apps, the user's
//! location (stored, at most once a minute) and time zone (stored when it
//! changes).

use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_protocol::glasses::GlassesEvent;
use sightline_protocol::settings::{
    augmentos_settings_update, mentraos_changes, mentraos_settings,
};

use super::{AppState, UserSession};
use crate::now_iso;

/// How often the user's location is written to the store at most.
const LOCATION_WRITE_INTERVAL: Duration = Duration::from_secs(60);

/// Event types that carry MentraOS settings.
fn carries_settings(kind: &str) -> bool {
    matches!(
        kind,
        "core_status_update" | "mentraos_settings_update" | "augmentos_settings_update"
    )
}

impl UserSession {
    /// Looks at an event for what it says about the user. Returns whether
    /// the event should still be relayed to subscribed apps as an event.
    pub(super) fn observe_phone(&mut self, ev: &GlassesEvent) -> bool {
        let kind = ev.kind.as_str();
        if !(carries_settings(kind)
            || matches!(
                kind,
                "custom_message" | "location_update" | "calendar_event"
            ))
        {
            return true;
        }
        let Ok(event) = serde_json::from_str::<Value>(ev.json.get()) else {
            return true;
        };
        if carries_settings(kind) {
            self.settings_reported(kind, &event);
        }
        match kind {
            "custom_message" => {
                self.custom_message(&event);
                return false;
            }
            "location_update" => self.location_reported(&event),
            _ => {}
        }
        if let Some(zone) = event.get("timezone").and_then(Value::as_str) {
            self.timezone_reported(zone);
        }
        !matches!(
            kind,
            "mentraos_settings_update" | "augmentos_settings_update"
        )
    }

    fn settings_reported(&mut self, kind: &str, event: &Value) {
        self.apply_mentraos_changes(mentraos_changes(kind, event), true);
    }

    /// Takes in changed MentraOS settings: kept (and stored, with
    /// `store`), and every running app gets the whole set.
    fn apply_mentraos_changes(&mut self, changes: serde_json::Map<String, Value>, store: bool) {
        let changed: serde_json::Map<String, Value> = changes
            .into_iter()
            .filter(|(k, v)| self.user.mentraos_settings.get(k) != Some(v))
            .collect();
        if changed.is_empty() {
            return;
        }
        tracing::info!(user = %self.user.email, settings = ?changed.keys().collect::<Vec<_>>(), "MentraOS settings changed on the phone");
        for (k, v) in &changed {
            self.user.mentraos_settings.insert(k.clone(), v.clone());
        }
        if store {
            self.settings_writer.set(changed);
        }
        let settings = mentraos_settings(&self.user.mentraos_settings);
        let ts = now_iso();
        for app in self.apps.values().filter(|a| a.state == AppState::Running) {
            if let Some(link) = &app.link {
                link.text(augmentos_settings_update(&app.session_id, &settings, &ts));
            }
        }
    }

    /// `custom_message {action, payload}` from the phone: to every running
    /// app, top-level, as the SDK reads it.
    fn custom_message(&self, event: &Value) {
        let Some(action) = event.get("action").and_then(Value::as_str) else {
            return;
        };
        let text = serde_json::json!({
            "type": "custom_message",
            "action": action,
            "payload": event.get("payload").cloned().unwrap_or(Value::Null),
            "timestamp": now_iso(),
        })
        .to_string();
        for app in self.apps.values().filter(|a| a.state == AppState::Running) {
            if let Some(link) = &app.link {
                link.text(text.clone());
            }
        }
    }

    fn location_reported(&mut self, event: &Value) {
        let (Some(lat), Some(lng)) = (
            event.get("lat").and_then(Value::as_f64),
            event.get("lng").and_then(Value::as_f64),
        ) else {
            return;
        };
        let now = Instant::now();
        if self
            .location_written
            .is_some_and(|at| now.duration_since(at) < LOCATION_WRITE_INTERVAL)
        {
            return;
        }
        self.location_written = Some(now);
        let location = serde_json::json!({
            "lat": lat,
            "lng": lng,
            "accuracy": event.get("accuracy").and_then(Value::as_f64),
            "timestamp": now_iso(),
        });
        let store = self.store.clone();
        let email = self.user.email.clone();
        actix::spawn(async move {
            if let Err(e) = store.set_location(&email, location).await {
                tracing::warn!(user = %email, error = %e, "could not store the location");
            }
        });
    }

    fn timezone_reported(&mut self, zone: &str) {
        if zone.len() > 64 || self.user.timezone.as_deref() == Some(zone) {
            return;
        }
        if !self.dashboard.set_timezone(zone) {
            return; // not a time zone
        }
        self.user.timezone = Some(zone.to_string());
        let store = self.store.clone();
        let email = self.user.email.clone();
        let zone = zone.to_string();
        actix::spawn(async move {
            if let Err(e) = store.set_timezone(&email, &zone).await {
                tracing::warn!(user = %email, error = %e, "could not store the time zone");
            }
        });
    }
}

/// MentraOS settings the user changed through the REST API (already
/// stored): the session keeps them and tells its running apps.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct MentraosSettingsChanged(pub serde_json::Map<String, Value>);

impl actix::Handler<MentraosSettingsChanged> for UserSession {
    type Result = ();
    fn handle(&mut self, msg: MentraosSettingsChanged, _: &mut actix::Context<Self>) {
        self.apply_mentraos_changes(msg.0, false);
    }
}
