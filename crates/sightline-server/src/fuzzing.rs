//! The checks Sightline runs on hostile input before it reaches a session
//! or the store, reachable from outside the crate for the fuzz targets in
//! `fuzz/` and the property tests. Not part of Sightline's API: hidden from
//! the docs and free to change.

use serde_json::Value;
use sightline_audio::{AudioCodec, AudioError};

/// What `POST /appsettings/{packageName}` makes of its body, given the
/// app's settings schema and the user's stored values, under the default
/// limits.
pub fn apply_settings_change(
    schema: &[Value],
    stored: &[Value],
    change: Value,
) -> Result<Vec<Value>, String> {
    let limits = crate::settings_change::SettingsLimits::default();
    crate::settings_change::apply_change(schema, stored, change, &limits).map_err(|e| e.to_string())
}

/// The codec named by the query string of a `/glasses-ws` upgrade.
pub fn codec_from_query(query: &str) -> Result<AudioCodec, AudioError> {
    crate::glasses_ws::codec_from_query(query)
}
