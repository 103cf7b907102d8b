//! A user's session wherever it lives in the cluster.
//!
//! A REST change (settings, uninstall) or an admin view reaches the user's
//! session through [`ask`]: the session here if this instance has it, else
//! the owner named in the ownership bucket, over NATS request/reply
//! ([`SessionAsk`] on `sightline.instance.<owner>.session`). Every instance
//! answers those requests for its own sessions ([`serve`]). Single-node,
//! only the local session is asked.

use std::time::Instant;

use serde_json::Value;
use sightline_cluster::bus::session_subject;
use sightline_cluster::Bus;
use sightline_probe::ActorFilter;
use sightline_runtime::session::{
    AppIsConnected, AppRecordChanged, AppSettingsChanged, AppUninstalled, DescribeSession,
    MentraosSettingsChanged, RepointApp,
};
use sightline_runtime::Runtime;

use super::wire::{SessionAnswer, SessionAsk, SessionCommand};
use super::ClusterError;
use crate::SharedState;

/// Asks `user`'s session, wherever it is; `None` if no instance has one.
pub async fn ask(
    state: &SharedState,
    user: &str,
    command: SessionCommand,
) -> Result<Option<Value>, ClusterError> {
    if let Some(value) = apply_here(&state.runtime, user, &command).await {
        return Ok(Some(value));
    }
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let Some((owner, _)) = cluster.bucket.owner(user).await? else {
        return Ok(None);
    };
    if owner.instance == cluster.me.instance {
        return Ok(None);
    }
    let started = Instant::now();
    let ask = SessionAsk {
        user: user.to_string(),
        command,
    };
    let answer = cluster
        .bus
        .request(session_subject(&owner.instance), &ask)
        .await;
    state
        .runtime
        .shared
        .metrics
        .cluster_request(started.elapsed());
    match answer {
        Ok(SessionAnswer::Done { value }) => Ok(Some(value)),
        Ok(SessionAnswer::NoSession) => Ok(None),
        // The owner is gone: its lease lapses, nobody has the session.
        Err(sightline_cluster::BusError::NoResponders(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Asks the session of `user` on this instance; `None` if there is none.
pub async fn apply_here(runtime: &Runtime, user: &str, command: &SessionCommand) -> Option<Value> {
    if let SessionCommand::Actors { package } = command {
        let filter = ActorFilter {
            user: Some(user.to_string()),
            package: package.clone(),
        };
        let view = crate::actor_views::actors_view(runtime, &filter);
        return (view.shown > 0).then(|| serde_json::to_value(view).unwrap_or(Value::Null));
    }
    let session = runtime.live_session(user).await?;
    let value = match command.clone() {
        SessionCommand::MentraosSettingsChanged { changes } => {
            session.addr().do_send(MentraosSettingsChanged(changes));
            Value::Bool(true)
        }
        SessionCommand::AppUninstalled { package } => {
            session.addr().do_send(AppUninstalled {
                package_name: package,
            });
            Value::Bool(true)
        }
        SessionCommand::AppSettingsChanged {
            package,
            stored,
            settings,
        } => {
            let changed = AppSettingsChanged {
                package_name: package,
                stored,
                settings,
            };
            Value::Bool(session.addr().send(changed).await.unwrap_or(false))
        }
        SessionCommand::AppIsConnected { package } => Value::Bool(
            session
                .send(AppIsConnected {
                    package_name: package,
                })
                .await
                .unwrap_or(false),
        ),
        SessionCommand::Describe => {
            let view = session.send(DescribeSession).await.ok()?;
            serde_json::to_value(view).unwrap_or(Value::Null)
        }
        SessionCommand::Actors { .. } => Value::Null,
        SessionCommand::RepointApp { package } => {
            session.addr().do_send(RepointApp {
                package_name: package,
            });
            Value::Bool(true)
        }
    };
    Some(value)
}

/// Answers other instances' requests for this instance's sessions, until
/// the NATS connection closes.
pub async fn serve(bus: Bus, instance: String, runtime: Runtime) -> Result<(), ClusterError> {
    let mut requests = bus.subscribe(session_subject(&instance)).await?;
    actix_rt::spawn(async move {
        while let Some(msg) = requests.next().await {
            let Some(reply) = msg.reply.clone() else {
                continue;
            };
            let (bus, runtime) = (bus.clone(), runtime.clone());
            actix_rt::spawn(async move {
                let answer = match serde_json::from_slice::<SessionAsk>(&msg.payload) {
                    Ok(ask) => match apply_here(&runtime, &ask.user, &ask.command).await {
                        Some(value) => SessionAnswer::Done { value },
                        None => SessionAnswer::NoSession,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed session request from another instance");
                        SessionAnswer::NoSession
                    }
                };
                bus.reply(reply, &answer).await;
            });
        }
    });
    Ok(())
}

/// A developer changed an app's registration: every session running it,
/// on every instance, takes the new record.
pub async fn app_changed(state: &SharedState, record: sightline_store::AppRecord) {
    state
        .runtime
        .supervisor
        .do_send(AppRecordChanged(record.clone()));
    if let Some(cluster) = &state.cluster {
        let announced = AppAnnounced {
            from: cluster.me.instance.clone(),
            record,
        };
        let subject = sightline_cluster::bus::APPS_SUBJECT.to_string();
        if let Err(e) = cluster.bus.publish(subject, &announced).await {
            tracing::warn!(error = %e, "changed app registration not announced to the other instances");
        }
    }
}

/// A changed registration, as it travels.
#[derive(serde::Serialize, serde::Deserialize)]
struct AppAnnounced {
    from: String,
    record: sightline_store::AppRecord,
}

/// Hands the other instances' changed registrations to this instance's
/// sessions, until NATS closes.
pub async fn serve_app_changes(
    bus: Bus,
    instance: String,
    runtime: Runtime,
) -> Result<(), ClusterError> {
    let subject = sightline_cluster::bus::APPS_SUBJECT.to_string();
    let mut changes = bus.subscribe(subject).await?;
    actix_rt::spawn(async move {
        while let Some(msg) = changes.next().await {
            match serde_json::from_slice::<AppAnnounced>(&msg.payload) {
                Ok(a) if a.from == instance => {}
                Ok(a) => runtime.supervisor.do_send(AppRecordChanged(a.record)),
                Err(e) => {
                    tracing::warn!(error = %e, "malformed app registration from another instance")
                }
            }
        }
    });
    Ok(())
}
