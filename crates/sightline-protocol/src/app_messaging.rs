//! App-to-app messaging between users running the same app: what an app
//! sends (`app_broadcast_message`, `app_direct_message`,
//! `app_user_discovery`, `app_room_join`, `app_room_leave`) and the
//! top-level messages the SDK hands its app-event handlers
//! (`app_message_received`, `app_user_joined`, `app_user_left`,
//! `app_room_updated`, `app_direct_message_response`).

use serde_json::{json, Map, Value};

use crate::error::ProtocolError;

/// Largest payload carried, as JSON text.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024;
/// Longest message, user or room id taken.
pub const MAX_ID_LEN: usize = 256;
/// Largest room metadata, as JSON text.
pub const MAX_METADATA_LEN: usize = 4096;

/// A messaging request from an app.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagingRequest {
    /// To every other user running the app (or every member of `room`).
    Broadcast {
        message_id: String,
        payload: Value,
        room: Option<String>,
    },
    /// To one user running the app; answered `app_direct_message_response`.
    Direct {
        message_id: String,
        target_user: String,
        payload: Value,
    },
    /// Who else runs the app now.
    Discover {
        include_profiles: bool,
    },
    JoinRoom {
        room: String,
        max_users: Option<u64>,
        private: bool,
        metadata: Option<Value>,
    },
    LeaveRoom {
        room: String,
    },
}

pub const MESSAGING_TYPES: &[&str] = &[
    "app_broadcast_message",
    "app_direct_message",
    "app_user_discovery",
    "app_room_join",
    "app_room_leave",
];

pub fn parse_messaging(
    kind: &str,
    obj: &Map<String, Value>,
) -> Result<MessagingRequest, ProtocolError> {
    let bad = |why: String| ProtocolError::invalid(kind, why);
    let id = |name: &str| -> Result<String, ProtocolError> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(s.clone()),
            _ => Err(bad(format!(
                "\"{name}\" must be a non-empty string of at most {MAX_ID_LEN} bytes"
            ))),
        }
    };
    let payload = || -> Result<Value, ProtocolError> {
        let p = obj.get("payload").cloned().unwrap_or(Value::Null);
        let len = p.to_string().len();
        if len > MAX_PAYLOAD_LEN {
            return Err(bad(format!(
                "the payload is {len} bytes, more than {MAX_PAYLOAD_LEN}"
            )));
        }
        Ok(p)
    };
    Ok(match kind {
        "app_broadcast_message" => MessagingRequest::Broadcast {
            message_id: id("messageId")?,
            payload: payload()?,
            room: match obj.get("roomId") {
                None | Some(Value::Null) => None,
                Some(_) => Some(id("roomId")?),
            },
        },
        "app_direct_message" => MessagingRequest::Direct {
            message_id: id("messageId")?,
            target_user: id("targetUserId")?,
            payload: payload()?,
        },
        "app_user_discovery" => MessagingRequest::Discover {
            include_profiles: obj
                .get("includeUserProfiles")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "app_room_join" => {
            let config = obj.get("roomConfig").and_then(Value::as_object);
            let metadata = config.and_then(|c| c.get("metadata")).cloned();
            if let Some(m) = &metadata {
                let len = m.to_string().len();
                if len > MAX_METADATA_LEN {
                    return Err(bad(format!(
                        "room metadata is {len} bytes, more than {MAX_METADATA_LEN}"
                    )));
                }
            }
            MessagingRequest::JoinRoom {
                room: id("roomId")?,
                max_users: config
                    .and_then(|c| c.get("maxUsers"))
                    .and_then(Value::as_u64),
                private: config
                    .and_then(|c| c.get("isPrivate"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                metadata,
            }
        }
        "app_room_leave" => MessagingRequest::LeaveRoom {
            room: id("roomId")?,
        },
        other => return Err(ProtocolError::UnknownType(other.to_string())),
    })
}

/// `app_message_received`, for the app of every recipient.
pub fn app_message_received(
    payload: &Value,
    message_id: &str,
    sender_user: &str,
    sender_session: &str,
    room: Option<&str>,
    ts: &str,
) -> String {
    let mut v = json!({
        "type": "app_message_received",
        "payload": payload,
        "messageId": message_id,
        "senderUserId": sender_user,
        "senderSessionId": sender_session,
        "timestamp": ts,
    });
    if let Some(r) = room {
        v["roomId"] = r.into();
    }
    v.to_string()
}

/// `app_direct_message_response`: the SDK resolves `sendDirectMessage()`
/// with `success`.
pub fn app_direct_message_response(message_id: &str, error: Option<&str>, ts: &str) -> String {
    let mut v = json!({
        "type": "app_direct_message_response",
        "messageId": message_id,
        "success": error.is_none(),
        "timestamp": ts,
    });
    if let Some(e) = error {
        v["error"] = e.into();
    }
    v.to_string()
}

/// `app_user_joined` / `app_user_left`.
pub fn app_user_presence(
    joined: bool,
    user: &str,
    session_id: &str,
    room: Option<&str>,
    ts: &str,
) -> String {
    let (kind, at) = if joined {
        ("app_user_joined", "joinedAt")
    } else {
        ("app_user_left", "leftAt")
    };
    let mut v =
        json!({"type": kind, "userId": user, "sessionId": session_id, at: ts, "timestamp": ts});
    if let Some(r) = room {
        v["roomId"] = r.into();
    }
    v.to_string()
}

/// `app_room_updated`.
pub fn app_room_updated(
    room: &str,
    update: &str,
    member_count: usize,
    max_users: Option<u64>,
    private: bool,
    metadata: Option<&Value>,
    ts: &str,
) -> String {
    let mut data = json!({"memberCount": member_count, "isPrivate": private});
    if let Some(m) = max_users {
        data["maxUsers"] = m.into();
    }
    if let Some(m) = metadata {
        data["metadata"] = m.clone();
    }
    json!({"type": "app_room_updated", "roomId": room, "updateType": update, "roomData": data, "timestamp": ts})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn requests_are_bounded() {
        assert!(parse_messaging(
            "app_broadcast_message",
            &obj(json!({"messageId": "m1", "payload": {"hi": 1}}))
        )
        .is_ok());
        let big = json!({"messageId": "m1", "payload": "x".repeat(MAX_PAYLOAD_LEN)});
        assert!(parse_messaging("app_broadcast_message", &obj(big)).is_err());
        assert!(parse_messaging("app_direct_message", &obj(json!({"messageId": "m"}))).is_err());
        let meta = json!({"roomId": "r", "roomConfig": {"metadata": "y".repeat(MAX_METADATA_LEN)}});
        assert!(parse_messaging("app_room_join", &obj(meta)).is_err());
    }

    #[test]
    fn a_failed_direct_message_says_why() {
        let v: Value =
            serde_json::from_str(&app_direct_message_response("m", Some("not running"), "t"))
                .unwrap_or_default();
        assert_eq!(v["success"], false);
        assert_eq!(v["error"], "not running");
    }
}
