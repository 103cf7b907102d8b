//! Embedded backend: one redb file under the data directory.
//!
//! redb gives ACID transactions with copy-on-write pages, so a crash in the
//! middle of a write leaves the previous committed state intact. Records are
//! stored as JSON documents keyed by package name or e-mail; each (user,
//! app)'s simple storage is one JSON object in the `simple_storage` table,
//! keyed `<package>/<email>` (package names have no `/`). Every
//! read-modify-write of a user happens inside one write transaction, which
//! redb serialises, so concurrent updates of one user cannot lose each other.
//! redb is synchronous; calls run on the blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::record::now_iso;
use crate::simple_storage::merged;
use crate::{AppRecord, StorageEntries, StorageWrite, Store, StoreError, UserRecord};

const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const STORAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("simple_storage");

/// The `simple_storage` row of a (user, app).
fn storage_row(email: &str, package_name: &str) -> String {
    format!("{package_name}/{email}")
}

/// The file name used inside the data directory.
pub const DB_FILE: &str = "sightline.redb";

/// A [`Store`] in a redb file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or creates) `sightline.redb` in `data_dir`, creating the
    /// directory if needed.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Backend {
            op: "create data directory",
            reason: format!("{}: {e}", data_dir.display()),
        })?;
        let path = data_dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| StoreError::Backend {
            op: "open database",
            reason: format!("{}: {e}", path.display()),
        })?;
        let txn = db
            .begin_write()
            .map_err(|e| StoreError::backend("open database", e))?;
        {
            txn.open_table(APPS)
                .map_err(|e| StoreError::backend("create apps table", e))?;
            txn.open_table(USERS)
                .map_err(|e| StoreError::backend("create users table", e))?;
            txn.open_table(STORAGE)
                .map_err(|e| StoreError::backend("create simple storage table", e))?;
        }
        txn.commit()
            .map_err(|e| StoreError::backend("open database", e))?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            path,
        })
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::backend(op, e))?
    }

    async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = key.to_string();
        self.blocking("read", move |db| {
            let txn = db
                .begin_read()
                .map_err(|e| StoreError::backend("read", e))?;
            let t = txn
                .open_table(table)
                .map_err(|e| StoreError::backend("read", e))?;
            let row = t
                .get(key.as_str())
                .map_err(|e| StoreError::backend("read", e))?;
            row.map(|v| decode(&key, v.value())).transpose()
        })
        .await
    }

    /// Reads, changes and writes one user inside a single write transaction.
    async fn update_user(
        &self,
        email: &str,
        f: impl FnOnce(&mut UserRecord) + Send + 'static,
    ) -> Result<(), StoreError> {
        let email = email.to_string();
        self.blocking("update user", move |db| {
            let op = "update user";
            let txn = db.begin_write().map_err(|e| StoreError::backend(op, e))?;
            {
                let mut t = txn
                    .open_table(USERS)
                    .map_err(|e| StoreError::backend(op, e))?;
                let current = t
                    .get(email.as_str())
                    .map_err(|e| StoreError::backend(op, e))?
                    .map(|v| decode::<UserRecord>(&email, v.value()))
                    .transpose()?;
                let mut user = current.unwrap_or_else(|| UserRecord::new(&email, now_iso()));
                f(&mut user);
                let bytes = encode(&user)?;
                t.insert(email.as_str(), bytes.as_slice())
                    .map_err(|e| StoreError::backend(op, e))?;
            }
            txn.commit().map_err(|e| StoreError::backend(op, e))
        })
        .await
    }

    /// Reads, changes and writes one existing app inside a single write
    /// transaction; [`StoreError::NotFound`] if it does not exist.
    async fn change_app(
        &self,
        package_name: &str,
        f: impl FnOnce(&mut AppRecord) + Send + 'static,
    ) -> Result<(), StoreError> {
        let key = package_name.to_string();
        self.blocking("update app", move |db| {
            let op = "update app";
            let txn = db.begin_write().map_err(|e| StoreError::backend(op, e))?;
            {
                let mut t = txn
                    .open_table(APPS)
                    .map_err(|e| StoreError::backend(op, e))?;
                let current = t
                    .get(key.as_str())
                    .map_err(|e| StoreError::backend(op, e))?
                    .map(|v| decode::<AppRecord>(&key, v.value()))
                    .transpose()?;
                let Some(mut app) = current else {
                    return Err(StoreError::NotFound {
                        what: format!("app {key}"),
                    });
                };
                f(&mut app);
                let bytes = encode(&app)?;
                t.insert(key.as_str(), bytes.as_slice())
                    .map_err(|e| StoreError::backend(op, e))?;
            }
            txn.commit().map_err(|e| StoreError::backend(op, e))
        })
        .await
    }

    /// Reads one (user, app)'s simple storage, lets `f` change it, and
    /// writes it back (or removes the row when it is left empty) inside a
    /// single write transaction, unless `f` answers `false`.
    async fn change_storage<T: Send + 'static>(
        &self,
        email: &str,
        package_name: &str,
        f: impl FnOnce(&mut StorageEntries) -> (bool, T) + Send + 'static,
    ) -> Result<T, StoreError> {
        let row = storage_row(email, package_name);
        self.blocking("write simple storage", move |db| {
            let op = "write simple storage";
            let txn = db.begin_write().map_err(|e| StoreError::backend(op, e))?;
            let out = {
                let mut t = txn
                    .open_table(STORAGE)
                    .map_err(|e| StoreError::backend(op, e))?;
                let mut entries: StorageEntries = t
                    .get(row.as_str())
                    .map_err(|e| StoreError::backend(op, e))?
                    .map(|v| decode(&row, v.value()))
                    .transpose()?
                    .unwrap_or_default();
                let (write, out) = f(&mut entries);
                if write {
                    if entries.is_empty() {
                        t.remove(row.as_str())
                            .map_err(|e| StoreError::backend(op, e))?;
                    } else {
                        let bytes = encode(&entries)?;
                        t.insert(row.as_str(), bytes.as_slice())
                            .map_err(|e| StoreError::backend(op, e))?;
                    }
                }
                out
            };
            txn.commit().map_err(|e| StoreError::backend(op, e))?;
            Ok(out)
        })
        .await
    }

    async fn put_app(&self, app: AppRecord, must_be_new: bool) -> Result<(), StoreError> {
        self.blocking("write app", move |db| {
            let op = "write app";
            let txn = db.begin_write().map_err(|e| StoreError::backend(op, e))?;
            {
                let mut t = txn
                    .open_table(APPS)
                    .map_err(|e| StoreError::backend(op, e))?;
                if must_be_new
                    && t.get(app.package_name.as_str())
                        .map_err(|e| StoreError::backend(op, e))?
                        .is_some()
                {
                    return Err(StoreError::Conflict {
                        what: format!("app {}", app.package_name),
                    });
                }
                let bytes = encode(&app)?;
                t.insert(app.package_name.as_str(), bytes.as_slice())
                    .map_err(|e| StoreError::backend(op, e))?;
            }
            txn.commit().map_err(|e| StoreError::backend(op, e))
        })
        .await
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::backend("encode record", e))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: key.to_string(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking("ping", |db| {
            db.begin_read()
                .map(|_| ())
                .map_err(|e| StoreError::backend("ping", e))
        })
        .await
    }

    async fn create_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.put_app(app, true).await
    }

    async fn upsert_app(&self, app: AppRecord) -> Result<(), StoreError> {
        self.put_app(app, false).await
    }

    async fn get_app(&self, package_name: &str) -> Result<Option<AppRecord>, StoreError> {
        self.get(APPS, package_name).await
    }

    async fn list_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.blocking("list apps", |db| {
            let op = "list apps";
            let txn = db.begin_read().map_err(|e| StoreError::backend(op, e))?;
            let t = txn
                .open_table(APPS)
                .map_err(|e| StoreError::backend(op, e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| StoreError::backend(op, e))? {
                let (k, v) = row.map_err(|e| StoreError::backend(op, e))?;
                out.push(decode(k.value(), v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_app(&self, package_name: &str) -> Result<bool, StoreError> {
        let key = package_name.to_string();
        self.blocking("delete app", move |db| {
            let op = "delete app";
            let txn = db.begin_write().map_err(|e| StoreError::backend(op, e))?;
            let existed = {
                let mut t = txn
                    .open_table(APPS)
                    .map_err(|e| StoreError::backend(op, e))?;
                let removed = t
                    .remove(key.as_str())
                    .map_err(|e| StoreError::backend(op, e))?;
                removed.is_some()
            };
            txn.commit().map_err(|e| StoreError::backend(op, e))?;
            Ok(existed)
        })
        .await
    }

    async fn update_app(&self, app: AppRecord) -> Result<(), StoreError> {
        let package = app.package_name.clone();
        self.change_app(&package, move |existing| {
            *existing = existing.updated_from(app);
        })
        .await
    }

    async fn set_app_key_hash(
        &self,
        package_name: &str,
        hashed_api_key: &str,
    ) -> Result<(), StoreError> {
        let hash = hashed_api_key.to_string();
        self.change_app(package_name, move |app| app.hashed_api_key = hash)
            .await
    }

    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get(USERS, email).await
    }

    async fn ensure_user(&self, email: &str) -> Result<UserRecord, StoreError> {
        if let Some(u) = self.get_user(email).await? {
            return Ok(u);
        }
        self.update_user(email, |_| {}).await?;
        self.get_user(email)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("user {email}"),
            })
    }

    async fn add_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let p = package_name.to_string();
        self.update_user(email, move |u| u.add_running(&p)).await
    }

    async fn remove_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let p = package_name.to_string();
        self.update_user(email, move |u| u.remove_running(&p)).await
    }

    async fn set_app_settings(
        &self,
        email: &str,
        package_name: &str,
        settings: Value,
    ) -> Result<(), StoreError> {
        let p = package_name.to_string();
        self.update_user(email, move |u| {
            u.app_settings.insert(p, settings);
        })
        .await
    }

    async fn install_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let p = package_name.to_string();
        self.update_user(email, move |u| u.add_installed(&p)).await
    }

    async fn uninstall_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let p = package_name.to_string();
        self.update_user(email, move |u| u.remove_installed(&p))
            .await
    }

    async fn set_mentraos_settings(
        &self,
        email: &str,
        changes: Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.update_user(email, move |u| u.merge_mentraos_settings(changes))
            .await
    }

    async fn set_location(&self, email: &str, location: Value) -> Result<(), StoreError> {
        self.update_user(email, move |u| u.location = Some(location))
            .await
    }

    async fn set_timezone(&self, email: &str, timezone: &str) -> Result<(), StoreError> {
        let tz = timezone.to_string();
        self.update_user(email, move |u| u.timezone = Some(tz))
            .await
    }

    async fn get_storage(
        &self,
        email: &str,
        package_name: &str,
    ) -> Result<StorageEntries, StoreError> {
        Ok(self
            .get(STORAGE, &storage_row(email, package_name))
            .await?
            .unwrap_or_default())
    }

    async fn set_storage(
        &self,
        email: &str,
        package_name: &str,
        entries: StorageEntries,
        max_bytes: usize,
    ) -> Result<StorageWrite, StoreError> {
        self.change_storage(email, package_name, move |current| {
            let (next, write) = merged(current, &entries, max_bytes);
            match next {
                Some(next) => {
                    *current = next;
                    (true, write)
                }
                None => (false, write),
            }
        })
        .await
    }

    async fn delete_storage_key(
        &self,
        email: &str,
        package_name: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.change_storage(email, package_name, move |current| {
            let removed = current.remove(&key).is_some();
            (removed, removed)
        })
        .await
    }

    async fn clear_storage(&self, email: &str, package_name: &str) -> Result<bool, StoreError> {
        self.change_storage(email, package_name, |current| {
            let had = !current.is_empty();
            current.clear();
            (had, had)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        crate::conformance::run_all(&store).await.unwrap();
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .add_running_app("a@b.c", "com.example.notes")
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let user = store.get_user("a@b.c").await.unwrap().unwrap();
        assert_eq!(user.running_apps, vec!["com.example.notes".to_string()]);
    }

    #[tokio::test]
    async fn simple_storage_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let entries: StorageEntries = [("k".to_string(), "v".to_string())].into();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .set_storage("a@b.c", "com.example.notes", entries.clone(), 100)
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let stored = store.get_storage("a@b.c", "com.example.notes").await;
        assert_eq!(stored.unwrap(), entries);
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        crate::conformance::concurrent_updates(store).await.unwrap();
    }
}
