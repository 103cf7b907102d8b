//! Payloads Sightline POSTs to an app server's `/webhook`.

use serde::Serialize;

/// `session_request`: asks the app server to open an `AppSession`.
/// Both URL fields are sent; the SDK prefers `mentraOSWebsocketUrl`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRequest<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub timestamp: String,
    #[serde(rename = "mentraOSWebsocketUrl")]
    pub mentra_os_websocket_url: &'a str,
    #[serde(rename = "augmentOSWebsocketUrl")]
    pub augment_os_websocket_url: &'a str,
}

impl<'a> SessionRequest<'a> {
    pub fn new(session_id: &'a str, user_id: &'a str, ws_url: &'a str, timestamp: String) -> Self {
        SessionRequest {
            kind: "session_request",
            session_id,
            user_id,
            timestamp,
            mentra_os_websocket_url: ws_url,
            augment_os_websocket_url: ws_url,
        }
    }
}

/// Why an app is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    UserDisabled,
    SystemStop,
    Error,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::UserDisabled => "user_disabled",
            StopReason::SystemStop => "system_stop",
            StopReason::Error => "error",
        }
    }
}

/// `stop_request`: tells the app server the app was stopped.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub reason: StopReason,
    pub timestamp: String,
}

impl<'a> StopRequest<'a> {
    pub fn new(
        session_id: &'a str,
        user_id: &'a str,
        reason: StopReason,
        timestamp: String,
    ) -> Self {
        StopRequest {
            kind: "stop_request",
            session_id,
            user_id,
            reason,
            timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_request_carries_both_urls() {
        let r = SessionRequest::new("a@b.c-com.x", "a@b.c", "ws://h/app-ws", "t".into());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["type"], "session_request");
        assert_eq!(v["mentraOSWebsocketUrl"], "ws://h/app-ws");
        assert_eq!(v["augmentOSWebsocketUrl"], "ws://h/app-ws");
        assert_eq!(v["sessionId"], "a@b.c-com.x");
    }

    #[test]
    fn stop_reason_is_snake_case() {
        let r = StopRequest::new("s", "u", StopReason::UserDisabled, "t".into());
        assert_eq!(serde_json::to_value(&r).unwrap()["reason"], "user_disabled");
    }
}
