//! App-to-app messaging across the instances of a cluster.
//!
//! Every instance keeps a replica of the whole community (who runs which
//! app, the rooms) and delivers only to its own users. Whatever changes the
//! community or must reach users — an app starting or stopping, a
//! broadcast, a direct message, a room joined or left — is decided here
//! for this instance's users and told to the others as a [`MessagingOp`]
//! ([`ShareMessaging`], published on NATS by the server); an op from
//! another instance ([`FromOtherInstance`]) is applied to the replica and
//! delivered to this instance's users. A starting instance says
//! [`MessagingOp::Hello`] and every other instance answers with the apps
//! its users run, so its replica fills.

use actix::{Context, Handler, Message, Recipient};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppMessaging;

/// One change of the community, or one frame for its users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MessagingOp {
    Present {
        package: String,
        user: String,
        session_id: String,
    },
    Absent {
        package: String,
        user: String,
    },
    /// The user runs nothing on the sender any more (its session ended,
    /// or the user was claimed by a new owner after an instance was lost).
    Forget {
        user: String,
    },
    /// A broadcast from `user`: every instance delivers `text` to its own
    /// recipients.
    Broadcast {
        package: String,
        user: String,
        room: Option<String>,
        text: String,
    },
    Direct {
        package: String,
        target: String,
        text: String,
    },
    Join {
        package: String,
        user: String,
        session_id: String,
        room: String,
        max_users: Option<u64>,
        private: bool,
        metadata: Option<Value>,
    },
    Leave {
        package: String,
        user: String,
        session_id: String,
        room: String,
    },
    /// A new instance asks the others for the apps their users run.
    Hello,
}

/// For the other instances.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ShareMessaging(pub MessagingOp);

/// Where this instance's ops go (set once in cluster mode).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShareWith(pub Recipient<ShareMessaging>);

/// An op from another instance.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct FromOtherInstance(pub MessagingOp);

impl AppMessaging {
    /// Tells the other instances, if there are any.
    pub(super) fn share(&self, op: MessagingOp) {
        if let Some(peers) = &self.peers {
            peers.do_send(ShareMessaging(op));
        }
    }
}

impl Handler<ShareWith> for AppMessaging {
    type Result = ();
    fn handle(&mut self, msg: ShareWith, _: &mut Context<Self>) {
        self.peers = Some(msg.0);
    }
}

impl Handler<FromOtherInstance> for AppMessaging {
    type Result = ();

    fn handle(&mut self, FromOtherInstance(op): FromOtherInstance, _: &mut Context<Self>) {
        let ts = crate::now_iso();
        match op {
            MessagingOp::Present {
                package,
                user,
                session_id,
            } => {
                let out = self.community.present(&package, &user, &session_id, &ts);
                self.deliver(&package, out);
            }
            MessagingOp::Absent { package, user } => {
                let out = self.community.absent(&package, &user, &ts);
                self.deliver(&package, out);
            }
            MessagingOp::Forget { user } => {
                // A user of this instance is not forgotten on another's word.
                if !self.inboxes.contains_key(&user) {
                    for (package, out) in self.community.forget(&user, &ts) {
                        self.deliver(&package, out);
                    }
                }
            }
            MessagingOp::Broadcast {
                package,
                user,
                room,
                text,
            } => {
                if let Ok(to) = self
                    .community
                    .broadcast_to(&package, &user, room.as_deref())
                {
                    let out = to.into_iter().map(|u| (u, text.clone())).collect();
                    self.deliver(&package, out);
                }
            }
            MessagingOp::Direct {
                package,
                target,
                text,
            } => self.deliver(&package, vec![(target, text)]),
            MessagingOp::Join {
                package,
                user,
                session_id,
                room,
                max_users,
                private,
                metadata,
            } => {
                let joined = self.community.join(
                    &package,
                    &user,
                    &session_id,
                    &room,
                    max_users,
                    private,
                    metadata,
                    &ts,
                );
                if let Ok(out) = joined {
                    self.deliver(&package, out);
                }
            }
            MessagingOp::Leave {
                package,
                user,
                session_id,
                room,
            } => {
                let out = self
                    .community
                    .leave(&package, &user, &session_id, &room, &ts);
                self.deliver(&package, out);
            }
            MessagingOp::Hello => {
                let users: Vec<String> = self.inboxes.keys().cloned().collect();
                for user in users {
                    for (package, session_id) in self.community.apps_of(&user) {
                        self.share(MessagingOp::Present {
                            package,
                            user: user.clone(),
                            session_id,
                        });
                    }
                }
            }
        }
    }
}
