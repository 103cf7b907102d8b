//! A store that can be switched off: every call fails (after a short delay,
//! as a database that stopped answering would) until it is switched back
//! on. It can also be made slow for app lookups and for recording a running
//! app, and counts the running-app writes it completed. Wraps a real
//! [`MemoryStore`]; used by the store-outage and session-ordering tests.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sightline::store::{
    AppRecord, MemoryStore, StorageEntries, StorageWrite, Store, StoreError, UserRecord,
};

#[derive(Default)]
pub struct OutageStore {
    inner: MemoryStore,
    down: AtomicBool,
    /// Milliseconds each `get_app` takes.
    lookup_delay_ms: AtomicU64,
    /// Milliseconds each `add_running_app` takes.
    add_running_delay_ms: AtomicU64,
    /// Completed `add_running_app` and `remove_running_app` calls.
    pub running_writes: AtomicUsize,
}

impl OutageStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn set_lookup_delay(&self, d: Duration) {
        self.lookup_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_add_running_delay(&self, d: Duration) {
        self.add_running_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    async fn delay(ms: &AtomicU64) {
        let ms = ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    async fn gate(&self, op: &'static str) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Err(StoreError::Timeout { op, ms: 20 });
        }
        Ok(())
    }
}

#[async_trait]
impl Store for OutageStore {
    fn backend(&self) -> &'static str {
        "outage-test"
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.gate("ping").await?;
        self.inner.ping().await
    }
    async fn create_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.gate("create_app").await?;
        self.inner.create_app(app).await
    }
    async fn upsert_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.gate("upsert_app").await?;
        self.inner.upsert_app(app).await
    }
    async fn get_app(&self, package_name: &str) -> Result<Option<AppRecord>, StoreError> {
        self.gate("get_app").await?;
        Self::delay(&self.lookup_delay_ms).await;
        self.inner.get_app(package_name).await
    }
    async fn list_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.gate("list_apps").await?;
        self.inner.list_apps().await
    }
    async fn delete_app(&self, package_name: &str) -> Result<bool, StoreError> {
        self.gate("delete_app").await?;
        self.inner.delete_app(package_name).await
    }
    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.gate("get_user").await?;
        self.inner.get_user(email).await
    }
    async fn ensure_user(&self, email: &str) -> Result<UserRecord, StoreError> {
        self.gate("ensure_user").await?;
        self.inner.ensure_user(email).await
    }
    async fn add_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.gate("add_running_app").await?;
        Self::delay(&self.add_running_delay_ms).await;
        let r = self.inner.add_running_app(email, package_name).await;
        self.running_writes.fetch_add(1, Ordering::SeqCst);
        r
    }
    async fn remove_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.gate("remove_running_app").await?;
        let r = self.inner.remove_running_app(email, package_name).await;
        self.running_writes.fetch_add(1, Ordering::SeqCst);
        r
    }
    async fn set_app_settings(
        &self,
        email: &str,
        package_name: &str,
        settings: Value,
    ) -> Result<(), StoreError> {
        self.gate("set_app_settings").await?;
        self.inner
            .set_app_settings(email, package_name, settings)
            .await
    }
    async fn update_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.gate("update_app").await?;
        self.inner.update_app(app).await
    }
    async fn set_app_key_hash(&self, package_name: &str, hash: &str) -> Result<(), StoreError> {
        self.gate("set_app_key_hash").await?;
        self.inner.set_app_key_hash(package_name, hash).await
    }
    async fn install_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.gate("install_app").await?;
        self.inner.install_app(email, package_name).await
    }
    async fn uninstall_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        self.gate("uninstall_app").await?;
        self.inner.uninstall_app(email, package_name).await
    }
    async fn set_mentraos_settings(
        &self,
        email: &str,
        changes: Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.gate("set_mentraos_settings").await?;
        self.inner.set_mentraos_settings(email, changes).await
    }
    async fn set_location(&self, email: &str, location: Value) -> Result<(), StoreError> {
        self.gate("set_location").await?;
        self.inner.set_location(email, location).await
    }
    async fn set_timezone(&self, email: &str, timezone: &str) -> Result<(), StoreError> {
        self.gate("set_timezone").await?;
        self.inner.set_timezone(email, timezone).await
    }
    async fn get_storage(&self, email: &str, package: &str) -> Result<StorageEntries, StoreError> {
        self.gate("get_storage").await?;
        self.inner.get_storage(email, package).await
    }
    async fn set_storage(
        &self,
        email: &str,
        package: &str,
        entries: StorageEntries,
        max_bytes: usize,
    ) -> Result<StorageWrite, StoreError> {
        self.gate("set_storage").await?;
        self.inner
            .set_storage(email, package, entries, max_bytes)
            .await
    }
    async fn delete_storage_key(
        &self,
        email: &str,
        package: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.gate("delete_storage_key").await?;
        self.inner.delete_storage_key(email, package, key).await
    }
    async fn clear_storage(&self, email: &str, package: &str) -> Result<bool, StoreError> {
        self.gate("clear_storage").await?;
        self.inner.clear_storage(email, package).await
    }
}
