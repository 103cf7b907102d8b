//! The arbitration rules (protocol reference §7.2) as methods of
//! [`DisplayManager`]: what happens to an app's request, how the boot phase
//! begins and ends, what "show next" picks, and what an app stop takes down.

use std::time::Instant;

use serde_json::{Map, Value};

use super::{
    ActiveDisplay, BackgroundLock, BootPhase, DisplayManager, DisplaySource, GlassesDisplay,
    PendingDisplay,
};

impl DisplayManager {
    // ------------------------------------------------------- requests --

    /// An app's request (never the dashboard's): queued during boot, else
    /// checked against the core-app or background-lock rule, then sent or
    /// throttled. A rejected request is dropped.
    pub(super) fn arbitrate(&mut self, display: GlassesDisplay, now: Instant) {
        if !self.running.contains(&display.package_name) {
            return;
        }
        if let Some(boot) = &mut self.boot {
            boot.enqueue(display, now);
            return;
        }
        if self.is_core(&display.package_name) {
            let active = self.activate(display, DisplaySource::App, now);
            self.core_display = Some(active.clone());
            if !self.core_blocked_by_background(now) {
                self.throttle_or_send(active, now);
            }
        } else if self.try_take_lock(&display.package_name, now) {
            let active = self.activate(display, DisplaySource::App, now);
            self.throttle_or_send(active, now);
        }
    }

    /// The core app may not replace a different app that holds the lock and
    /// is on screen.
    fn core_blocked_by_background(&self, now: Instant) -> bool {
        self.lock.as_ref().is_some_and(|lock| {
            now < lock.expires_at
                && !self.is_core(&lock.holder)
                && self.current_app_owner() == Some(lock.holder.as_str())
        })
    }

    /// Whether a non-core app may display, taking the lock when it may.
    fn try_take_lock(&mut self, package: &str, now: Instant) -> bool {
        let may_take = match &self.lock {
            Some(lock) if lock.holder == package => return true,
            None => true,
            Some(lock) => self.is_core(&lock.holder) || !self.running.contains(&lock.holder),
        };
        if may_take {
            self.lock = Some(BackgroundLock {
                holder: package.to_string(),
                expires_at: now + self.config.lock_duration,
                last_active: now,
            });
        }
        may_take
    }

    /// A lock past its lifetime is gone; the next app that asks takes it.
    pub(super) fn drop_expired_lock(&mut self, now: Instant) {
        if self
            .lock
            .as_ref()
            .is_some_and(|lock| now >= lock.expires_at)
        {
            self.lock = None;
        }
    }

    /// Sends now, or, inside the throttle window and without
    /// `forceDisplay`, puts the request in its app's throttle slot (a later
    /// request of the app replaces it and goes to the back).
    fn throttle_or_send(&mut self, active: ActiveDisplay, now: Instant) {
        let in_window = self
            .last_main_send
            .is_some_and(|sent| now.saturating_duration_since(sent) < self.config.throttle);
        if in_window && !active.display.force_display {
            let package = active.owner().to_string();
            self.throttled.retain(|p| p.display.package_name != package);
            self.throttled.push(PendingDisplay {
                display: active.display,
                queued_at: now,
            });
        } else {
            self.send_app_display(active, now);
        }
    }

    /// The throttle window is over: the oldest waiting request goes out.
    pub(super) fn flush_oldest_throttled(&mut self, now: Instant) {
        if let Some(pending) = self.take_oldest_throttled() {
            self.show_pending(pending, now);
        }
    }

    fn take_oldest_throttled(&mut self) -> Option<PendingDisplay> {
        let running = &self.running;
        self.throttled
            .retain(|p| running.contains(&p.display.package_name));
        (!self.throttled.is_empty()).then(|| self.throttled.remove(0))
    }

    /// Shows a request that waited (throttled or queued during boot); its
    /// lifetime starts now.
    fn show_pending(&mut self, pending: PendingDisplay, now: Instant) {
        let active = self.activate(pending.display, DisplaySource::App, now);
        if self.is_core(active.owner()) {
            self.core_display = Some(active.clone());
        }
        self.send_app_display(active, now);
    }

    /// Puts an app's display on screen, with the lock bookkeeping: the core
    /// app displaying while the holder is off screen releases the lock, and
    /// the holder displaying refreshes its activity.
    fn send_app_display(&mut self, active: ActiveDisplay, now: Instant) {
        if self.is_core(active.owner()) {
            let holder_on_screen = self
                .lock
                .as_ref()
                .is_some_and(|lock| self.current_app_owner() == Some(lock.holder.as_str()));
            if !holder_on_screen {
                self.lock = None;
            }
        }
        if let Some(lock) = self.lock.as_mut() {
            if lock.holder == active.owner() {
                lock.last_active = now;
            }
        }
        self.put_on_screen(active, now);
    }

    fn put_on_screen(&mut self, active: ActiveDisplay, now: Instant) {
        self.last_main_send = Some(now);
        self.effects
            .push(super::DisplayOutput::Show(active.display.clone()));
        self.current = Some(active);
    }

    fn activate(
        &mut self,
        display: GlassesDisplay,
        source: DisplaySource,
        now: Instant,
    ) -> ActiveDisplay {
        self.next_serial += 1;
        ActiveDisplay {
            display,
            source,
            since: now,
            serial: self.next_serial,
        }
    }

    fn current_app_owner(&self) -> Option<&str> {
        self.current
            .as_ref()
            .filter(|d| d.source == DisplaySource::App)
            .map(ActiveDisplay::owner)
    }

    // ----------------------------------------------------------- boot --

    /// An app starts: it joins the booting set and the boot screen shows.
    /// When this opens the boot phase, the valid app display on screen is
    /// saved and throttled requests move into the boot queue.
    pub(super) fn begin_boot(&mut self, package: &str, now: Instant) {
        let boot_until = now + self.config.boot_screen;
        if let Some(boot) = &mut self.boot {
            if !boot.booting.iter().any(|p| p == package) {
                boot.booting.push(package.to_string());
            }
            boot.not_before = boot.not_before.max(boot_until);
        } else {
            let undated = self.config.undated_validity;
            self.saved_before_boot = self.current.clone().filter(|d| {
                d.source == DisplaySource::App
                    && self.running.contains(d.owner())
                    && d.is_valid(now, undated)
            });
            let mut boot = BootPhase {
                booting: vec![package.to_string()],
                not_before: boot_until,
                queue: Vec::new(),
            };
            for pending in std::mem::take(&mut self.throttled) {
                boot.enqueue(pending.display, pending.queued_at);
            }
            self.boot = Some(boot);
        }
        self.show_boot_screen(now);
    }

    /// The app connected: it leaves the booting set.
    pub(super) fn finish_booting(&mut self, package: &str, now: Instant) {
        if let Some(boot) = &mut self.boot {
            let before = boot.booting.len();
            boot.booting.retain(|p| p != package);
            if boot.booting.len() != before {
                self.show_boot_screen(now);
            }
        }
    }

    /// Shows the boot screen naming the booting apps, unless it already
    /// shows exactly that (or no app is booting any more).
    fn show_boot_screen(&mut self, now: Instant) {
        let Some(boot) = &self.boot else {
            return;
        };
        if boot.booting.is_empty() {
            return;
        }
        let plural = if boot.booting.len() > 1 { "s" } else { "" };
        let mut layout = Map::new();
        layout.insert("layoutType".into(), "reference_card".into());
        layout.insert(
            "title".into(),
            Value::String(format!("// MentraOS - Starting App{plural}")),
        );
        let names: Vec<&str> = boot
            .booting
            .iter()
            .map(|p| self.app_names.get(p).map_or(p.as_str(), String::as_str))
            .collect();
        layout.insert("text".into(), Value::String(names.join(", ")));
        let already_shown = self
            .current
            .as_ref()
            .is_some_and(|d| d.source == DisplaySource::BootScreen && d.display.layout == layout);
        if !already_shown {
            let display = self.system_display(layout, None);
            let active = self.activate(display, DisplaySource::BootScreen, now);
            self.put_on_screen(active, now);
        }
    }

    /// No app is booting and the boot screen had its time: the core app's
    /// queued request shows, else the first queued one, else the display
    /// saved before boot, else "show next". Queued requests not shown are
    /// then arbitrated as if they arrived now.
    pub(super) fn complete_boot(&mut self, now: Instant) {
        let Some(boot) = self.boot.take() else {
            return;
        };
        let saved = self.saved_before_boot.take();
        let mut queue = boot.queue;
        queue.retain(|p| self.running.contains(&p.display.package_name));
        let core_slot = queue
            .iter()
            .position(|p| self.is_core(&p.display.package_name));
        let chosen = match core_slot {
            Some(index) => Some(queue.remove(index)),
            None if !queue.is_empty() => Some(queue.remove(0)),
            None => None,
        };
        if let Some(pending) = chosen {
            let owner = pending.display.package_name.clone();
            if !self.is_core(&owner) {
                // Shown regardless; it takes the lock if it is free.
                self.try_take_lock(&owner, now);
            }
            self.show_pending(pending, now);
            for leftover in queue {
                self.arbitrate(leftover.display, now);
            }
            return;
        }
        let undated = self.config.undated_validity;
        if let Some(saved) =
            saved.filter(|d| self.running.contains(d.owner()) && d.is_valid(now, undated))
        {
            self.send_app_display(saved, now);
            return;
        }
        self.show_next(now);
    }

    // ------------------------------------------------------ show next --

    /// Picks what the main view shows after an expiry, an app stop or the
    /// end of boot: the boot screen, the oldest throttled request, the lock
    /// holder's display, the core app's display, or nothing (clear).
    pub(super) fn show_next(&mut self, now: Instant) {
        if self.boot.is_some() {
            // Completion takes over once the last app connected.
            self.show_boot_screen(now);
            return;
        }
        if let Some(pending) = self.take_oldest_throttled() {
            self.show_pending(pending, now);
            return;
        }
        if let Some(lock) = self.lock.take() {
            if self.lock_keeps_screen(&lock, now) {
                self.lock = Some(lock);
                return;
            }
        }
        let undated = self.config.undated_validity;
        if let Some(core) = self
            .core_display
            .clone()
            .filter(|d| d.is_valid(now, undated))
        {
            let on_screen = self
                .current
                .as_ref()
                .is_some_and(|c| c.serial == core.serial);
            if !on_screen {
                self.send_app_display(core, now);
            }
            return;
        }
        self.clear_screen(now);
    }

    /// The holder keeps the screen while its lock is live, it displayed
    /// recently and its display is on screen and still valid.
    fn lock_keeps_screen(&self, lock: &BackgroundLock, now: Instant) -> bool {
        let undated = self.config.undated_validity;
        self.running.contains(&lock.holder)
            && now < lock.expires_at
            && now.saturating_duration_since(lock.last_active) <= self.config.lock_idle_release
            && self.current.as_ref().is_some_and(|d| {
                d.source == DisplaySource::App
                    && d.owner() == lock.holder
                    && d.is_valid(now, undated)
            })
    }

    /// Empties the main view, unless it is already empty.
    fn clear_screen(&mut self, now: Instant) {
        if self
            .current
            .as_ref()
            .is_some_and(|d| d.source == DisplaySource::Clear)
        {
            return;
        }
        let mut layout = Map::new();
        layout.insert("layoutType".into(), "text_wall".into());
        layout.insert("text".into(), "".into());
        let display = self.system_display(layout, Some(0));
        let active = self.activate(display, DisplaySource::Clear, now);
        self.put_on_screen(active, now);
    }

    /// A main-view display in the dashboard's name.
    fn system_display(
        &self,
        layout: Map<String, Value>,
        duration_ms: Option<u64>,
    ) -> GlassesDisplay {
        GlassesDisplay {
            package_name: self.config.dashboard_package.clone(),
            view: "main".into(),
            layout,
            duration_ms,
            force_display: false,
        }
    }

    // ------------------------------------------------------- app stop --

    /// Drops everything of a stopped app: booting entry, queued and
    /// throttled requests, lock, current and saved displays, core-app
    /// marker. Returns false for an app that was neither running nor
    /// booting (nothing changed).
    pub(super) fn forget_app(&mut self, package: &str) -> bool {
        let was_running = self.running.remove(package);
        let mut was_booting = false;
        if let Some(boot) = &mut self.boot {
            let before = boot.booting.len();
            boot.booting.retain(|p| p != package);
            was_booting = boot.booting.len() != before;
            boot.queue.retain(|p| p.display.package_name != package);
        }
        if !was_running && !was_booting {
            return false;
        }
        self.throttled.retain(|p| p.display.package_name != package);
        if self
            .lock
            .as_ref()
            .is_some_and(|lock| lock.holder == package)
        {
            self.lock = None;
        }
        if self.current_app_owner() == Some(package) {
            // Whatever "show next" picks replaces it, the clear screen at
            // the least.
            self.current = None;
        }
        if self
            .saved_before_boot
            .as_ref()
            .is_some_and(|d| d.owner() == package)
        {
            self.saved_before_boot = None;
        }
        if self.is_core(package) {
            self.core_app = None;
            self.core_display = None;
        }
        true
    }
}

impl BootPhase {
    /// Queues a request during boot: one slot per app, the latest request
    /// wins and keeps the slot's place.
    fn enqueue(&mut self, display: GlassesDisplay, now: Instant) {
        match self
            .queue
            .iter_mut()
            .find(|p| p.display.package_name == display.package_name)
        {
            Some(slot) => slot.display = display,
            None => self.queue.push(PendingDisplay {
                display,
                queued_at: now,
            }),
        }
    }
}
