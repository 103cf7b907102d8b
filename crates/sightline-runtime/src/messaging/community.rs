//! Who runs which app right now, and the rooms they joined: the rules of
//! app-to-app messaging as a plain table. Every input returns the frames
//! to deliver, addressed by user; the [`AppMessaging`](super::AppMessaging)
//! actor hands them to those users' sessions. An app reaches only users
//! running the same package.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};
use sightline_protocol::app_messaging as wire;

/// Rooms one app may have open at a time.
pub const MAX_ROOMS_PER_APP: usize = 256;
/// Members a room may have at most, whatever its `maxUsers` says.
pub const MAX_ROOM_MEMBERS: u64 = 1000;
/// Rooms one user may be in, per app.
pub const MAX_ROOMS_PER_USER: usize = 32;

/// A frame for one user's app.
pub type Delivery = (String, String);

#[derive(Debug, Clone)]
struct Member {
    session_id: String,
    joined_at: String,
}

#[derive(Debug, Clone)]
struct Room {
    members: BTreeSet<String>,
    max_users: u64,
    private: bool,
    metadata: Option<Value>,
}

#[derive(Debug, Default)]
pub struct Community {
    /// package → user → their app session.
    running: HashMap<String, BTreeMap<String, Member>>,
    /// (package, room) → room.
    rooms: HashMap<(String, String), Room>,
}

impl Community {
    /// Whether `user` runs `package` now.
    pub fn runs(&self, package: &str, user: &str) -> bool {
        self.running
            .get(package)
            .is_some_and(|m| m.contains_key(user))
    }

    fn others(&self, package: &str, user: &str) -> Vec<String> {
        self.running
            .get(package)
            .map(|m| m.keys().filter(|u| *u != user).cloned().collect())
            .unwrap_or_default()
    }

    /// A user's app started (or reconnected): the others hear
    /// `app_user_joined`.
    pub fn present(
        &mut self,
        package: &str,
        user: &str,
        session_id: &str,
        ts: &str,
    ) -> Vec<Delivery> {
        let members = self.running.entry(package.to_string()).or_default();
        if members.contains_key(user) {
            return Vec::new();
        }
        members.insert(
            user.to_string(),
            Member {
                session_id: session_id.to_string(),
                joined_at: ts.to_string(),
            },
        );
        let text = wire::app_user_presence(true, user, session_id, None, ts);
        self.others(package, user)
            .into_iter()
            .map(|u| (u, text.clone()))
            .collect()
    }

    /// A user's app stopped: it leaves its rooms, and the others hear
    /// `app_user_left`.
    pub fn absent(&mut self, package: &str, user: &str, ts: &str) -> Vec<Delivery> {
        let Some(member) = self.running.get_mut(package).and_then(|m| m.remove(user)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let rooms: Vec<String> = self
            .rooms
            .iter()
            .filter(|((p, _), r)| p == package && r.members.contains(user))
            .map(|((_, r), _)| r.clone())
            .collect();
        for room in rooms {
            out.extend(self.leave(package, user, &member.session_id, &room, ts));
        }
        let text = wire::app_user_presence(false, user, &member.session_id, None, ts);
        out.extend(
            self.others(package, user)
                .into_iter()
                .map(|u| (u, text.clone())),
        );
        if self.running.get(package).is_some_and(|m| m.is_empty()) {
            self.running.remove(package);
        }
        out
    }

    /// Who receives a broadcast from `user`: every other user of the app,
    /// or every other member of `room` (which `user` must be in).
    pub fn broadcast_to(
        &self,
        package: &str,
        user: &str,
        room: Option<&str>,
    ) -> Result<Vec<String>, String> {
        if !self.runs(package, user) {
            return Err("this app is not running for the sender".into());
        }
        match room {
            None => Ok(self.others(package, user)),
            Some(r) => match self.rooms.get(&(package.to_string(), r.to_string())) {
                Some(room) if room.members.contains(user) => Ok(room
                    .members
                    .iter()
                    .filter(|u| *u != user)
                    .cloned()
                    .collect()),
                _ => Err(format!("not a member of room {r}")),
            },
        }
    }

    /// Whether a direct message from `user` may go to `target`.
    pub fn direct_to(&self, package: &str, user: &str, target: &str) -> Result<(), String> {
        if !self.runs(package, user) {
            return Err("this app is not running for the sender".into());
        }
        if target == user {
            return Err("a direct message needs another user".into());
        }
        if !self.runs(package, target) {
            return Err(format!("{target} is not running this app"));
        }
        Ok(())
    }

    /// The other users running the app, as the SDK's `discoverAppUsers()`
    /// reads them.
    pub fn discover(&self, package: &str, user: &str, include_profiles: bool, ts: &str) -> Value {
        let users: Vec<Value> = self
            .running
            .get(package)
            .map(|m| {
                m.iter()
                    .filter(|(u, _)| *u != user)
                    .map(|(u, member)| {
                        let mut v = json!({"userId": u, "sessionId": member.session_id, "joinedAt": member.joined_at});
                        if include_profiles {
                            v["userProfile"] = json!({"userId": u});
                        }
                        v
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({"users": users, "totalUsers": users.len(), "timestamp": ts})
    }

    /// `user` joins `room` (creating it with `config` if it is new): the
    /// members hear `app_user_joined` and `app_room_updated`.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        package: &str,
        user: &str,
        session_id: &str,
        room: &str,
        max_users: Option<u64>,
        private: bool,
        metadata: Option<Value>,
        ts: &str,
    ) -> Result<Vec<Delivery>, String> {
        if !self.runs(package, user) {
            return Err("this app is not running for the user".into());
        }
        let key = (package.to_string(), room.to_string());
        let in_rooms = self
            .rooms
            .iter()
            .filter(|((p, _), r)| p == package && r.members.contains(user))
            .count();
        let open = self.rooms.keys().filter(|(p, _)| p == package).count();
        let r = match self.rooms.get_mut(&key) {
            Some(r) => r,
            None => {
                if open >= MAX_ROOMS_PER_APP {
                    return Err(format!(
                        "this app already has {MAX_ROOMS_PER_APP} rooms open"
                    ));
                }
                self.rooms.entry(key.clone()).or_insert(Room {
                    members: BTreeSet::new(),
                    max_users: max_users
                        .unwrap_or(MAX_ROOM_MEMBERS)
                        .clamp(1, MAX_ROOM_MEMBERS),
                    private,
                    metadata,
                })
            }
        };
        if r.members.contains(user) {
            return Ok(Vec::new());
        }
        if in_rooms >= MAX_ROOMS_PER_USER {
            return Err(format!(
                "a user may be in at most {MAX_ROOMS_PER_USER} rooms"
            ));
        }
        if r.members.len() as u64 >= r.max_users {
            return Err(format!("room {room} is full ({} members)", r.max_users));
        }
        r.members.insert(user.to_string());
        let joined = wire::app_user_presence(true, user, session_id, Some(room), ts);
        let updated = wire::app_room_updated(
            room,
            "user_joined",
            r.members.len(),
            Some(r.max_users),
            r.private,
            r.metadata.as_ref(),
            ts,
        );
        let mut out = Vec::new();
        for m in &r.members {
            if m != user {
                out.push((m.clone(), joined.clone()));
            }
            out.push((m.clone(), updated.clone()));
        }
        Ok(out)
    }

    /// `user` leaves `room`: the others hear `app_user_left` and
    /// `app_room_updated`; an empty room closes.
    pub fn leave(
        &mut self,
        package: &str,
        user: &str,
        session_id: &str,
        room: &str,
        ts: &str,
    ) -> Vec<Delivery> {
        let key = (package.to_string(), room.to_string());
        let Some(r) = self.rooms.get_mut(&key) else {
            return Vec::new();
        };
        if !r.members.remove(user) {
            return Vec::new();
        }
        let left = wire::app_user_presence(false, user, session_id, Some(room), ts);
        let update = if r.members.is_empty() {
            "room_closed"
        } else {
            "user_left"
        };
        let updated = wire::app_room_updated(
            room,
            update,
            r.members.len(),
            Some(r.max_users),
            r.private,
            r.metadata.as_ref(),
            ts,
        );
        let mut out = vec![(user.to_string(), updated.clone())];
        for m in &r.members {
            out.push((m.clone(), left.clone()));
            out.push((m.clone(), updated.clone()));
        }
        if r.members.is_empty() {
            self.rooms.remove(&key);
        }
        out
    }

    /// `user` runs nothing any more: every app of theirs is absent. Returns
    /// what each package's other users must hear.
    pub fn forget(&mut self, user: &str, ts: &str) -> Vec<(String, Vec<Delivery>)> {
        let packages: Vec<String> = self
            .running
            .iter()
            .filter(|(_, m)| m.contains_key(user))
            .map(|(p, _)| p.clone())
            .collect();
        packages
            .into_iter()
            .map(|p| {
                let out = self.absent(&p, user, ts);
                (p, out)
            })
            .collect()
    }

    /// Every app `user` runs, with its app session id.
    pub fn apps_of(&self, user: &str) -> Vec<(String, String)> {
        let mut apps: Vec<(String, String)> = self
            .running
            .iter()
            .filter_map(|(p, m)| m.get(user).map(|m| (p.clone(), m.session_id.clone())))
            .collect();
        apps.sort();
        apps
    }

    /// The session id under which `user` runs `package`.
    pub fn session_of(&self, package: &str, user: &str) -> Option<&str> {
        self.running
            .get(package)?
            .get(user)
            .map(|m| m.session_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(out: &[Delivery], user: &str) -> Vec<String> {
        out.iter()
            .filter(|(u, _)| u == user)
            .filter_map(|(_, t)| serde_json::from_str::<Value>(t).ok())
            .map(|v| v["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn only_users_of_the_same_app_meet() {
        let mut c = Community::default();
        assert!(c.present("com.chat", "ann", "ann-com.chat", "t").is_empty());
        let out = c.present("com.chat", "bob", "bob-com.chat", "t");
        assert_eq!(types(&out, "ann"), vec!["app_user_joined"]);
        c.present("com.other", "cid", "cid-com.other", "t");
        assert_eq!(
            c.broadcast_to("com.chat", "ann", None),
            Ok(vec!["bob".to_string()])
        );
        assert!(c.direct_to("com.chat", "ann", "cid").is_err());
        assert!(c.direct_to("com.chat", "ann", "bob").is_ok());
        assert!(
            c.direct_to("com.other", "ann", "cid").is_err(),
            "ann does not run com.other"
        );
        let found = c.discover("com.chat", "ann", false, "t");
        assert_eq!(found["totalUsers"], 1);
        assert_eq!(found["users"][0]["userId"], "bob");
        let out = c.absent("com.chat", "bob", "t");
        assert_eq!(types(&out, "ann"), vec!["app_user_left"]);
        assert_eq!(c.discover("com.chat", "ann", false, "t")["totalUsers"], 0);
    }

    #[test]
    fn a_user_whose_session_ended_leaves_every_app() {
        let mut c = Community::default();
        for p in ["com.a", "com.b"] {
            c.present(p, "ann", "s", "t");
            c.present(p, "bob", "s", "t");
        }
        let out = c.forget("bob", "t");
        assert_eq!(out.len(), 2);
        for (_, d) in &out {
            assert_eq!(types(d, "ann"), vec!["app_user_left"]);
        }
        assert!(!c.runs("com.a", "bob") && !c.runs("com.b", "bob"));
    }

    #[test]
    fn rooms_are_bounded_and_tell_their_members() {
        let mut c = Community::default();
        for u in ["ann", "bob", "cid"] {
            c.present("com.chat", u, &format!("{u}-com.chat"), "t");
        }
        let out = c
            .join(
                "com.chat",
                "ann",
                "ann-s",
                "lobby",
                Some(2),
                false,
                None,
                "t",
            )
            .expect("created");
        assert_eq!(types(&out, "ann"), vec!["app_room_updated"]);
        let out = c
            .join("com.chat", "bob", "bob-s", "lobby", None, false, None, "t")
            .expect("joined");
        assert_eq!(
            types(&out, "ann"),
            vec!["app_user_joined", "app_room_updated"]
        );
        assert!(
            c.join("com.chat", "cid", "cid-s", "lobby", None, false, None, "t")
                .is_err(),
            "full"
        );
        assert_eq!(
            c.broadcast_to("com.chat", "ann", Some("lobby")),
            Ok(vec!["bob".to_string()])
        );
        assert!(c.broadcast_to("com.chat", "cid", Some("lobby")).is_err());
        // Bob's app stops: he leaves the room too.
        let out = c.absent("com.chat", "bob", "t");
        assert!(types(&out, "ann").contains(&"app_user_left".to_string()));
        let out = c.leave("com.chat", "ann", "ann-s", "lobby", "t");
        let closed: Value = serde_json::from_str(&out[0].1).unwrap_or_default();
        assert_eq!(closed["updateType"], "room_closed");
        for n in 0..MAX_ROOMS_PER_USER {
            assert!(c
                .join(
                    "com.chat",
                    "ann",
                    "s",
                    &format!("r{n}"),
                    None,
                    false,
                    None,
                    "t"
                )
                .is_ok());
        }
        assert!(c
            .join("com.chat", "ann", "s", "one-more", None, false, None, "t")
            .is_err());
    }
}
