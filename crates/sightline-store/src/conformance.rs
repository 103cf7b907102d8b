//! The behaviour every [`Store`](crate::Store) backend must show.
//!
//! Backends call [`run_all`] from their own tests; it returns the first
//! broken expectation as an error naming it.

use std::sync::Arc;

use serde_json::json;

use crate::{hash_api_key, AppRecord, AppType, StorageEntries, StorageWrite, Store, StoreError};

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("conformance: {what}"))
    }
}

fn app(package: &str) -> AppRecord {
    AppRecord {
        package_name: package.to_string(),
        name: format!("App {package}"),
        description: String::new(),
        public_url: "http://127.0.0.1:1".into(),
        hashed_api_key: hash_api_key("key"),
        app_type: AppType::Standard,
        permissions: vec!["MICROPHONE".into()],
        settings_schema: vec![],
        logo_url: None,
    }
}

/// Runs every check against `store`, which must start empty.
pub async fn run_all<S: Store>(store: &S) -> Result<(), String> {
    apps(store).await?;
    app_updates(store).await?;
    users(store).await?;
    profile(store).await?;
    simple_storage(store).await?;
    Ok(())
}

fn entries(pairs: &[(&str, &str)]) -> StorageEntries {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn simple_storage<S: Store>(store: &S) -> Result<(), String> {
    let e = |e: StoreError| format!("conformance: unexpected error: {e}");
    let (who, pkg) = ("store@x.io", "com.kv");
    check(
        store.get_storage(who, pkg).await.map_err(e)?.is_empty(),
        "missing simple storage reads as empty",
    )?;
    let first = entries(&[("a", "1"), ("b.c", "two"), ("$d", "ü"), ("e/f", "")]);
    let wrote = store
        .set_storage(who, pkg, first.clone(), 100)
        .await
        .map_err(e)?;
    check(
        wrote == StorageWrite::Stored { bytes: 15 },
        "a write answers the stored bytes (keys and values, UTF-8)",
    )?;
    check(
        store.get_storage(who, pkg).await.map_err(e)? == first,
        "keys with dots, `$` and `/` and empty or non-ASCII values read back as written",
    )?;
    store
        .set_storage(who, pkg, entries(&[("a", "one")]), 100)
        .await
        .map_err(e)?;
    let mut expected = first.clone();
    expected.insert("a".into(), "one".into());
    check(
        store.get_storage(who, pkg).await.map_err(e)? == expected,
        "a write replaces its keys and keeps the others",
    )?;
    let over = store
        .set_storage(who, pkg, entries(&[("big", &"x".repeat(90))]), 100)
        .await
        .map_err(e)?;
    check(
        over == StorageWrite::OverQuota { bytes: 110 },
        "a write past the bound is refused with the size it would make",
    )?;
    check(
        store.get_storage(who, pkg).await.map_err(e)? == expected,
        "a refused write changes nothing",
    )?;
    let shrink = store
        .set_storage(who, pkg, entries(&[("a", "")]), 14)
        .await
        .map_err(e)?;
    check(
        shrink == StorageWrite::Stored { bytes: 14 },
        "the bound applies to the map after the write",
    )?;
    check(
        store
            .get_storage(who, "com.other")
            .await
            .map_err(e)?
            .is_empty()
            && store
                .get_storage("other@x.io", pkg)
                .await
                .map_err(e)?
                .is_empty(),
        "another app or user sees none of it",
    )?;
    check(
        store.get_user(who).await.map_err(e)?.is_none(),
        "simple storage creates no user",
    )?;
    check(
        store.delete_storage_key(who, pkg, "b.c").await.map_err(e)?,
        "deleting a stored key reports it",
    )?;
    check(
        !store.delete_storage_key(who, pkg, "b.c").await.map_err(e)?
            && !store
                .delete_storage_key("none@x.io", pkg, "a")
                .await
                .map_err(e)?,
        "deleting a missing key reports none",
    )?;
    check(
        store.get_storage(who, pkg).await.map_err(e)?
            == entries(&[("a", ""), ("$d", "ü"), ("e/f", "")]),
        "deleting a key keeps the others",
    )?;
    store
        .set_storage(who, "com.other", entries(&[("k", "v")]), 100)
        .await
        .map_err(e)?;
    check(
        store.clear_storage(who, pkg).await.map_err(e)?,
        "clearing a stored map reports it",
    )?;
    check(
        store.get_storage(who, pkg).await.map_err(e)?.is_empty()
            && !store.clear_storage(who, pkg).await.map_err(e)?,
        "a cleared map reads as empty",
    )?;
    check(
        store.get_storage(who, "com.other").await.map_err(e)? == entries(&[("k", "v")]),
        "clearing one app's map keeps another's",
    )?;
    check(
        store
            .delete_storage_key(who, "com.other", "k")
            .await
            .map_err(e)?
            && store
                .get_storage(who, "com.other")
                .await
                .map_err(e)?
                .is_empty()
            && !store.clear_storage(who, "com.other").await.map_err(e)?,
        "a map whose last key is deleted is empty",
    )?;
    Ok(())
}

/// Many writers on one (user, app)'s simple storage at once, together
/// asking for more than its bound: exactly as many as fit are stored, and
/// none is lost.
pub async fn concurrent_storage<S: Store>(store: Arc<S>) -> Result<(), String> {
    let (who, pkg) = ("race@x.io", "com.kv");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            // Ten bytes each, a bound of a hundred: ten fit.
            let one = entries(&[(&format!("k{i:02}"), "vvvvvvv")]);
            s.set_storage(who, pkg, one, 100).await
        }));
    }
    let mut stored = 0;
    for t in tasks {
        let write = t
            .await
            .map_err(|e| format!("conformance: task failed: {e}"))?
            .map_err(|e| format!("conformance: {e}"))?;
        if matches!(write, StorageWrite::Stored { .. }) {
            stored += 1;
        }
    }
    let map = store
        .get_storage(who, pkg)
        .await
        .map_err(|e| e.to_string())?;
    check(
        stored == 10 && map.len() == 10,
        &format!(
            "concurrent writes are bounded together: {stored} stored, {} kept",
            map.len()
        ),
    )
}

async fn apps<S: Store>(store: &S) -> Result<(), String> {
    let e = |e: StoreError| format!("conformance: unexpected error: {e}");
    store.ping().await.map_err(e)?;
    check(
        store.get_app("com.a").await.map_err(e)?.is_none(),
        "missing app reads as None",
    )?;
    store.create_app(app("com.a")).await.map_err(e)?;
    check(
        matches!(
            store.create_app(app("com.a")).await,
            Err(StoreError::Conflict { .. })
        ),
        "creating an existing package is a conflict",
    )?;
    let mut changed = app("com.a");
    changed.app_type = AppType::Background;
    store.upsert_app(changed.clone()).await.map_err(e)?;
    check(
        store.get_app("com.a").await.map_err(e)? == Some(changed),
        "upsert replaces the record",
    )?;
    store.create_app(app("com.b")).await.map_err(e)?;
    let names: Vec<String> = store
        .list_apps()
        .await
        .map_err(e)?
        .into_iter()
        .map(|a| a.package_name)
        .collect();
    check(
        names.len() == 2 && names.contains(&"com.b".into()),
        "list returns every app",
    )?;
    check(
        store.delete_app("com.b").await.map_err(e)?,
        "delete reports an existing app",
    )?;
    check(
        !store.delete_app("com.b").await.map_err(e)?,
        "delete reports a missing app",
    )?;
    Ok(())
}

async fn app_updates<S: Store>(store: &S) -> Result<(), String> {
    let e = |e: StoreError| format!("conformance: unexpected error: {e}");
    store.create_app(app("com.up")).await.map_err(e)?;
    let mut details = app("com.up");
    details.name = "Renamed".into();
    details.settings_schema = vec![json!({"key": "color", "type": "text", "value": "red"})];
    details.logo_url = Some("https://cdn.example.com/logo.png".into());
    details.hashed_api_key = hash_api_key("must-not-be-written");
    store.update_app(details.clone()).await.map_err(e)?;
    let stored = store
        .get_app("com.up")
        .await
        .map_err(e)?
        .ok_or("conformance: updated app vanished")?;
    check(
        stored.name == "Renamed"
            && stored.settings_schema == details.settings_schema
            && stored.logo_url == details.logo_url,
        "update_app writes the details",
    )?;
    check(
        stored.hashed_api_key == hash_api_key("key"),
        "update_app keeps the key hash",
    )?;
    store
        .set_app_key_hash("com.up", &hash_api_key("rotated"))
        .await
        .map_err(e)?;
    let stored = store
        .get_app("com.up")
        .await
        .map_err(e)?
        .ok_or("conformance: rotated app vanished")?;
    check(
        stored.hashed_api_key == hash_api_key("rotated") && stored.name == "Renamed",
        "key rotation changes only the hash",
    )?;
    check(
        matches!(
            store.update_app(app("com.none")).await,
            Err(StoreError::NotFound { .. })
        ),
        "updating a missing app is not found",
    )?;
    check(
        matches!(
            store.set_app_key_hash("com.none", "x").await,
            Err(StoreError::NotFound { .. })
        ),
        "rotating a missing app's key is not found",
    )?;
    check(
        store.get_app("com.none").await.map_err(e)?.is_none(),
        "updates never create apps",
    )?;
    store.delete_app("com.up").await.map_err(e)?;
    Ok(())
}

async fn users<S: Store>(store: &S) -> Result<(), String> {
    let e = |e: StoreError| format!("conformance: unexpected error: {e}");
    check(
        store.get_user("u@x.io").await.map_err(e)?.is_none(),
        "missing user reads as None",
    )?;
    let u = store.ensure_user("u@x.io").await.map_err(e)?;
    check(
        u.email == "u@x.io" && !u.created_at.is_empty(),
        "ensure_user creates",
    )?;
    let again = store.ensure_user("u@x.io").await.map_err(e)?;
    check(
        again.created_at == u.created_at,
        "ensure_user keeps the existing record",
    )?;
    store.add_running_app("u@x.io", "com.a").await.map_err(e)?;
    store.add_running_app("u@x.io", "com.a").await.map_err(e)?;
    store.add_running_app("u@x.io", "com.b").await.map_err(e)?;
    store
        .remove_running_app("u@x.io", "com.b")
        .await
        .map_err(e)?;
    let u = store
        .get_user("u@x.io")
        .await
        .map_err(e)?
        .ok_or("user vanished")?;
    check(
        u.running_apps == vec!["com.a".to_string()],
        "running apps are a set",
    )?;
    store
        .set_app_settings("u@x.io", "com.a", json!([{"key": "k", "value": 1}]))
        .await
        .map_err(e)?;
    let u = store
        .get_user("u@x.io")
        .await
        .map_err(e)?
        .ok_or("user vanished")?;
    check(
        u.app_settings.get("com.a") == Some(&json!([{"key": "k", "value": 1}])),
        "settings stored",
    )?;
    check(
        u.running_apps == vec!["com.a".to_string()],
        "settings update keeps running apps",
    )?;
    Ok(())
}

async fn profile<S: Store>(store: &S) -> Result<(), String> {
    let e = |e: StoreError| format!("conformance: unexpected error: {e}");
    let who = "p@x.io";
    store.install_app(who, "com.a").await.map_err(e)?;
    store.install_app(who, "com.a").await.map_err(e)?;
    store.install_app(who, "com.b").await.map_err(e)?;
    store.uninstall_app(who, "com.a").await.map_err(e)?;
    store.add_running_app(who, "com.b").await.map_err(e)?;
    let mut first = serde_json::Map::new();
    first.insert("brightness".into(), json!(50));
    first.insert("metric.system".into(), json!(true));
    store.set_mentraos_settings(who, first).await.map_err(e)?;
    let mut second = serde_json::Map::new();
    second.insert("brightness".into(), json!(80));
    store.set_mentraos_settings(who, second).await.map_err(e)?;
    let location = json!({"lat": 48.8566, "lng": 2.3522, "accuracy": 12.5});
    store.set_location(who, location.clone()).await.map_err(e)?;
    store.set_timezone(who, "Europe/Paris").await.map_err(e)?;
    store
        .set_app_settings(who, "com.b", json!([{"key": "k", "value": "v"}]))
        .await
        .map_err(e)?;
    let u = store
        .get_user(who)
        .await
        .map_err(e)?
        .ok_or("conformance: user vanished")?;
    check(
        u.installed_apps == vec!["com.b".to_string()],
        "installed apps are a set",
    )?;
    check(
        u.mentraos_settings.get("brightness") == Some(&json!(80))
            && u.mentraos_settings.get("metric.system") == Some(&json!(true)),
        "MentraOS settings merge key by key (keys may contain dots)",
    )?;
    check(u.location == Some(location), "location stored")?;
    check(
        u.timezone.as_deref() == Some("Europe/Paris"),
        "time zone stored",
    )?;
    check(
        u.running_apps == vec!["com.b".to_string()]
            && u.app_settings.get("com.b") == Some(&json!([{"key": "k", "value": "v"}])),
        "profile updates keep running apps and app settings",
    )?;
    check(!u.created_at.is_empty(), "first write creates the user")?;
    Ok(())
}

/// Many writers on one user at once — running apps, per-app settings,
/// MentraOS settings and installs, as two sessions and the REST API of the
/// same user would — must not lose each other's updates.
pub async fn concurrent_updates<S: Store>(store: Arc<S>) -> Result<(), String> {
    let who = "race@x.io";
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let package = format!("com.app{i}");
            s.add_running_app(who, &package).await?;
            s.set_app_settings(who, &package, json!([{"key": "n", "value": i}]))
                .await?;
            let mut change = serde_json::Map::new();
            change.insert(format!("key{i}"), json!(i));
            s.set_mentraos_settings(who, change).await?;
            s.install_app(who, &package).await
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| format!("conformance: task failed: {e}"))?
            .map_err(|e| format!("conformance: {e}"))?;
    }
    let u = store
        .get_user(who)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("user missing")?;
    check(
        u.running_apps.len() == 20,
        "concurrent running-app updates are all kept",
    )?;
    check(
        u.installed_apps.len() == 20,
        "concurrent installs are all kept",
    )?;
    check(
        (0..20).all(|i| {
            u.app_settings.get(&format!("com.app{i}")) == Some(&json!([{"key": "n", "value": i}]))
        }),
        "concurrent settings writes of different apps are all kept",
    )?;
    check(
        (0..20).all(|i| u.mentraos_settings.get(&format!("key{i}")) == Some(&json!(i))),
        "concurrent MentraOS settings changes are all kept",
    )?;
    concurrent_storage(store).await
}
