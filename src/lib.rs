//! Sightline: an actor-model session runtime for the cloud side of smart
//! glasses, speaking the MentraOS cloud protocol.
//!
//! This crate bundles the parts for embedding: [`server`] (mount the routes
//! on your actix-web app), [`runtime`] (the actors), [`store`] (persistence)
//! [`protocol`] (wire types) and [`cluster`] (ownership and messaging
//! between the instances of a cluster). See `examples/embed.rs`.

pub use sightline_cluster as cluster;
pub use sightline_protocol as protocol;
pub use sightline_runtime as runtime;
pub use sightline_server as server;
pub use sightline_store as store;

pub use sightline_server::{ServerConfig, Sightline};
