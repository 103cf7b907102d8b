//! The behaviour every [`Store`](crate::Store) backend must show.
//!
//! Backends call [`run_all`] from their own tests; it returns the first
//! broken expectation as an error naming it.

use std::sync::Arc;

use serde_json::json;

use crate::{hash_api_key, AppRecord, AppType, Store, StoreError};

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
    users(store).await?;
    Ok(())
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

/// Two writers on one user must not lose each other's updates.
pub async fn concurrent_updates<S: Store>(store: Arc<S>) -> Result<(), String> {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.add_running_app("race@x.io", &format!("com.app{i}")).await
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| format!("conformance: task failed: {e}"))?
            .map_err(|e| format!("conformance: {e}"))?;
    }
    let u = store
        .get_user("race@x.io")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("user missing")?;
    check(
        u.running_apps.len() == 20,
        "concurrent running-app updates are all kept",
    )
}
