//! App-to-app messaging: the actor through which one user's app reaches
//! other users running the same app — broadcasts, direct messages, user
//! discovery and rooms. Sessions tell it when an app of theirs starts or
//! stops running and hand it their requests; it decides with the
//! [`Community`] table and delivers each frame to the receiving user's
//! session as an [`AppInbox`] message, which the session writes to that
//! app's socket. Nothing crosses between sessions but mailbox messages.

pub mod cluster;
mod community;

use std::collections::HashMap;

use actix::{Actor, Context, Handler, Message, MessageResult, Recipient};
use serde_json::Value;
use sightline_protocol::app_messaging as wire;

pub use community::{Community, Delivery, MAX_ROOMS_PER_APP, MAX_ROOMS_PER_USER, MAX_ROOM_MEMBERS};

/// A frame for the app `package` of the receiving session's user.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct AppInbox {
    pub package: String,
    pub text: String,
}

/// The messaging actor.
pub struct AppMessaging {
    community: Community,
    /// Each user's session, as the one message it takes from here.
    inboxes: HashMap<String, Recipient<AppInbox>>,
    /// How many of each user's apps run (the inbox is forgotten at 0).
    apps_of: HashMap<String, usize>,
    /// The other instances of a cluster, if any (see [`cluster`]).
    peers: Option<Recipient<cluster::ShareMessaging>>,
}

impl AppMessaging {
    pub fn new() -> Self {
        AppMessaging {
            community: Community::default(),
            inboxes: HashMap::new(),
            apps_of: HashMap::new(),
            peers: None,
        }
    }

    fn deliver(&mut self, package: &str, out: Vec<Delivery>) {
        let mut gone = Vec::new();
        for (user, text) in out {
            if let Some(inbox) = self.inboxes.get(&user) {
                let sent = inbox.try_send(AppInbox {
                    package: package.to_string(),
                    text,
                });
                if let Err(actix::prelude::SendError::Closed(_)) = sent {
                    gone.push(user);
                }
            }
        }
        // A session that ended without saying so (it failed): its user
        // runs nothing any more.
        for user in gone {
            self.forget(&user);
        }
    }

    /// The app session id under which `user` runs `package` ("" if none).
    fn session_of(&self, package: &str, user: &str) -> String {
        self.community
            .session_of(package, user)
            .unwrap_or_default()
            .to_string()
    }

    /// Takes every app of `user` out of the community.
    fn forget(&mut self, user: &str) {
        self.inboxes.remove(user);
        self.apps_of.remove(user);
        self.share(cluster::MessagingOp::Forget {
            user: user.to_string(),
        });
        let ts = crate::now_iso();
        for (package, out) in self.community.forget(user, &ts) {
            self.deliver(&package, out);
        }
    }
}

impl Default for AppMessaging {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for AppMessaging {
    type Context = Context<Self>;
}

/// An app of `user` started running (`inbox` set) or stopped (`None`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppPresence {
    pub package: String,
    pub user: String,
    pub session_id: String,
    pub inbox: Option<Recipient<AppInbox>>,
}

impl Handler<AppPresence> for AppMessaging {
    type Result = ();
    fn handle(&mut self, msg: AppPresence, _: &mut Context<Self>) {
        let ts = crate::now_iso();
        match msg.inbox {
            Some(inbox) => {
                if !self.community.runs(&msg.package, &msg.user) {
                    *self.apps_of.entry(msg.user.clone()).or_default() += 1;
                }
                self.inboxes.insert(msg.user.clone(), inbox);
                let out = self
                    .community
                    .present(&msg.package, &msg.user, &msg.session_id, &ts);
                self.deliver(&msg.package, out);
                self.share(cluster::MessagingOp::Present {
                    package: msg.package,
                    user: msg.user,
                    session_id: msg.session_id,
                });
            }
            None => {
                if !self.community.runs(&msg.package, &msg.user) {
                    return;
                }
                let out = self.community.absent(&msg.package, &msg.user, &ts);
                self.deliver(&msg.package, out);
                self.share(cluster::MessagingOp::Absent {
                    package: msg.package.clone(),
                    user: msg.user.clone(),
                });
                if let Some(n) = self.apps_of.get_mut(&msg.user) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.apps_of.remove(&msg.user);
                        self.inboxes.remove(&msg.user);
                    }
                }
            }
        }
    }
}

/// A broadcast from `user`'s app; answered with the number of users it
/// reached, or why it reached none.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct BroadcastToApp {
    pub package: String,
    pub user: String,
    pub message_id: String,
    pub payload: Value,
    pub room: Option<String>,
}

impl Handler<BroadcastToApp> for AppMessaging {
    type Result = Result<usize, String>;
    fn handle(&mut self, msg: BroadcastToApp, _: &mut Context<Self>) -> Self::Result {
        let to = self
            .community
            .broadcast_to(&msg.package, &msg.user, msg.room.as_deref())?;
        let session = self.session_of(&msg.package, &msg.user);
        let text = wire::app_message_received(
            &msg.payload,
            &msg.message_id,
            &msg.user,
            &session,
            msg.room.as_deref(),
            &crate::now_iso(),
        );
        let n = to.len();
        self.deliver(
            &msg.package,
            to.into_iter().map(|u| (u, text.clone())).collect(),
        );
        self.share(cluster::MessagingOp::Broadcast {
            package: msg.package,
            user: msg.user,
            room: msg.room,
            text,
        });
        Ok(n)
    }
}

/// A direct message from `user`'s app to `target`'s app of the same
/// package; answered with whether it was delivered.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct DirectToApp {
    pub package: String,
    pub user: String,
    pub target: String,
    pub message_id: String,
    pub payload: Value,
}

impl Handler<DirectToApp> for AppMessaging {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: DirectToApp, _: &mut Context<Self>) -> Self::Result {
        self.community
            .direct_to(&msg.package, &msg.user, &msg.target)?;
        let session = self.session_of(&msg.package, &msg.user);
        let text = wire::app_message_received(
            &msg.payload,
            &msg.message_id,
            &msg.user,
            &session,
            None,
            &crate::now_iso(),
        );
        if self.inboxes.contains_key(&msg.target) {
            self.deliver(&msg.package, vec![(msg.target, text)]);
        } else {
            self.share(cluster::MessagingOp::Direct {
                package: msg.package,
                target: msg.target,
                text,
            });
        }
        Ok(())
    }
}

/// Who else runs `package`, for `user` (who must run it too).
#[derive(Message)]
#[rtype(result = "Result<Value, String>")]
pub struct DiscoverAppUsers {
    pub package: String,
    pub user: String,
    pub include_profiles: bool,
}

impl Handler<DiscoverAppUsers> for AppMessaging {
    type Result = MessageResult<DiscoverAppUsers>;
    fn handle(&mut self, msg: DiscoverAppUsers, _: &mut Context<Self>) -> Self::Result {
        if !self.community.runs(&msg.package, &msg.user) {
            return MessageResult(Err(format!("{} is not running {}", msg.user, msg.package)));
        }
        MessageResult(Ok(self.community.discover(
            &msg.package,
            &msg.user,
            msg.include_profiles,
            &crate::now_iso(),
        )))
    }
}

/// `user`'s app joins a room.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct JoinAppRoom {
    pub package: String,
    pub user: String,
    pub room: String,
    pub max_users: Option<u64>,
    pub private: bool,
    pub metadata: Option<Value>,
}

impl Handler<JoinAppRoom> for AppMessaging {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: JoinAppRoom, _: &mut Context<Self>) -> Self::Result {
        let session = self.session_of(&msg.package, &msg.user);
        let out = self.community.join(
            &msg.package,
            &msg.user,
            &session,
            &msg.room,
            msg.max_users,
            msg.private,
            msg.metadata.clone(),
            &crate::now_iso(),
        )?;
        self.deliver(&msg.package, out);
        self.share(cluster::MessagingOp::Join {
            package: msg.package,
            user: msg.user,
            session_id: session,
            room: msg.room,
            max_users: msg.max_users,
            private: msg.private,
            metadata: msg.metadata,
        });
        Ok(())
    }
}

/// `user`'s app leaves a room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveAppRoom {
    pub package: String,
    pub user: String,
    pub room: String,
}

impl Handler<LeaveAppRoom> for AppMessaging {
    type Result = ();
    fn handle(&mut self, msg: LeaveAppRoom, _: &mut Context<Self>) {
        let session = self.session_of(&msg.package, &msg.user);
        let out = self.community.leave(
            &msg.package,
            &msg.user,
            &session,
            &msg.room,
            &crate::now_iso(),
        );
        self.deliver(&msg.package, out);
        self.share(cluster::MessagingOp::Leave {
            package: msg.package,
            user: msg.user,
            session_id: session,
            room: msg.room,
        });
    }
}
