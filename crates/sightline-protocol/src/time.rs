//! Timestamps on the wire: ISO-8601 strings out, ISO strings or epoch
//! milliseconds in (Android phones send numbers).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Formats a time the way the SDK expects: `2025-06-27T17:08:38.000Z`.
pub fn iso8601(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Converts epoch milliseconds to an ISO string; `None` when out of range.
pub fn iso_from_epoch_ms(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms).single().map(iso8601)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let t = Utc.timestamp_millis_opt(1_751_044_118_000).unwrap();
        assert_eq!(iso8601(t), "2025-06-27T17:08:38.000Z");
        assert_eq!(
            iso_from_epoch_ms(1_751_044_118_000).as_deref(),
            Some("2025-06-27T17:08:38.000Z")
        );
    }
}
