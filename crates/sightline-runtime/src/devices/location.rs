//! The user's location as the session knows it: the last fix the phone
//! reported (answered again to polls while fresh enough, and replayed to a
//! new subscriber), and the location tier the apps' subscriptions want
//! (the glasses are told when the highest one changes).

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sightline_protocol::device as wire;
use sightline_protocol::outbound;

use sightline_protocol::device::RequestKind;
use sightline_protocol::stream::permission_granted;

use super::{settled, Asker, DeviceEffect, DeviceEffects, DeviceRequests, Outcome, Readiness};

/// Location tiers, lowest first, with how old a fix may be and still be
/// good enough for a poll at that accuracy.
const TIERS: &[(&str, Duration)] = &[
    ("reduced", Duration::from_secs(900)),
    ("threeKilometers", Duration::from_secs(900)),
    ("kilometer", Duration::from_secs(300)),
    ("hundredMeters", Duration::from_secs(60)),
    ("tenMeters", Duration::from_secs(30)),
    ("standard", Duration::from_secs(30)),
    ("high", Duration::from_secs(10)),
    ("realtime", Duration::from_secs(1)),
];

/// The tier named `name`, if it is one.
pub fn tier_of(name: &str) -> Option<&'static str> {
    TIERS.iter().find(|(t, _)| *t == name).map(|(t, _)| *t)
}

fn rank(tier: &str) -> usize {
    TIERS.iter().position(|(t, _)| *t == tier).unwrap_or(0)
}

#[derive(Debug, Default)]
pub struct LocationState {
    /// The last fix (lat, lng, accuracy, timestamp...), and when it came.
    last: Option<(Map<String, Value>, Instant)>,
    /// The tier the glasses were last told.
    tier: Option<&'static str>,
}

impl LocationState {
    /// The phone reported a fix.
    pub(super) fn fixed(&mut self, now: Instant, fix: &Map<String, Value>) {
        let mut kept = Map::new();
        for key in ["lat", "lng", "accuracy", "altitude", "timestamp"] {
            if let Some(v) = fix.get(key) {
                kept.insert(key.into(), v.clone());
            }
        }
        if kept.get("lat").is_some_and(Value::is_number)
            && kept.get("lng").is_some_and(Value::is_number)
        {
            self.last = Some((kept, now));
        }
    }

    /// The last fix as a subscriber gets it, if there is one.
    pub fn last_fix(&self) -> Option<Value> {
        self.last.as_ref().map(|(f, _)| wire::location_for(f, None))
    }

    /// The last fix for a poll at `accuracy`, if it is fresh enough.
    pub(super) fn fresh(
        &self,
        now: Instant,
        accuracy: &str,
        correlation_id: &str,
    ) -> Option<Value> {
        let (fix, at) = self.last.as_ref()?;
        let max_age = TIERS
            .iter()
            .find(|(t, _)| *t == accuracy)
            .map_or(Duration::from_secs(30), |(_, age)| *age);
        (now.saturating_duration_since(*at) <= max_age)
            .then(|| wire::location_for(fix, Some(correlation_id)))
    }

    /// A poll that cannot be answered by the phone: the last fix whatever
    /// its age (it carries its own timestamp), else the app is told why.
    pub(super) fn fallback(
        &self,
        package: &str,
        correlation_id: &str,
        why: &str,
    ) -> Vec<DeviceEffect> {
        match &self.last {
            Some((fix, _)) => vec![DeviceEffect::LocationToApp {
                package: package.into(),
                data: wire::location_for(fix, Some(correlation_id)),
            }],
            None => vec![DeviceEffect::ToApp {
                package: package.into(),
                text: outbound::tpa_connection_error(
                    "LOCATION_UNAVAILABLE",
                    &format!(
                        "Location poll {correlation_id}: {why}, and no earlier location is known"
                    ),
                    &crate::now_iso(),
                ),
            }],
        }
    }

    /// The tiers wanted now; the new highest tier if it changed.
    pub(super) fn want(&mut self, tiers: &[&str]) -> Option<&'static str> {
        let highest = tiers
            .iter()
            .filter_map(|t| tier_of(t))
            .max_by_key(|t| rank(t))
            .unwrap_or("reduced");
        if self.tier == Some(highest) || (self.tier.is_none() && tiers.is_empty()) {
            return None;
        }
        self.tier = Some(highest);
        Some(highest)
    }

    /// The tier the glasses were last told.
    pub fn tier(&self) -> Option<&'static str> {
        self.tier
    }
}

/// Location polls and the tier, as device requests.
impl DeviceRequests {
    pub(super) fn location_poll(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        correlation_id: String,
        accuracy: String,
    ) -> DeviceEffects {
        let package = app.package;
        if !permission_granted(app.permissions, "LOCATION") {
            let why = "Location permission required to read the user's location";
            return vec![
                DeviceEffect::ToApp {
                    package: package.into(),
                    text: outbound::permission_error(
                        &[outbound::PermissionDenied {
                            stream: "location_update".into(),
                            required_permission: "LOCATION".into(),
                            message: why.into(),
                        }],
                        &crate::now_iso(),
                    ),
                },
                settled(
                    RequestKind::Location,
                    package,
                    &correlation_id,
                    Outcome::NoPermission,
                    Duration::ZERO,
                    why.into(),
                ),
            ];
        }
        if let Some(data) = self.location.fresh(now, &accuracy, &correlation_id) {
            return vec![
                DeviceEffect::LocationToApp {
                    package: package.into(),
                    data,
                },
                settled(
                    RequestKind::Location,
                    package,
                    &correlation_id,
                    Outcome::Cached,
                    Duration::ZERO,
                    "a recent fix".into(),
                ),
            ];
        }
        let key = (RequestKind::Location, correlation_id.clone());
        if !glasses.phone || self.pending.contains_key(&key) || !self.has_room(package) {
            let (outcome, why) = if glasses.phone {
                (Outcome::Busy, "Too many location polls waiting")
            } else {
                (Outcome::NotConnected, "The phone is not connected")
            };
            let mut fx = self.location.fallback(package, &correlation_id, why);
            fx.push(settled(
                RequestKind::Location,
                package,
                &correlation_id,
                outcome,
                Duration::ZERO,
                why.into(),
            ));
            return fx;
        }
        let tier = tier_of(&accuracy).unwrap_or("standard");
        vec![
            DeviceEffect::ToGlasses(wire::request_single_location(
                tier,
                &correlation_id,
                &crate::now_iso(),
            )),
            self.wait(
                now,
                RequestKind::Location,
                package,
                &correlation_id,
                self.config.location_deadline,
                None,
            ),
        ]
    }

    /// The location tiers the apps' subscriptions want now; the glasses
    /// are told when the highest changes.
    pub fn location_wanted(&mut self, tiers: &[&str], phone: bool) -> DeviceEffects {
        match self.location.want(tiers) {
            Some(tier) if phone => vec![DeviceEffect::ToGlasses(wire::set_location_tier(
                tier,
                &crate::now_iso(),
            ))],
            _ => Vec::new(),
        }
    }

    /// The glasses (re)connected: they learn the location tier again.
    pub fn glasses_connected(&self) -> DeviceEffects {
        match self.location.tier() {
            Some(tier) => vec![DeviceEffect::ToGlasses(wire::set_location_tier(
                tier,
                &crate::now_iso(),
            ))],
            None => Vec::new(),
        }
    }
}
