//! Vacuum: deleting data files that no version within the retention references.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use chrono::Utc;
use dala_dataset::Dataset;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;

use crate::compact::bytes;
use crate::error::{Error, Result};

/// Deletes run at once.
const DELETE_CONCURRENCY: usize = 16;

/// How [`plan_vacuum`] decides what goes.
#[derive(Debug, Clone)]
pub struct VacuumOptions {
    /// Versions this young stay readable (time travel): files they reference are kept.
    /// `None` takes the dataset's `retention.seconds` property, else 7 days.
    pub retain: Option<Duration>,
    /// Files no version references are deleted only when at least this old, so that
    /// the files of a write still in progress are never taken (default 1 hour).
    pub orphan_grace: Duration,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        VacuumOptions {
            retain: None,
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// The default retention when neither the options nor the dataset set one.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a file is to be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteReason {
    /// Removed from the dataset by this version, older than the retention.
    Removed(u64),
    /// Never in any version in the log: left by a writer that crashed or lost a race.
    Orphan,
}

/// A file vacuum would delete.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumCandidate {
    /// Path relative to the dataset root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Why.
    pub reason: DeleteReason,
}

/// What a vacuum would delete.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumPlan {
    /// The dataset's version when planned.
    pub version: u64,
    /// The oldest version that stays readable.
    pub oldest_kept_version: u64,
    /// The retention applied.
    pub retain_seconds: u64,
    /// Files to delete, by path.
    pub delete: Vec<VacuumCandidate>,
    /// Data files kept (referenced by a version within the retention, or too young).
    pub kept: usize,
}

impl VacuumPlan {
    /// Bytes the plan frees.
    pub fn bytes(&self) -> u64 {
        self.delete.iter().map(|c| c.size).sum()
    }
}

impl fmt::Display for VacuumPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vacuum of version {}: {} files ({}) to delete, {} kept; versions {}..={} stay readable",
            self.version,
            self.delete.len(),
            bytes(self.bytes()),
            self.kept,
            self.oldest_kept_version,
            self.version
        )?;
        for c in &self.delete {
            let why = match c.reason {
                DeleteReason::Removed(v) => format!("removed by version {v}"),
                DeleteReason::Orphan => "orphan".to_string(),
            };
            writeln!(f, "  {} ({}, {why})", c.path, bytes(c.size))?;
        }
        Ok(())
    }
}

/// What a vacuum deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VacuumReport {
    /// Files deleted.
    pub files_deleted: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// Finds the data files under `dataset`'s root that no version within the retention
/// references: files its commits removed before the oldest kept version, and orphans
/// older than the grace period. Lists only under the dataset root; deletes nothing.
pub async fn plan_vacuum(dataset: &Dataset, options: &VacuumOptions) -> Result<VacuumPlan> {
    if !dataset.snapshot().is_committed() {
        return Err(Error::Dataset(dala_dataset::Error::InvalidArgument(
            format!(
                "{} has no dala log: there are no versions to vacuum",
                dataset.url()
            ),
        )));
    }
    let retain = options
        .retain
        .or_else(|| dataset.snapshot().retention())
        .unwrap_or(DEFAULT_RETENTION);
    let now = Utc::now();
    let horizon = now.timestamp_millis().saturating_sub(millis(retain));
    let log = dataset.log_store();
    // The commits, oldest first; the oldest kept version is the one current at the
    // horizon (the newest not younger than it), or version 0.
    let mut commits = dataset.history().await?;
    commits.reverse();
    let latest = dataset.version();
    commits.retain(|c| c.version <= latest);
    let oldest_kept = commits
        .iter()
        .rev()
        .find(|c| c.timestamp <= horizon)
        .map_or(0, |c| c.version);
    // Every file a kept version references: those of the oldest kept version, and every
    // file added after it. Files removed at or before it are only in older versions.
    let mut live: HashSet<String> = Dataset::builder(dataset.url())
        .with_store(log.store().clone(), log.root().clone())
        .with_version(oldest_kept)
        .open()
        .await?
        .snapshot()
        .files()
        .map(|f| f.path.clone())
        .collect();
    let mut removed_by: std::collections::HashMap<&str, u64> = Default::default();
    for commit in &commits {
        if commit.version > oldest_kept {
            live.extend(commit.add.iter().map(|add| add.path.clone()));
        }
        for remove in &commit.remove {
            removed_by.insert(remove.path.as_str(), commit.version);
        }
    }
    live.extend(dataset.snapshot().files().map(|f| f.path.clone()));

    let grace = now
        .timestamp_millis()
        .saturating_sub(millis(options.orphan_grace));
    let store = log.store();
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(log.root()))
        .try_collect()
        .await
        .map_err(|source| Error::Store {
            path: log.root().to_string(),
            source,
        })?;
    let mut delete = Vec::new();
    let mut kept = 0;
    for meta in listed {
        let Some(path) = log.relative(&meta.location) else {
            continue;
        };
        if !is_data_file(&path) {
            continue;
        }
        if live.contains(&path) {
            kept += 1;
            continue;
        }
        // A commit can only remove a file a commit added: anything else is an orphan.
        let reason = match removed_by.get(path.as_str()) {
            Some(version) => DeleteReason::Removed(*version),
            None => DeleteReason::Orphan,
        };
        // A file not in any kept version may still be a write in progress (an orphan
        // to be) if it is young: it is left for a later vacuum.
        if reason == DeleteReason::Orphan && meta.last_modified.timestamp_millis() > grace {
            kept += 1;
            continue;
        }
        delete.push(VacuumCandidate {
            path,
            size: meta.size,
            reason,
        });
    }
    delete.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(VacuumPlan {
        version: latest,
        oldest_kept_version: oldest_kept,
        retain_seconds: retain.as_secs(),
        delete,
        kept,
    })
}

/// Deletes the files of `plan`, after checking again that the dataset's latest version
/// does not reference any of them.
pub async fn execute_vacuum(dataset: &Dataset, plan: &VacuumPlan) -> Result<VacuumReport> {
    let log = dataset.log_store();
    let mut latest = dataset.clone();
    latest.reload().await?;
    let live: HashSet<&str> = latest.snapshot().files().map(|f| f.path.as_str()).collect();
    let doomed: Vec<&VacuumCandidate> = plan
        .delete
        .iter()
        .filter(|c| !live.contains(c.path.as_str()))
        .collect();
    let store = log.store().clone();
    let deleted: Vec<u64> = stream::iter(doomed)
        .map(|candidate| {
            let store = store.clone();
            async move {
                let path = log.child(&candidate.path)?;
                match store.delete(&path).await {
                    Ok(()) => {
                        dala_dataset::failpoint::hit("vacuum:after-delete");
                        Ok(candidate.size)
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(0),
                    Err(source) => Err(Error::Store {
                        path: candidate.path.clone(),
                        source,
                    }),
                }
            }
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(VacuumReport {
        files_deleted: deleted.len(),
        bytes_freed: deleted.iter().sum(),
    })
}

/// A Parquet data file of the dataset (not the log, not a hidden or marker file).
fn is_data_file(path: &str) -> bool {
    if path.starts_with("_dala/") {
        return false;
    }
    let hidden = path
        .split('/')
        .any(|segment| segment.starts_with('.') || segment.starts_with('_'));
    !hidden && path.ends_with(".parquet")
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
