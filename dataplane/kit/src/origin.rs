//! Where an entry of a data-plane table came from, and the rule that
//! follows: the config file wins for what it declares.
//!
//! Entries declared in the config file are re-applied at every start, shown
//! as origin `config`, and read-only through the admin API (edit the file);
//! entries made through the API persist in the store. A config entry that
//! left the file is removed at the next start; an API entry is never touched
//! by the file unless the file now declares the same key, in which case the
//! file's version replaces it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ConfigFile,
    AdminApi,
}

impl Origin {
    /// The name operators see (`mcctl … list`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfigFile => "config",
            Self::AdminApi => "api",
        }
    }
}

/// Refuses an API change to an entry the config file owns.
pub fn refuse_config_owned(origin: Origin, what: &str) -> Result<(), ApiError> {
    match origin {
        Origin::ConfigFile => Err(ApiError::FailedPrecondition(format!(
            "{what} comes from the config file; change it there"
        ))),
        Origin::AdminApi => Ok(()),
    }
}

/// What a start-up merge changes in one table.
#[derive(Debug, PartialEq, Eq)]
pub struct MergePlan<K, V> {
    /// Entries to write (every config entry, as the file now has it).
    pub upsert: Vec<(K, V)>,
    /// Keys of config-owned entries the file no longer declares.
    pub remove: Vec<K>,
}

/// Applies the file-wins rule to one table: `stored` is what the store holds
/// (with each entry's origin), `declared` what the file declares now.
pub fn merge<K: Ord + Clone, V>(
    stored: impl IntoIterator<Item = (K, Origin)>,
    declared: impl IntoIterator<Item = (K, V)>,
) -> MergePlan<K, V> {
    let declared: BTreeMap<K, V> = declared.into_iter().collect();
    let remove = stored
        .into_iter()
        .filter(|(k, o)| *o == Origin::ConfigFile && !declared.contains_key(k))
        .map(|(k, _)| k)
        .collect();
    MergePlan {
        upsert: declared.into_iter().collect(),
        remove,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_wins_for_what_it_declares_and_api_entries_stay() {
        let stored = [
            ("a", Origin::ConfigFile),
            ("b", Origin::ConfigFile),
            ("c", Origin::AdminApi),
            ("d", Origin::AdminApi),
        ];
        let plan = merge(stored, [("a", 1), ("d", 4)]);
        assert_eq!(plan.upsert, vec![("a", 1), ("d", 4)]);
        assert_eq!(plan.remove, vec!["b"]);
        assert!(refuse_config_owned(Origin::ConfigFile, "route x").is_err());
        assert!(refuse_config_owned(Origin::AdminApi, "route x").is_ok());
    }
}
