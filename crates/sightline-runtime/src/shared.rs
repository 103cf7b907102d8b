//! What every actor of one runtime shares: the health figures, the app
//! servers' webhook breakers, the registry of live actors and the
//! Prometheus metrics. Each part is safe to use from any thread (atomics,
//! or a lock taken once per webhook call or per actor start and stop), and
//! none of them depends on another; this is the one place that holds them
//! together.

use std::sync::Arc;

use crate::breaker::{BreakerPolicy, WebhookBreakers};
use crate::figures::HealthFigures;
use crate::metrics::Metrics;
use sightline_probe::ActorRegistry;

/// The state shared by every actor of one runtime.
#[derive(Debug)]
pub struct RuntimeShared {
    pub figures: HealthFigures,
    pub breakers: WebhookBreakers,
    pub actors: Arc<ActorRegistry>,
    pub metrics: Metrics,
}

impl RuntimeShared {
    pub fn new(policy: BreakerPolicy) -> Self {
        RuntimeShared::for_instance(policy, None)
    }

    /// The shared state of one instance of a cluster (its id on every
    /// metric).
    pub fn for_instance(policy: BreakerPolicy, instance: Option<&str>) -> Self {
        let metrics = Metrics::for_instance(instance);
        RuntimeShared {
            figures: HealthFigures::new(&metrics),
            breakers: WebhookBreakers::new(policy),
            actors: ActorRegistry::new(),
            metrics,
        }
    }

    /// The `/metrics` page.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.actors)
    }
}
