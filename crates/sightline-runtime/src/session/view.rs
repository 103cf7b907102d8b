//! What an operator sees of one session in the inspector: its glasses, its
//! apps with their subscriptions, what the main view shows, its
//! transcription streams and its health figures. Built by the session
//! itself on request, so it is always a consistent picture of one instant.

use actix::{Context, Handler, Message, MessageResult};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{SessionFigures, UserSession};

/// One session, as the inspector shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub user: String,
    pub started_at: String,
    /// The session's id in the actor registry.
    pub actor_id: u64,
    /// The glasses connection, when the glasses are connected.
    pub glasses: Option<String>,
    pub microphone_on: bool,
    pub apps: Vec<AppView>,
    /// What the glasses' main view shows.
    pub display: Option<DisplayView>,
    pub transcription_streams: Vec<String>,
    /// Device requests waiting for the phone's answer, oldest first.
    pub device_requests: Vec<crate::devices::PendingView>,
    /// The video stream running from the glasses' camera.
    pub stream: Option<crate::devices::StreamView>,
    /// The glasses' location tier, as last told.
    pub location_tier: Option<&'static str>,
    pub figures: SessionFigures,
}

/// One app of a session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub package_name: String,
    pub name: String,
    pub state: &'static str,
    /// The app's connection, while it has one.
    pub connection: Option<String>,
    pub subscriptions: Vec<String>,
    /// Events kept for it while its connection is away.
    pub kept_events: usize,
}

/// The main view's content.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisplayView {
    pub package_name: String,
    pub view: String,
    pub layout: Map<String, Value>,
}

/// Asks a session to describe itself.
#[derive(Message)]
#[rtype(result = "SessionView")]
pub struct DescribeSession;

impl Handler<DescribeSession> for UserSession {
    type Result = MessageResult<DescribeSession>;

    fn handle(&mut self, _: DescribeSession, _: &mut Context<Self>) -> Self::Result {
        self.probe.handled();
        let apps = self
            .apps
            .iter()
            .map(|(package, e)| AppView {
                package_name: package.clone(),
                name: e.record.name.clone(),
                state: e.state.as_str(),
                connection: e.link.as_ref().map(|l| l.id.to_string()),
                subscriptions: e.subscriptions.iter().map(|s| s.raw.clone()).collect(),
                kept_events: e.replay.as_ref().map_or(0, |r| r.len()),
            })
            .collect();
        let display = self.screen.current().map(|d| DisplayView {
            package_name: d.display.package_name.clone(),
            view: d.display.view.clone(),
            layout: d.display.layout.clone(),
        });
        MessageResult(SessionView {
            user: self.user.email.clone(),
            started_at: self.started_at.clone(),
            actor_id: self.probe.id(),
            glasses: self.glasses.as_ref().map(|g| g.id.to_string()),
            microphone_on: self.mic.sent().is_some_and(|m| m.on),
            apps,
            display,
            transcription_streams: self.transcription_specs(),
            device_requests: self.devices.pending(std::time::Instant::now()),
            stream: self.devices.streams().view(),
            location_tier: self.devices.location().tier(),
            figures: self.figures,
        })
    }
}
