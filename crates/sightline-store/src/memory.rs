//! In-memory backend: for tests and throwaway servers. Nothing survives a
//! restart.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::record::now_iso;
use crate::simple_storage::merged;
use crate::{AppRecord, StorageEntries, StorageWrite, Store, StoreError, UserRecord};

#[derive(Default)]
struct Data {
    apps: HashMap<String, AppRecord>,
    users: HashMap<String, UserRecord>,
    /// Simple storage by (user, package).
    storage: HashMap<(String, String), StorageEntries>,
}

fn storage_key(email: &str, package_name: &str) -> (String, String) {
    (email.to_string(), package_name.to_string())
}

/// A [`Store`] held in process memory.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> Result<T, StoreError> {
        // A poisoned lock only means another caller panicked mid-update of
        // plain maps; the data is still usable.
        let mut guard = match self.data.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Ok(f(&mut guard))
    }

    fn update_user(&self, email: &str, f: impl FnOnce(&mut UserRecord)) -> Result<(), StoreError> {
        self.with(|d| {
            let user = d
                .users
                .entry(email.to_string())
                .or_insert_with(|| UserRecord::new(email, now_iso()));
            f(user);
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn create_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.with(|d| {
            if d.apps.contains_key(&app.package_name) {
                return Err(StoreError::Conflict {
                    what: format!("app {}", app.package_name),
                });
            }
            d.apps.insert(app.package_name.clone(), app);
            Ok(())
        })?
    }

    async fn upsert_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.with(|d| {
            d.apps.insert(app.package_name.clone(), app);
        })
    }

    async fn get_app(&self, package_name: &str) -> Result<Option<AppRecord>, StoreError> {
        self.with(|d| d.apps.get(package_name).cloned())
    }

    async fn list_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.with(|d| {
            let mut apps: Vec<_> = d.apps.values().cloned().collect();
            apps.sort_by(|a, b| a.package_name.cmp(&b.package_name));
            apps
        })
    }

    async fn delete_app(&self, package_name: &str) -> Result<bool, StoreError> {
        self.with(|d| d.apps.remove(package_name).is_some())
    }

    async fn update_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.with(|d| match d.apps.get_mut(&app.package_name) {
            Some(existing) => {
                *existing = existing.updated_from(app);
                Ok(())
            }
            None => Err(StoreError::NotFound {
                what: format!("app {}", app.package_name),
            }),
        })?
    }

    async fn set_app_key_hash(
        &self,
        package_name: &str,
        hashed_api_key: &str,
    ) -> Result<(), StoreError> {
        self.with(|d| match d.apps.get_mut(package_name) {
            Some(existing) => {
                existing.hashed_api_key = hashed_api_key.to_string();
                Ok(())
            }
            None => Err(StoreError::NotFound {
                what: format!("app {package_name}"),
            }),
        })?
    }

    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.with(|d| d.users.get(email).cloned())
    }

    async fn ensure_user(&self, email: &str) -> Result<UserRecord, StoreError> {
        self.with(|d| {
            d.users
                .entry(email.to_string())
                .or_insert_with(|| UserRecord::new(email, now_iso()))
                .clone()
        })
    }

    async fn add_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.update_user(email, |u| u.add_running(package_name))
    }

    async fn remove_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.update_user(email, |u| u.remove_running(package_name))
    }

    async fn set_app_settings(
        &self,
        email: &str,
        package_name: &str,
        settings: Value,
    ) -> Result<(), StoreError> {
        self.update_user(email, |u| {
            u.app_settings.insert(package_name.to_string(), settings);
        })
    }

    async fn install_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.update_user(email, |u| u.add_installed(package_name))
    }

    async fn uninstall_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.update_user(email, |u| u.remove_installed(package_name))
    }

    async fn set_mentraos_settings(
        &self,
        email: &str,
        changes: Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.update_user(email, |u| u.merge_mentraos_settings(changes))
    }

    async fn set_location(&self, email: &str, location: Value) -> Result<(), StoreError> {
        self.update_user(email, |u| u.location = Some(location))
    }

    async fn set_timezone(&self, email: &str, timezone: &str) -> Result<(), StoreError> {
        self.update_user(email, |u| u.timezone = Some(timezone.to_string()))
    }

    async fn get_storage(
        &self,
        email: &str,
        package_name: &str,
    ) -> Result<StorageEntries, StoreError> {
        self.with(|d| {
            d.storage
                .get(&storage_key(email, package_name))
                .cloned()
                .unwrap_or_default()
        })
    }

    async fn set_storage(
        &self,
        email: &str,
        package_name: &str,
        entries: StorageEntries,
        max_bytes: usize,
    ) -> Result<StorageWrite, StoreError> {
        self.with(|d| {
            let key = storage_key(email, package_name);
            let current = d.storage.get(&key).cloned().unwrap_or_default();
            let (next, write) = merged(&current, &entries, max_bytes);
            if let Some(next) = next {
                d.storage.insert(key, next);
            }
            write
        })
    }

    async fn delete_storage_key(
        &self,
        email: &str,
        package_name: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.with(|d| {
            let id = storage_key(email, package_name);
            let Some(entries) = d.storage.get_mut(&id) else {
                return false;
            };
            let removed = entries.remove(key).is_some();
            if entries.is_empty() {
                d.storage.remove(&id);
            }
            removed
        })
    }

    async fn clear_storage(&self, email: &str, package_name: &str) -> Result<bool, StoreError> {
        self.with(|d| {
            d.storage
                .remove(&storage_key(email, package_name))
                .is_some_and(|e| !e.is_empty())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn conformance() {
        crate::conformance::run_all(&MemoryStore::new())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent() {
        crate::conformance::concurrent_updates(Arc::new(MemoryStore::new()))
            .await
            .unwrap();
    }
}
