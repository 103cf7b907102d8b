//! The system dashboard: the glanceable card the glasses show in their
//! `dashboard` view, which Sightline runs for every user session without a
//! webhook (protocol reference §8).
//!
//! It has four system sections around the content that apps write:
//!
//! ```text
//!  ┌──────────────────────────────┬─────────────────────────────┐
//!  │ topLeft: time (user's zone)  │ topRight: glasses battery   │
//!  │ bottomLeft: unread count     │ bottomRight: next calendar  │
//!  │                              │ <one app's content, rotated>│
//!  └──────────────────────────────┴─────────────────────────────┘
//! ```
//!
//! The sections are filled by Sightline from what the glasses report
//! (`glasses_battery_update`, `phone_notification[_dismissed]`,
//! `calendar_event`); the system dashboard package may override any of them
//! with `dashboard_system_update` (an empty string hands the section back).
//! Apps write content per mode (`dashboard_content_update`): one entry per
//! app and mode, newest first. In `main` mode one entry shows at a time and
//! looking up (`head_position: up`) rotates to the next; in `expanded` mode
//! the newest expanded entry shows.
//!
//! Like the display manager, this is plain logic with the clock passed in:
//! every input says whether the dashboard must be re-rendered, and
//! [`Dashboard::render`] gives the `display_event` to send.

mod sections;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Map, Value};
use sightline_protocol::glasses::GlassesEvent;

use crate::display::GlassesDisplay;
use sections::{BuiltinSections, Section};

/// Longest app content kept, in characters; the glasses show a few lines.
pub const MAX_CONTENT_CHARS: usize = 1_000;

/// The dashboard's two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardMode {
    Main,
    Expanded,
}

impl DashboardMode {
    pub fn parse(mode: &str) -> Option<Self> {
        match mode {
            "main" => Some(DashboardMode::Main),
            "expanded" => Some(DashboardMode::Expanded),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DashboardMode::Main => "main",
            DashboardMode::Expanded => "expanded",
        }
    }
}

/// One app's content for one mode.
#[derive(Debug, Clone)]
struct ContentEntry {
    package: String,
    text: String,
    written_at: DateTime<Utc>,
}

/// The dashboard of one user session. See the module docs.
#[derive(Debug)]
pub struct Dashboard {
    package: String,
    mode: DashboardMode,
    main: Vec<ContentEntry>,
    expanded: Vec<ContentEntry>,
    /// Overrides set by the system dashboard package, by section.
    overrides: [Option<String>; 4],
    builtin: BuiltinSections,
    /// Which main-mode entry shows; advanced by looking up.
    rotation: usize,
}

impl Dashboard {
    /// A dashboard attributed to the system dashboard `package`.
    pub fn new(package: &str) -> Self {
        Dashboard {
            package: package.to_string(),
            mode: DashboardMode::Main,
            main: Vec::new(),
            expanded: Vec::new(),
            overrides: Default::default(),
            builtin: BuiltinSections::default(),
            rotation: 0,
        }
    }

    /// Sets the user's time zone (an IANA name such as `Europe/Berlin`).
    /// Returns whether it was understood.
    pub fn set_timezone(&mut self, name: &str) -> bool {
        self.builtin.set_timezone(name)
    }

    /// An app wrote content for some modes (none given means `main`).
    /// Returns whether the dashboard must be re-rendered: only when the
    /// content is for the mode showing.
    pub fn set_content(
        &mut self,
        package: &str,
        content: String,
        modes: &[String],
        now: DateTime<Utc>,
    ) -> bool {
        let text: String = content.chars().take(MAX_CONTENT_CHARS).collect();
        let mut wanted: Vec<DashboardMode> = modes
            .iter()
            .filter_map(|m| DashboardMode::parse(m))
            .collect();
        if modes.is_empty() {
            wanted.push(DashboardMode::Main);
        }
        for mode in &wanted {
            let store = match mode {
                DashboardMode::Main => &mut self.main,
                DashboardMode::Expanded => &mut self.expanded,
            };
            store.retain(|e| e.package != package);
            store.insert(
                0,
                ContentEntry {
                    package: package.to_string(),
                    text: text.clone(),
                    written_at: now,
                },
            );
            // Newest first; of two written at the same instant, the later.
            store.sort_by_key(|e| std::cmp::Reverse(e.written_at));
        }
        wanted.contains(&self.mode)
    }

    /// The system dashboard package set a section (`topLeft`, `topRight`,
    /// `bottomLeft`, `bottomRight`); an empty string hands it back to
    /// Sightline's built-in content. Returns false for an unknown section.
    pub fn set_system_section(&mut self, section: &str, content: String) -> bool {
        let Some(section) = Section::parse(section) else {
            return false;
        };
        let text: String = content.chars().take(MAX_CONTENT_CHARS).collect();
        self.overrides[section as usize] = (!text.is_empty()).then_some(text);
        true
    }

    /// Switches modes.
    pub fn set_mode(&mut self, mode: DashboardMode) {
        self.mode = mode;
    }

    /// Forgets a stopped app's content. Returns whether anything went.
    pub fn remove_app(&mut self, package: &str) -> bool {
        let before = self.main.len() + self.expanded.len();
        self.main.retain(|e| e.package != package);
        self.expanded.retain(|e| e.package != package);
        before != self.main.len() + self.expanded.len()
    }

    /// Lets the dashboard see a glasses event. Returns whether it must be
    /// re-rendered.
    pub fn observe(&mut self, event: &GlassesEvent, now: DateTime<Utc>) -> bool {
        if event.kind == "head_position" {
            return self.head_position(event);
        }
        if !BuiltinSections::interested_in(&event.kind) {
            return false;
        }
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(event.json.get()) else {
            return false;
        };
        self.builtin.observe(&event.kind, &fields, now)
    }

    /// Looking up in main mode with more than one app's content shows the
    /// next one.
    fn head_position(&mut self, event: &GlassesEvent) -> bool {
        let up = serde_json::from_str::<Value>(event.json.get())
            .ok()
            .and_then(|v| v.get("position").and_then(Value::as_str).map(|p| p == "up"))
            .unwrap_or(false);
        if up && self.mode == DashboardMode::Main && self.main.len() > 1 {
            self.rotation = self.rotation.wrapping_add(1);
            return true;
        }
        false
    }

    fn section(&self, section: Section, now: DateTime<Utc>) -> Option<String> {
        self.overrides[section as usize]
            .clone()
            .or_else(|| self.builtin.text(section, now))
    }

    /// The dashboard as it looks at `now`: a `display_event` for the
    /// `dashboard` view, attributed to the dashboard package.
    pub fn render(&self, now: DateTime<Utc>) -> GlassesDisplay {
        let top_left = self.section(Section::TopLeft, now).unwrap_or_default();
        let top_right = self.section(Section::TopRight, now).unwrap_or_default();
        let layout = match self.mode {
            DashboardMode::Main => {
                let mut top = top_left;
                if let Some(bl) = self.section(Section::BottomLeft, now) {
                    top.push('\n');
                    top.push_str(&bl);
                }
                let mut bottom = top_right;
                bottom.push('\n');
                if let Some(br) = self.section(Section::BottomRight, now) {
                    bottom.push_str(&br);
                    bottom.push_str("\n\n");
                }
                if !self.main.is_empty() {
                    bottom.push_str(&self.main[self.rotation % self.main.len()].text);
                }
                json!({"layoutType": "double_text_wall", "topText": top, "bottomText": bottom})
            }
            DashboardMode::Expanded => {
                let content = self
                    .expanded
                    .first()
                    .map_or("No expanded content available", |e| e.text.as_str());
                json!({
                    "layoutType": "text_wall",
                    "text": format!("{top_left} | {top_right}\n{content}"),
                })
            }
        };
        GlassesDisplay {
            package_name: self.package.clone(),
            view: "dashboard".into(),
            layout: match layout {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            duration_ms: None,
            force_display: false,
        }
    }
}

/// How long until the next minute starts, when the clock section changes.
pub fn until_next_minute(now: DateTime<Utc>) -> Duration {
    let into_minute = Duration::from_secs(u64::from(now.second()))
        + Duration::from_nanos(u64::from(now.nanosecond() % 1_000_000_000));
    Duration::from_secs(60).saturating_sub(into_minute) + Duration::from_millis(5)
}
