//! Sightline's document store: registered apps, users and the apps'
//! per-user simple storage.
//!
//! The runtime talks to storage only through the async [`Store`] trait, so a
//! deployment chooses its backend without the sessions noticing:
//! [`EmbeddedStore`] (the default, one crash-safe redb file under the data
//! directory), [`MongoStore`] (a MongoDB database shared by cloud
//! instances) or [`MemoryStore`] (tests, throwaway servers). Every backend
//! passes the same [`conformance`] suite.

pub mod conformance;
mod embedded;
mod error;
mod memory;
mod mongo;
mod record;
mod simple_storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use memory::MemoryStore;
pub use mongo::{redact_uri, MongoConfig, MongoStore, DEFAULT_DATABASE};
pub use record::{
    effective_settings, hash_api_key, verify_api_key, AppRecord, AppType, UserRecord,
};
pub use simple_storage::{storage_bytes, StorageEntries, StorageWrite};

/// Persistent state of Sightline. Implementations must make each method
/// atomic: two sessions of the same user may update it at the same time.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend, for logs and `/health`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip proving the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Registers a new app; [`StoreError::Conflict`] if the package exists.
    async fn create_app(&self, app: AppRecord) -> Result<(), StoreError>;
    /// Creates or replaces an app.
    async fn upsert_app(&self, app: AppRecord) -> Result<(), StoreError>;
    async fn get_app(&self, package_name: &str) -> Result<Option<AppRecord>, StoreError>;
    async fn list_apps(&self) -> Result<Vec<AppRecord>, StoreError>;
    /// Removes an app; `false` if there was none.
    async fn delete_app(&self, package_name: &str) -> Result<bool, StoreError>;
    /// Replaces an existing app's details but keeps its API key hash (so
    /// an update never undoes a concurrent key rotation);
    /// [`StoreError::NotFound`] if there is no such app.
    async fn update_app(&self, app: AppRecord) -> Result<(), StoreError>;
    /// Sets an existing app's API key hash (key rotation);
    /// [`StoreError::NotFound`] if there is no such app.
    async fn set_app_key_hash(
        &self,
        package_name: &str,
        hashed_api_key: &str,
    ) -> Result<(), StoreError>;

    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Returns the user, creating the record on first sight.
    async fn ensure_user(&self, email: &str) -> Result<UserRecord, StoreError>;
    /// Adds an app to the user's running apps (restarted on next connect).
    async fn add_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError>;
    async fn remove_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError>;
    /// Stores the user's settings values for one app (an array of
    /// `{key, value, ...}` objects).
    async fn set_app_settings(
        &self,
        email: &str,
        package_name: &str,
        settings: Value,
    ) -> Result<(), StoreError>;

    // Every user method below creates the user on first sight, like the
    // ones above, and changes only the fields it names.

    /// Adds an app to the user's installed apps (a set).
    async fn install_app(&self, email: &str, package_name: &str) -> Result<(), StoreError>;
    /// Removes an app from the user's installed apps.
    async fn uninstall_app(&self, email: &str, package_name: &str) -> Result<(), StoreError>;
    /// Merges `changes` into the user's MentraOS system settings: each key
    /// given is set, the others are kept.
    async fn set_mentraos_settings(
        &self,
        email: &str,
        changes: Map<String, Value>,
    ) -> Result<(), StoreError>;
    /// Stores the user's last known location (as the glasses reported it).
    async fn set_location(&self, email: &str, location: Value) -> Result<(), StoreError>;
    /// Stores the user's time zone (an IANA name such as `Europe/Paris`).
    async fn set_timezone(&self, email: &str, timezone: &str) -> Result<(), StoreError>;

    // Simple storage is kept apart from the user records: the methods
    // below never create or change a user.

    /// The (user, app)'s simple storage; empty when nothing is stored.
    async fn get_storage(
        &self,
        email: &str,
        package_name: &str,
    ) -> Result<StorageEntries, StoreError>;
    /// Sets `entries` in the (user, app)'s simple storage, keeping its other
    /// keys, unless the map would then hold more than `max_bytes` (see
    /// [`storage_bytes`]): then nothing is written. The check and the write
    /// are one atomic step.
    async fn set_storage(
        &self,
        email: &str,
        package_name: &str,
        entries: StorageEntries,
        max_bytes: usize,
    ) -> Result<StorageWrite, StoreError>;
    /// Removes one key; `false` if it was not stored.
    async fn delete_storage_key(
        &self,
        email: &str,
        package_name: &str,
        key: &str,
    ) -> Result<bool, StoreError>;
    /// Removes the (user, app)'s whole simple storage; `false` if it held
    /// nothing.
    async fn clear_storage(&self, email: &str, package_name: &str) -> Result<bool, StoreError>;
}
