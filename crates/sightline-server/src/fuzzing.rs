//! The checks Sightline runs on hostile input before it reaches a session
//! or the store, reachable from outside the crate for the fuzz targets in
//! `fuzz/` and the property tests. Not part of Sightline's API: hidden from
//! the docs and free to change.

use serde_json::Value;
use sightline_audio::{AudioCodec, AudioError};

/// What `POST /appsettings/{packageName}` makes of its body, given the
/// user's current settings.
pub fn apply_settings_change(current: Vec<Value>, change: Value) -> Result<Vec<Value>, String> {
    crate::app_settings::apply_change(current, change)
}

/// The codec named by the query string of a `/glasses-ws` upgrade.
pub fn codec_from_query(query: &str) -> Result<AudioCodec, AudioError> {
    crate::glasses_ws::codec_from_query(query)
}
