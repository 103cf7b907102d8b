//! The dashboard's built-in system sections, filled from what the glasses
//! report: the time in the user's zone, the glasses battery, the number of
//! unread phone notifications and the next calendar event.

use std::collections::VecDeque;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// Notifications remembered as unread at most; older ones are forgotten
/// first (a phone that never reports dismissals cannot grow the session).
pub const MAX_UNREAD: usize = 200;
/// Calendar events remembered at most; the ones further out go first.
pub const MAX_CALENDAR_EVENTS: usize = 50;

/// The four places around the dashboard's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    TopLeft = 0,
    TopRight = 1,
    BottomLeft = 2,
    BottomRight = 3,
}

impl Section {
    pub fn parse(name: &str) -> Option<Section> {
        match name {
            "topLeft" => Some(Section::TopLeft),
            "topRight" => Some(Section::TopRight),
            "bottomLeft" => Some(Section::BottomLeft),
            "bottomRight" => Some(Section::BottomRight),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct CalendarEntry {
    id: String,
    title: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// What Sightline knows for the built-in sections.
#[derive(Debug, Default)]
pub struct BuiltinSections {
    timezone: Option<Tz>,
    battery: Option<(i64, bool)>,
    /// Ids of unread notifications, oldest first.
    unread: VecDeque<String>,
    calendar: Vec<CalendarEntry>,
    /// Names notifications without an id.
    anonymous_notifications: u64,
}

impl BuiltinSections {
    /// Whether events of this kind can change a section.
    pub fn interested_in(kind: &str) -> bool {
        matches!(
            kind,
            "glasses_battery_update"
                | "phone_notification"
                | "phone_notification_dismissed"
                | "calendar_event"
        )
    }

    pub fn set_timezone(&mut self, name: &str) -> bool {
        match name.parse::<Tz>() {
            Ok(tz) => {
                self.timezone = Some(tz);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes in an event; returns whether a section changed.
    pub fn observe(&mut self, kind: &str, fields: &Map<String, Value>, now: DateTime<Utc>) -> bool {
        let text = |key: &str| fields.get(key).and_then(Value::as_str);
        match kind {
            "glasses_battery_update" => {
                let Some(level) = fields.get("level").and_then(Value::as_f64) else {
                    return false;
                };
                let charging = fields
                    .get("charging")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let next = Some((level.clamp(0.0, 100.0).round() as i64, charging));
                let changed = self.battery != next;
                self.battery = next;
                changed
            }
            "phone_notification" => {
                let id = match text("notificationId") {
                    Some(id) if !id.is_empty() => id.to_string(),
                    _ => {
                        self.anonymous_notifications += 1;
                        format!("#{}", self.anonymous_notifications)
                    }
                };
                if self.unread.contains(&id) {
                    return false;
                }
                self.unread.push_back(id);
                if self.unread.len() > MAX_UNREAD {
                    self.unread.pop_front();
                }
                true
            }
            "phone_notification_dismissed" => {
                let Some(id) = text("notificationId") else {
                    return false;
                };
                let before = self.unread.len();
                self.unread.retain(|u| u != id);
                before != self.unread.len()
            }
            "calendar_event" => self.add_calendar_event(fields, now),
            _ => false,
        }
    }

    fn add_calendar_event(&mut self, fields: &Map<String, Value>, now: DateTime<Utc>) -> bool {
        let text = |key: &str| fields.get(key).and_then(Value::as_str);
        if let Some(zone) = text("timezone") {
            self.set_timezone(zone);
        }
        let Some(start) = fields.get("dtStart").and_then(parse_instant) else {
            return false;
        };
        let end = fields.get("dtEnd").and_then(parse_instant).unwrap_or(start);
        let id = text("eventId").unwrap_or_default().to_string();
        let title = text("title").unwrap_or("Event").to_string();
        self.calendar.retain(|e| id.is_empty() || e.id != id);
        self.calendar.retain(|e| e.end > now);
        self.calendar.push(CalendarEntry {
            id,
            title,
            start,
            end,
        });
        self.calendar.sort_by_key(|e| e.start);
        self.calendar.truncate(MAX_CALENDAR_EVENTS);
        true
    }

    /// The built-in text of a section at `now`, if it has any.
    pub fn text(&self, section: Section, now: DateTime<Utc>) -> Option<String> {
        match section {
            Section::TopLeft => Some(self.in_zone(now, "%a %b %-d, %-H:%M")),
            Section::TopRight => self.battery.map(|(level, charging)| {
                if charging {
                    format!("{level}% charging")
                } else {
                    format!("{level}%")
                }
            }),
            Section::BottomLeft => match self.unread.len() {
                0 => None,
                1 => Some("1 notification".into()),
                n => Some(format!("{n} notifications")),
            },
            Section::BottomRight => self
                .calendar
                .iter()
                .find(|e| e.end > now || e.start >= now)
                .map(|e| {
                    let at = self.in_zone(e.start, "%-H:%M");
                    format!("{} @ {at}", e.title)
                }),
        }
    }

    fn in_zone(&self, at: DateTime<Utc>, format: &str) -> String {
        match self.timezone {
            Some(tz) => tz
                .from_utc_datetime(&at.naive_utc())
                .format(format)
                .to_string(),
            None => at.format(format).to_string(),
        }
    }
}

/// A calendar instant as phones send it: milliseconds since the epoch (a
/// number or a numeric string) or an RFC 3339 date-time.
fn parse_instant(value: &Value) -> Option<DateTime<Utc>> {
    let millis = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(ms) => Some(ms),
            Err(_) => {
                return DateTime::parse_from_rfc3339(s.trim())
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            }
        },
        _ => None,
    }?;
    DateTime::from_timestamp_millis(millis)
}
