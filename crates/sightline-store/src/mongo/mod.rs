//! MongoDB backend: the store of a cloud deployment, shared by every
//! Sightline instance that points at the same database.
//!
//! Apps are documents of the `apps` collection (unique index on
//! `packageName`), users of `users` (unique index on `email`); both indexes
//! are created when the store connects. Every change to a user is a single
//! update operator on its document (`$addToSet`/`$pull` on `runningApps`,
//! `$set` on one entry of `appSettings`), which MongoDB applies atomically,
//! so two sessions of the same user never overwrite each other: there is no
//! read-modify-write on the Sightline side. A new user's document is
//! inserted first (the unique index makes a racing second insert fail
//! harmlessly) and then updated, rather than upserted with `$setOnInsert`.
//!
//! Each (user, app)'s simple storage is one document of `simpleStorage`,
//! whose `_id` is `<package>/<email>` (package names have no `/`), holding
//! its entries as an array of `{k, v}` (so keys with dots or `$` need no
//! escaping) and a `version`. A change reads the document, applies itself
//! and its size bound, and writes back only if `version` is unchanged
//! (compare-and-swap, retried on a concurrent change): the bound is checked
//! against the map the write replaces, never a stale one.
//!
//! The driver runs on a small runtime of its own, so its connection pool
//! and server monitors do not depend on which actix thread calls the store.
//! Every call is bounded by [`MongoConfig::operation_timeout`]: when the
//! database is unreachable, calls fail fast with
//! [`StoreError::Unavailable`] or [`StoreError::Timeout`], and the driver
//! reconnects by itself once it is back.

mod config;
mod documents;
mod errors;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use serde_json::{Map, Value};
use tokio::runtime::{Handle, Runtime};

pub use config::{redact_uri, MongoConfig, DEFAULT_DATABASE};

use crate::record::now_iso;
use crate::simple_storage::merged;
use crate::{AppRecord, StorageEntries, StorageWrite, Store, StoreError, UserRecord};
use documents::{
    from_document, map_path, to_bson, to_document, wrapped_setting, APP_SETTINGS, MENTRAOS_SETTINGS,
};
use errors::{is_duplicate_key, store_error};

/// A [`Store`] in a MongoDB database.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

/// The driver's handles; cheap to clone into each call.
#[derive(Clone)]
struct Driver {
    client: Client,
    apps: Collection<Document>,
    users: Collection<Document>,
    storage: Collection<Document>,
}

/// Compare-and-swap rounds a simple storage change may lose to concurrent
/// writers of the same map before it gives up.
const STORAGE_ATTEMPTS: usize = 64;

/// The `_id` of a (user, app)'s simple storage document.
fn storage_id(email: &str, package_name: &str) -> String {
    format!("{package_name}/{email}")
}

/// The entries of a simple storage document.
fn storage_entries(id: &str, doc: &Document) -> Result<StorageEntries, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: format!("simple storage {id}"),
        reason: reason.to_string(),
    };
    let Some(Bson::Array(items)) = doc.get("entries") else {
        return Err(corrupt("no entries array"));
    };
    let mut entries = StorageEntries::new();
    for item in items {
        let pair = item
            .as_document()
            .ok_or_else(|| corrupt("an entry is not a document"))?;
        match (pair.get_str("k"), pair.get_str("v")) {
            (Ok(k), Ok(v)) => entries.insert(k.to_string(), v.to_string()),
            _ => return Err(corrupt("an entry lacks its string k or v")),
        };
    }
    Ok(entries)
}

/// A simple storage document with `entries` at `version`.
fn storage_document(
    id: &str,
    email: &str,
    package_name: &str,
    entries: &StorageEntries,
    version: i64,
) -> Document {
    let items: Vec<Bson> = entries
        .iter()
        .map(|(k, v)| Bson::Document(doc! { "k": k, "v": v }))
        .collect();
    doc! {
        "_id": id,
        "email": email,
        "packageName": package_name,
        "entries": items,
        "version": version,
    }
}

struct Inner {
    runtime: Option<Runtime>,
    handle: Handle,
    driver: Option<Driver>,
    timeout: Duration,
    database: String,
    redacted_uri: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The client ends its server sessions from a task on the current
        // runtime, so it must be dropped inside ours; the runtime itself is
        // shut down without blocking, as this may run on an async thread.
        if let Some(runtime) = self.runtime.take() {
            {
                let _inside = runtime.enter();
                self.driver.take();
            }
            runtime.shutdown_background();
        }
    }
}

impl MongoStore {
    /// Connects, checks that the database answers and creates the indexes.
    /// Fails if the database cannot be reached within the operation timeout.
    pub async fn connect(config: MongoConfig) -> Result<MongoStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sightline-mongo")
            .enable_all()
            .build()
            .map_err(|e| StoreError::backend("start the MongoDB driver runtime", e))?;
        let mut inner = Inner {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            driver: None,
            timeout: config.operation_timeout,
            database: String::new(),
            redacted_uri: config.redacted_uri(),
        };
        let opened = inner
            .handle
            .spawn(async move {
                let limit = config.operation_timeout + config.connect_timeout;
                match tokio::time::timeout(limit, open(&config)).await {
                    Ok(r) => r,
                    Err(_) => Err(StoreError::Unavailable {
                        op: "connect",
                        reason: format!(
                            "MongoDB at {} did not answer within {} ms",
                            config.redacted_uri(),
                            limit.as_millis()
                        ),
                    }),
                }
            })
            .await
            .map_err(|e| StoreError::backend("connect", e))?;
        let (driver, database) = opened?;
        inner.driver = Some(driver);
        inner.database = database;
        Ok(MongoStore {
            inner: Arc::new(inner),
        })
    }

    /// The database's address with any password hidden, for logs.
    pub fn describe(&self) -> String {
        format!(
            "{} (database {})",
            self.inner.redacted_uri, self.inner.database
        )
    }

    /// The database this store uses.
    pub fn database(&self) -> &str {
        &self.inner.database
    }

    /// Runs one driver call on the driver's runtime, bounded by the
    /// operation timeout.
    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Driver) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(driver) = self.inner.driver.clone() else {
            return Err(StoreError::Unavailable {
                op,
                reason: "the MongoDB store is shut down".into(),
            });
        };
        let timeout = self.inner.timeout;
        let work = f(driver);
        let task = self
            .inner
            .handle
            .spawn(async move { tokio::time::timeout(timeout, work).await });
        match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Timeout {
                op,
                ms: timeout.as_millis() as u64,
            }),
            Err(e) => Err(StoreError::backend(op, e)),
        }
    }

    /// Applies `update` to an existing app; [`StoreError::NotFound`] if
    /// there is none.
    async fn update_existing_app(
        &self,
        op: &'static str,
        package: &str,
        update: Document,
    ) -> Result<(), StoreError> {
        let package = package.to_string();
        self.call(op, move |d| async move {
            let res = d
                .apps
                .update_one(doc! { "packageName": &package }, update)
                .await
                .map_err(|e| store_error(op, e))?;
            if res.matched_count > 0 {
                Ok(())
            } else {
                Err(StoreError::NotFound {
                    what: format!("app {package}"),
                })
            }
        })
        .await
    }

    /// Applies `update` (one update operator document) to the user's
    /// document, creating the document first if the user is new. The
    /// creation is an insert guarded by the unique index on `email`, so two
    /// first writes of one user cannot create two documents, and the update
    /// itself is always a single atomic operation on an existing document.
    async fn update_user(
        &self,
        op: &'static str,
        email: &str,
        update: Document,
    ) -> Result<(), StoreError> {
        let email = email.to_string();
        self.call(op, move |d| async move {
            for _ in 0..2 {
                let res = d
                    .users
                    .update_one(doc! { "email": &email }, update.clone())
                    .await
                    .map_err(|e| store_error(op, e))?;
                if res.matched_count > 0 {
                    return Ok(());
                }
                insert_user(&d, &email, op).await?;
            }
            Err(StoreError::NotFound {
                what: format!("user {email}"),
            })
        })
        .await
    }
}

impl MongoStore {
    /// Reads one (user, app)'s simple storage, lets `f` change it, and
    /// writes it back only if nobody changed it meanwhile (retrying from
    /// a fresh read otherwise); nothing is written when `f` answers
    /// `false`. A map left empty is deleted.
    async fn change_storage<T, F>(
        &self,
        op: &'static str,
        email: &str,
        package_name: &str,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut StorageEntries) -> (bool, T) + Send + 'static,
    {
        let (email, package) = (email.to_string(), package_name.to_string());
        self.call(op, move |d| async move {
            let id = storage_id(&email, &package);
            for _ in 0..STORAGE_ATTEMPTS {
                let found = d
                    .storage
                    .find_one(doc! { "_id": &id })
                    .await
                    .map_err(|e| store_error(op, e))?;
                let mut entries = match &found {
                    Some(doc) => storage_entries(&id, doc)?,
                    None => StorageEntries::new(),
                };
                let (write, out) = f(&mut entries);
                if !write {
                    return Ok(out);
                }
                let Some(found) = found else {
                    if entries.is_empty() {
                        return Ok(out);
                    }
                    let fresh = storage_document(&id, &email, &package, &entries, 1);
                    match d.storage.insert_one(fresh).await {
                        Ok(_) => return Ok(out),
                        Err(e) if is_duplicate_key(&e) => continue,
                        Err(e) => return Err(store_error(op, e)),
                    }
                };
                let version = found.get("version").cloned().unwrap_or(Bson::Null);
                let next = match &version {
                    Bson::Int64(n) => n + 1,
                    Bson::Int32(n) => i64::from(*n) + 1,
                    _ => 1,
                };
                let unchanged = doc! { "_id": &id, "version": version };
                let swapped = if entries.is_empty() {
                    d.storage
                        .delete_one(unchanged)
                        .await
                        .map(|r| r.deleted_count > 0)
                } else {
                    let doc = storage_document(&id, &email, &package, &entries, next);
                    d.storage
                        .replace_one(unchanged, doc)
                        .await
                        .map(|r| r.matched_count > 0)
                }
                .map_err(|e| store_error(op, e))?;
                if swapped {
                    return Ok(out);
                }
            }
            Err(StoreError::Backend {
                op,
                reason: format!(
                    "simple storage {id} kept changing under {STORAGE_ATTEMPTS} attempts"
                ),
            })
        })
        .await
    }
}

/// Inserts a new user document unless one already exists.
async fn insert_user(d: &Driver, email: &str, op: &'static str) -> Result<(), StoreError> {
    let user = UserRecord::new(email, now_iso());
    let doc = to_document(&format!("user {email}"), &user)?;
    match d.users.insert_one(doc).await {
        Ok(_) => Ok(()),
        Err(e) if is_duplicate_key(&e) => Ok(()),
        Err(e) => Err(store_error(op, e)),
    }
}

/// Parses the URI, applies the pool and timeout settings, pings the
/// database and creates the unique indexes.
async fn open(config: &MongoConfig) -> Result<(Driver, String), StoreError> {
    let uri = config.redacted_uri();
    let mut options = ClientOptions::parse(&config.uri)
        .await
        .map_err(|e| StoreError::Backend {
            op: "read the MongoDB URI",
            reason: format!("{uri}: {e}"),
        })?;
    options.max_pool_size = Some(config.max_pool_size);
    options.min_pool_size = Some(config.min_pool_size);
    options.connect_timeout = Some(config.connect_timeout);
    options.server_selection_timeout = Some(config.operation_timeout);
    options.heartbeat_freq = Some(config.heartbeat_interval);
    if options.app_name.is_none() {
        options.app_name = Some("sightline".into());
    }
    let database = config
        .database
        .clone()
        .or_else(|| options.default_database.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let client = Client::with_options(options).map_err(|e| StoreError::Backend {
        op: "configure the MongoDB client",
        reason: format!("{uri}: {e}"),
    })?;
    let db = client.database(&database);
    db.run_command(doc! { "ping": 1 })
        .await
        .map_err(|e| with_uri(store_error("connect", e), &uri))?;
    let apps = db.collection::<Document>("apps");
    let users = db.collection::<Document>("users");
    let storage = db.collection::<Document>("simpleStorage");
    unique_index(&apps, "packageName").await?;
    unique_index(&users, "email").await?;
    Ok((
        Driver {
            client,
            apps,
            users,
            storage,
        },
        database,
    ))
}

async fn unique_index(coll: &Collection<Document>, field: &str) -> Result<(), StoreError> {
    let model = IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            IndexOptions::builder()
                .unique(true)
                .name(format!("{field}_unique"))
                .build(),
        )
        .build();
    coll.create_index(model)
        .await
        .map(|_| ())
        .map_err(|e| store_error("create indexes", e))
}

fn with_uri(e: StoreError, uri: &str) -> StoreError {
    match e {
        StoreError::Unavailable { op, reason } => StoreError::Unavailable {
            op,
            reason: format!("{uri}: {reason}"),
        },
        StoreError::Backend { op, reason } => StoreError::Backend {
            op,
            reason: format!("{uri}: {reason}"),
        },
        other => other,
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call("ping", |d| async move {
            d.client
                .database("admin")
                .run_command(doc! { "ping": 1 })
                .await
                .map(|_| ())
                .map_err(|e| store_error("ping", e))
        })
        .await
    }

    async fn create_app(&self, app: AppRecord) -> Result<(), StoreError> {
        let package = app.package_name.clone();
        let doc = to_document(&format!("app {package}"), &app)?;
        self.call("create app", |d| async move {
            match d.apps.insert_one(doc).await {
                Ok(_) => Ok(()),
                Err(e) if is_duplicate_key(&e) => Err(StoreError::Conflict {
                    what: format!("app {package}"),
                }),
                Err(e) => Err(store_error("create app", e)),
            }
        })
        .await
    }

    async fn upsert_app(&self, app: AppRecord) -> Result<(), StoreError> {
        let package = app.package_name.clone();
        let doc = to_document(&format!("app {package}"), &app)?;
        self.call("write app", |d| async move {
            d.apps
                .replace_one(doc! { "packageName": &package }, doc)
                .upsert(true)
                .await
                .map(|_| ())
                .map_err(|e| store_error("write app", e))
        })
        .await
    }

    async fn get_app(&self, package_name: &str) -> Result<Option<AppRecord>, StoreError> {
        let package = package_name.to_string();
        self.call("read app", |d| async move {
            let found = d
                .apps
                .find_one(doc! { "packageName": &package })
                .await
                .map_err(|e| store_error("read app", e))?;
            found
                .map(|doc| from_document(&format!("app {package}"), doc))
                .transpose()
        })
        .await
    }

    async fn list_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.call("list apps", |d| async move {
            let op = "list apps";
            let mut cursor = d
                .apps
                .find(doc! {})
                .sort(doc! { "packageName": 1 })
                .await
                .map_err(|e| store_error(op, e))?;
            let mut apps = Vec::new();
            while cursor.advance().await.map_err(|e| store_error(op, e))? {
                let doc = cursor
                    .deserialize_current()
                    .map_err(|e| store_error(op, e))?;
                apps.push(from_document("app", doc)?);
            }
            Ok(apps)
        })
        .await
    }

    async fn delete_app(&self, package_name: &str) -> Result<bool, StoreError> {
        let package = package_name.to_string();
        self.call("delete app", |d| async move {
            d.apps
                .delete_one(doc! { "packageName": &package })
                .await
                .map(|r| r.deleted_count > 0)
                .map_err(|e| store_error("delete app", e))
        })
        .await
    }

    async fn update_app(&self, app: AppRecord) -> Result<(), StoreError> {
        let package = app.package_name.clone();
        let mut fields = to_document(&format!("app {package}"), &app)?;
        fields.remove("hashedApiKey");
        fields.remove("packageName");
        self.update_existing_app("update app", &package, doc! { "$set": fields })
            .await
    }

    async fn set_app_key_hash(
        &self,
        package_name: &str,
        hashed_api_key: &str,
    ) -> Result<(), StoreError> {
        let update = doc! { "$set": { "hashedApiKey": hashed_api_key } };
        self.update_existing_app("rotate app key", package_name, update)
            .await
    }

    async fn get_user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let email = email.to_string();
        self.call("read user", |d| async move {
            let found = d
                .users
                .find_one(doc! { "email": &email })
                .await
                .map_err(|e| store_error("read user", e))?;
            found
                .map(|doc| from_document(&format!("user {email}"), doc))
                .transpose()
        })
        .await
    }

    async fn ensure_user(&self, email: &str) -> Result<UserRecord, StoreError> {
        if let Some(user) = self.get_user(email).await? {
            return Ok(user);
        }
        let owned = email.to_string();
        self.call("create user", move |d| async move {
            insert_user(&d, &owned, "create user").await
        })
        .await?;
        self.get_user(email)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("user {email}"),
            })
    }

    async fn add_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let update = doc! { "$addToSet": { "runningApps": package_name } };
        self.update_user("add running app", email, update).await
    }

    async fn remove_running_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let update = doc! { "$pull": { "runningApps": package_name } };
        self.update_user("remove running app", email, update).await
    }

    async fn set_app_settings(
        &self,
        email: &str,
        package_name: &str,
        settings: Value,
    ) -> Result<(), StoreError> {
        let value = to_bson(&format!("settings of {package_name}"), &settings)?;
        let update = doc! { "$set": { map_path(APP_SETTINGS, package_name): value } };
        self.update_user("write app settings", email, update).await
    }

    async fn install_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let update = doc! { "$addToSet": { "installedApps": package_name } };
        self.update_user("install app", email, update).await
    }

    async fn uninstall_app(&self, email: &str, package_name: &str) -> Result<(), StoreError> {
        let update = doc! { "$pull": { "installedApps": package_name } };
        self.update_user("uninstall app", email, update).await
    }

    async fn set_mentraos_settings(
        &self,
        email: &str,
        changes: Map<String, Value>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return self.ensure_user(email).await.map(|_| ());
        }
        let mut fields = Document::new();
        for (key, value) in &changes {
            fields.insert(
                map_path(MENTRAOS_SETTINGS, key),
                wrapped_setting(key, value)?,
            );
        }
        let update = doc! { "$set": fields };
        self.update_user("write MentraOS settings", email, update)
            .await
    }

    async fn set_location(&self, email: &str, location: Value) -> Result<(), StoreError> {
        let update = doc! { "$set": { "location": to_bson("location", &location)? } };
        self.update_user("write location", email, update).await
    }

    async fn set_timezone(&self, email: &str, timezone: &str) -> Result<(), StoreError> {
        let update = doc! { "$set": { "timezone": timezone } };
        self.update_user("write time zone", email, update).await
    }

    async fn get_storage(
        &self,
        email: &str,
        package_name: &str,
    ) -> Result<StorageEntries, StoreError> {
        let id = storage_id(email, package_name);
        self.call("read simple storage", |d| async move {
            let found = d
                .storage
                .find_one(doc! { "_id": &id })
                .await
                .map_err(|e| store_error("read simple storage", e))?;
            match found {
                Some(doc) => storage_entries(&id, &doc),
                None => Ok(StorageEntries::new()),
            }
        })
        .await
    }

    async fn set_storage(
        &self,
        email: &str,
        package_name: &str,
        entries: StorageEntries,
        max_bytes: usize,
    ) -> Result<StorageWrite, StoreError> {
        self.change_storage(
            "write simple storage",
            email,
            package_name,
            move |current| {
                let (next, write) = merged(current, &entries, max_bytes);
                match next {
                    Some(next) => {
                        *current = next;
                        (true, write)
                    }
                    None => (false, write),
                }
            },
        )
        .await
    }

    async fn delete_storage_key(
        &self,
        email: &str,
        package_name: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.change_storage(
            "delete simple storage key",
            email,
            package_name,
            move |current| {
                let removed = current.remove(&key).is_some();
                (removed, removed)
            },
        )
        .await
    }

    async fn clear_storage(&self, email: &str, package_name: &str) -> Result<bool, StoreError> {
        let id = storage_id(email, package_name);
        self.call("clear simple storage", |d| async move {
            let res = d
                .storage
                .delete_one(doc! { "_id": &id })
                .await
                .map_err(|e| store_error("clear simple storage", e))?;
            Ok(res.deleted_count > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Nx27017;

    async fn store(nx: &Nx27017) -> MongoStore {
        MongoStore::connect(MongoConfig::new(nx.uri()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn conformance() {
        let nx = Nx27017::start();
        crate::conformance::run_all(&store(&nx).await)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent() {
        let nx = Nx27017::start();
        let s = Arc::new(store(&nx).await);
        crate::conformance::concurrent_updates(s).await.unwrap();
    }
}
