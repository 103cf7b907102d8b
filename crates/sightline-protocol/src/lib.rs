//! Wire types of the MentraOS cloud protocol as Sightline speaks it.
//!
//! This crate is pure: it parses what glasses and apps send, builds what
//! Sightline sends back, and decides which subscription strings match which
//! event, [`device`] the requests apps make of the glasses' hardware. It does no I/O and holds no state, so it can be used alone (by a
//! glasses simulator, a load generator or a fuzzer) and tested exhaustively.
//!
//! Reading order follows the data: [`glasses`] and [`app`] parse inbound
//! frames, [`stream`] matches events to subscriptions, [`outbound`] builds the
//! replies, [`webhook`] the HTTP payloads sent to app servers.

pub mod app;
pub mod app_messaging;
pub mod capabilities;
pub mod device;
pub mod error;
pub mod glasses;
pub mod outbound;
pub mod session_id;
pub mod settings;
pub mod stream;
pub mod time;
pub mod webhook;

pub use error::ProtocolError;
