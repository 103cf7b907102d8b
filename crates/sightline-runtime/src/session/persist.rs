//! Keeping the store's list of a user's running apps in step with the
//! session, in the order things happened.
//!
//! The session decides at once that an app runs or stopped; the store learns
//! it a moment later. Each decision replaces any earlier one for the same
//! app that has not been written yet, and one writer task writes them one
//! at a time, so a quick start then stop can never land as "running". The
//! writer outlives the session actor (a session that ends still has its
//! last decisions written), and the waiting decisions are at most one per
//! app.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sightline_store::Store;
use tokio::sync::Notify;

/// The decisions waiting to be written, and the writer's wake-up.
#[derive(Default)]
struct Pending {
    /// Package → whether it runs; the latest decision per app.
    apps: Mutex<BTreeMap<String, bool>>,
    wake: Notify,
    /// The session is gone: write what waits, then end.
    closed: AtomicBool,
}

/// The session's handle on its writer. Dropping it lets the writer finish
/// what is waiting and end.
pub(super) struct RunningAppsWriter {
    pending: Arc<Pending>,
}

impl RunningAppsWriter {
    /// Starts the writer task for `user`. Must run inside an actix system.
    pub(super) fn start(store: Arc<dyn Store>, user: String) -> Self {
        let pending = Arc::new(Pending::default());
        actix::spawn(write_in_order(store, user, pending.clone()));
        RunningAppsWriter { pending }
    }

    /// Records that `package` runs (or no longer does).
    pub(super) fn set(&self, package: &str, running: bool) {
        lock(&self.pending.apps).insert(package.to_string(), running);
        self.pending.wake.notify_one();
    }
}

impl Drop for RunningAppsWriter {
    fn drop(&mut self) {
        self.pending.closed.store(true, Ordering::Release);
        self.pending.wake.notify_one();
    }
}

fn lock(m: &Mutex<BTreeMap<String, bool>>) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes decisions one at a time until the session is gone and nothing
/// waits.
async fn write_in_order(store: Arc<dyn Store>, user: String, pending: Arc<Pending>) {
    loop {
        let next = lock(&pending.apps).pop_first();
        match next {
            Some((package, running)) => {
                let result = if running {
                    store.add_running_app(&user, &package).await
                } else {
                    store.remove_running_app(&user, &package).await
                };
                if let Err(e) = result {
                    tracing::error!(user = %user, package = %package, running, error = %e, "could not persist whether the app runs");
                }
            }
            // `notify_one` keeps a permit when no one waits, so a decision
            // or the close that lands between these two lines still wakes
            // the writer.
            None if pending.closed.load(Ordering::Acquire) => return,
            None => pending.wake.notified().await,
        }
    }
}
