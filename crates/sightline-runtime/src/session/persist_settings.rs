//! Keeping the store's copy of the user's MentraOS settings in step with
//! what the phone reports, in order.
//!
//! Each change the session takes in replaces, key by key, any earlier value
//! not written yet, and one writer task writes the waiting keys in one call
//! at a time — so two quick changes of a setting can never land in the
//! wrong order. Like the running-apps writer, it outlives the session
//! actor, and what waits is at most one value per known setting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sightline_store::Store;
use tokio::sync::Notify;

#[derive(Default)]
struct Pending {
    changes: Mutex<Map<String, Value>>,
    wake: Notify,
    closed: AtomicBool,
}

/// The session's handle on its settings writer.
pub(super) struct SettingsWriter {
    pending: Arc<Pending>,
}

impl SettingsWriter {
    /// Starts the writer task for `user`. Must run inside an actix system.
    pub(super) fn start(store: Arc<dyn Store>, user: String) -> Self {
        let pending = Arc::new(Pending::default());
        actix::spawn(write_in_order(store, user, pending.clone()));
        SettingsWriter { pending }
    }

    /// Records changed settings to be written.
    pub(super) fn set(&self, changes: Map<String, Value>) {
        lock(&self.pending.changes).extend(changes);
        self.pending.wake.notify_one();
    }
}

impl Drop for SettingsWriter {
    fn drop(&mut self) {
        self.pending.closed.store(true, Ordering::Release);
        self.pending.wake.notify_one();
    }
}

fn lock(m: &Mutex<Map<String, Value>>) -> std::sync::MutexGuard<'_, Map<String, Value>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn write_in_order(store: Arc<dyn Store>, user: String, pending: Arc<Pending>) {
    loop {
        let next = std::mem::take(&mut *lock(&pending.changes));
        if !next.is_empty() {
            if let Err(e) = store.set_mentraos_settings(&user, next).await {
                tracing::warn!(user = %user, error = %e, "could not store MentraOS settings");
            }
            continue;
        }
        // `notify_one` keeps a permit when no one waits, so a change or
        // the close that lands between these lines still wakes the writer.
        if pending.closed.load(Ordering::Acquire) {
            return;
        }
        pending.wake.notified().await;
    }
}
