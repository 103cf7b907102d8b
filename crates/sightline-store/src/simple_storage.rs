//! Simple storage: the string key/value map each app keeps for each of its
//! users (the SDK's `session.simpleStorage`).
//!
//! A map belongs to one (user, package) pair and no other app or user can
//! reach it. Its size is the sum of the UTF-8 bytes of its keys and values;
//! every backend checks a write against the caller's bound inside the same
//! atomic step that applies it, so concurrent writers cannot together push a
//! map past its bound.

use std::collections::BTreeMap;

/// One (user, app)'s stored entries, sorted by key.
pub type StorageEntries = BTreeMap<String, String>;

/// What a write to a simple storage map did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageWrite {
    /// The entries were stored; the map now holds `bytes`.
    Stored { bytes: usize },
    /// Nothing was written: the map would have held `bytes`, over the bound.
    OverQuota { bytes: usize },
}

/// The size of a map as bounded: the bytes of its keys and values.
pub fn storage_bytes(entries: &StorageEntries) -> usize {
    entries.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Applies `changes` to `current` if the result stays within `max_bytes`;
/// returns the new map (or `None` when over) and what the write did.
pub(crate) fn merged(
    current: &StorageEntries,
    changes: &StorageEntries,
    max_bytes: usize,
) -> (Option<StorageEntries>, StorageWrite) {
    let mut next = current.clone();
    next.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
    let bytes = storage_bytes(&next);
    if bytes > max_bytes {
        (None, StorageWrite::OverQuota { bytes })
    } else {
        (Some(next), StorageWrite::Stored { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> StorageEntries {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_write_replaces_its_keys_and_is_bounded_by_the_result() {
        let current = map(&[("a", "1234"), ("b", "x")]);
        let (next, write) = merged(&current, &map(&[("a", "1")]), 4);
        assert_eq!(write, StorageWrite::Stored { bytes: 4 });
        assert_eq!(next, Some(map(&[("a", "1"), ("b", "x")])));
        let (next, write) = merged(&current, &map(&[("c", "12")]), 9);
        assert_eq!(write, StorageWrite::OverQuota { bytes: 10 });
        assert_eq!(next, None);
        assert_eq!(storage_bytes(&map(&[("é", "ü")])), 4, "UTF-8 bytes count");
    }
}
