//! The one-line answers of cluster workers: a word, then `key=value`
//! fields; lists are comma-separated numbers (`-` when empty).

use std::collections::HashMap;

/// A list of numbers as one field value.
pub fn list(v: &[u64]) -> String {
    if v.is_empty() {
        return "-".to_string();
    }
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// The fields of one answer.
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// The fields of an answer's text after its word.
    pub fn parse(rest: &str) -> Fields {
        Fields(
            rest.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A number field (0 when absent or not a number).
    pub fn num(&self, key: &str) -> u64 {
        self.0.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A list field.
    pub fn list(&self, key: &str) -> Vec<u64> {
        self.0
            .get(key)
            .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        let line = format!("ok=3 failed=0 ack={} none={}", list(&[5, 7, 9]), list(&[]));
        let f = Fields::parse(&line);
        assert_eq!(f.num("ok"), 3);
        assert_eq!(f.list("ack"), vec![5, 7, 9]);
        assert!(f.list("none").is_empty());
        assert_eq!(f.num("missing"), 0);
    }
}
