//! Committing a change: one new log version, created with a conditional put. A writer
//! that loses the race re-reads what won, checks for a real conflict, and tries the next
//! version or fails with [`Error::CommitConflict`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};

use serde_json::Value;

use crate::checkpoint::write_checkpoint;
use crate::error::{Error, Result};
use crate::layout::PartitionField;
use crate::log::{Commit, LogStore, Operation};
use crate::merge::KeyProbe;
use crate::snapshot::{FileEntry, Snapshot, add_file_as};

/// How many versions a writer walks past before it gives up.
const MAX_ATTEMPTS: usize = 10_000;

/// Once the log entries since the last checkpoint add or remove this many files (and a
/// quarter of the files the version holds), a checkpoint follows: reading that many JSON
/// actions costs more than reading the Parquet checkpoint.
pub const CHECKPOINT_AFTER_ACTIONS: usize = 1_000;

/// What a change depends on, to decide whether a concurrent commit conflicts with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConflictScope {
    /// Only adds files: conflicts with nothing but a schema change.
    Append,
    /// Rewrites files into others holding the same rows: conflicts only with a
    /// concurrent removal of one of them (checked for every scope) or a schema change.
    Rewrite,
    /// Replaces everything: conflicts with any concurrent change.
    All,
    /// Replaces these partitions (directories): conflicts with a concurrent change in any.
    Partitions(BTreeSet<String>),
    /// Matched rows by key: conflicts with a concurrently added file that may hold one of
    /// the keys (it could duplicate a key or hold a row this change replaces).
    Keys(Arc<KeyProbe>),
}

/// A change ready to be committed: its data files are already written.
#[derive(Debug, Clone)]
pub(crate) struct PendingCommit {
    pub operation: Operation,
    pub options: Value,
    pub schema: SchemaRef,
    pub partitioning: Vec<PartitionField>,
    pub properties: Option<BTreeMap<String, String>>,
    pub add: Vec<FileEntry>,
    pub remove: Vec<FileEntry>,
    pub scope: ConflictScope,
    pub metadata: BTreeMap<String, Value>,
}

/// Checks that `found` has the same columns and types as `expected`, naming the first
/// column that differs.
pub fn check_schema(expected: &Schema, found: &Schema) -> Result<()> {
    for field in expected.fields() {
        match found.field_with_name(field.name()) {
            Err(_) => {
                return Err(Error::SchemaMismatch {
                    column: field.name().clone(),
                    expected: field.data_type().to_string(),
                    found: "absent".into(),
                });
            }
            Ok(other) if other.data_type() != field.data_type() => {
                return Err(Error::SchemaMismatch {
                    column: field.name().clone(),
                    expected: field.data_type().to_string(),
                    found: other.data_type().to_string(),
                });
            }
            Ok(_) => {}
        }
    }
    if let Some(extra) = found
        .fields()
        .iter()
        .find(|f| expected.field_with_name(f.name()).is_err())
    {
        return Err(Error::SchemaMismatch {
            column: extra.name().clone(),
            expected: "absent".into(),
            found: extra.data_type().to_string(),
        });
    }
    Ok(())
}

fn check_partitioning(expected: &[PartitionField], found: &[PartitionField]) -> Result<()> {
    if expected != found {
        return Err(Error::PartitioningMismatch {
            expected: expected.iter().map(|f| f.name.clone()).collect(),
            found: found.iter().map(|f| f.name.clone()).collect(),
        });
    }
    Ok(())
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Commits `pending` on top of `base` (None: the dataset does not exist yet) and returns
/// the snapshot of the new version.
pub(crate) async fn commit(
    log: &LogStore,
    base: Option<&Snapshot>,
    pending: &PendingCommit,
) -> Result<Snapshot> {
    if base.is_some_and(|b| !b.is_committed()) {
        return Err(uncommitted(log.root()));
    }
    let read_version = base.map(Snapshot::version);
    let mut state: Option<Snapshot> = base.cloned();
    // Commits that won races, whose files are applied to `state` only when this one
    // lands: a writer that loses many races does not walk the index each time.
    let mut deferred: Vec<Commit> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        // The snapshot the commit applies to: the state itself (moved, not copied, once
        // the commit lands; a writer that loses many races copies nothing), or an empty one.
        let (commit, empty) = match &state {
            None => {
                let empty = Snapshot::empty(pending.schema.clone(), pending.partitioning.clone());
                let operation = match pending.operation {
                    Operation::Adopt => Operation::Adopt,
                    _ => Operation::Create,
                };
                let commit = build_commit(&empty, 0, operation, read_version, pending, true);
                (commit, Some(empty))
            }
            Some(current) => {
                let version = current.version() + 1;
                let commit = build_commit(
                    current,
                    version,
                    pending.operation,
                    read_version,
                    pending,
                    false,
                );
                (commit, None)
            }
        };
        let path = log.commit_path(commit.version).to_string();
        // `Some`: another writer committed this version first.
        let Some(theirs) = log.try_write_commit(&commit).await? else {
            let Some(mut next) = empty.or(state) else {
                return Err(Error::InvalidArgument("no state to commit on".into()));
            };
            next.apply_files(&deferred, &path)?;
            next.apply(&commit, &path)?;
            maybe_checkpoint(log, &mut next, &deferred, &commit).await;
            return Ok(next);
        };
        state = Some(match state {
            None => {
                if pending.scope != ConflictScope::Append {
                    return Err(Error::CommitConflict {
                        version: 0,
                        reason: "another writer created the dataset concurrently".into(),
                    });
                }
                let created = Snapshot::from_first_commit(&theirs, &path)?;
                check_schema(created.data_schema(), &pending.schema)?;
                check_partitioning(created.partitioning(), &pending.partitioning)?;
                created
            }
            Some(mut current) => {
                if let ConflictScope::Keys(_) = pending.scope {
                    // The check reads the index entries of their files.
                    current.apply_files(&deferred, &path)?;
                    deferred.clear();
                    current.apply(&theirs, &path)?;
                    check_conflict(&theirs, &current, pending)?;
                } else {
                    current.apply_metadata(&theirs, &path)?;
                    check_conflict(&theirs, &current, pending)?;
                    deferred.push(theirs);
                }
                current
            }
        });
    }
    Err(Error::CommitConflict {
        version: state.map(|s| s.version() + 1).unwrap_or(0),
        reason: format!("gave up after {MAX_ATTEMPTS} attempts"),
    })
}

/// The error for a change to a dataset indexed in memory, which has no log to commit to.
pub(crate) fn uncommitted(location: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!(
        "{location} has no dala log: it was indexed in memory (adopt_in_memory, as a dry run \
         does), so nothing can be written to it; open it again to adopt it first"
    ))
}

/// The snapshot that committing `pending` (an adoption) as version 0 would give, built in
/// memory: nothing is written, and nothing can be committed on it.
pub(crate) fn in_memory_first(pending: &PendingCommit, path: &str) -> Result<Snapshot> {
    let mut snapshot = Snapshot::empty(pending.schema.clone(), pending.partitioning.clone());
    let commit = build_commit(&snapshot, 0, pending.operation, None, pending, true);
    snapshot.apply(&commit, path)?;
    snapshot.mark_in_memory();
    Ok(snapshot)
}

fn build_commit(
    base: &Snapshot,
    version: u64,
    operation: Operation,
    read_version: Option<u64>,
    pending: &PendingCommit,
    first: bool,
) -> Commit {
    let mut partitions: BTreeSet<String> = BTreeSet::new();
    for f in pending.add.iter().chain(&pending.remove) {
        partitions.insert(f.partition_dir().to_string());
    }
    Commit {
        version,
        timestamp: now_millis(),
        operation,
        options: pending.options.clone(),
        read_version,
        schema: (first || pending.schema.as_ref() != base.data_schema().as_ref())
            .then(|| pending.schema.as_ref().clone()),
        partitioning: (first || pending.partitioning.as_slice() != base.partitioning())
            .then(|| pending.partitioning.clone()),
        properties: pending.properties.clone(),
        add: pending
            .add
            .iter()
            .map(|f| add_file_as(&pending.schema, &pending.partitioning, f))
            .collect(),
        remove: pending.remove.iter().map(Snapshot::remove_file).collect(),
        partitions: partitions.into_iter().filter(|p| !p.is_empty()).collect(),
        metadata: pending.metadata.clone(),
    }
}

/// Fails if the concurrent commit `theirs` changed something `pending` depends on;
/// `current` is the state with `theirs` applied.
fn check_conflict(theirs: &Commit, current: &Snapshot, pending: &PendingCommit) -> Result<()> {
    let conflict = |reason: String| Error::CommitConflict {
        version: theirs.version,
        reason,
    };
    if let Some(schema) = &theirs.schema
        && check_schema(schema, &pending.schema).is_err()
    {
        return Err(conflict(format!(
            "version {} changed the schema",
            theirs.version
        )));
    }
    if theirs.partitioning.is_some() {
        return Err(conflict(format!(
            "version {} changed the partitioning",
            theirs.version
        )));
    }
    let removed: BTreeSet<&str> = theirs.remove.iter().map(|r| r.path.as_str()).collect();
    if let Some(f) = pending
        .remove
        .iter()
        .find(|f| removed.contains(f.path.as_str()))
    {
        return Err(conflict(format!(
            "version {} ({}) already removed {}",
            theirs.version, theirs.operation, f.path
        )));
    }
    let added: BTreeSet<&str> = theirs.add.iter().map(|a| a.path.as_str()).collect();
    if let Some(f) = pending.add.iter().find(|f| added.contains(f.path.as_str())) {
        return Err(conflict(format!(
            "version {} ({}) already added {}",
            theirs.version, theirs.operation, f.path
        )));
    }
    let changed = || {
        theirs
            .add
            .iter()
            .map(|a| a.path.as_str())
            .chain(theirs.remove.iter().map(|r| r.path.as_str()))
    };
    match &pending.scope {
        ConflictScope::Append | ConflictScope::Rewrite => {}
        ConflictScope::All => {
            if changed().next().is_some() {
                return Err(conflict(format!(
                    "version {} ({}) changed the data this {} replaces",
                    theirs.version, theirs.operation, pending.operation
                )));
            }
        }
        ConflictScope::Partitions(dirs) => {
            let dir = |path: &str| path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            if let Some(path) = changed().find(|p| dirs.contains(&dir(p))) {
                return Err(conflict(format!(
                    "version {} ({}) changed {path}, in a partition this {} replaces",
                    theirs.version, theirs.operation, pending.operation
                )));
            }
        }
        ConflictScope::Keys(probe) => {
            let clash = theirs.add.iter().find(|a| {
                current
                    .file(&a.path)
                    .is_none_or(|entry| probe.may_hold(&current.stats_view(entry, false)))
            });
            if let Some(added) = clash {
                return Err(conflict(format!(
                    "version {} ({}) added {}, which may hold keys this {} matched",
                    theirs.version, theirs.operation, added.path, pending.operation
                )));
            }
        }
    }
    Ok(())
}

/// Whether `actions` file actions in the log since the last checkpoint call for one, in
/// a version of `files` files.
fn many_actions(actions: usize, files: usize) -> bool {
    actions >= CHECKPOINT_AFTER_ACTIONS && actions >= files / 4
}

/// Writes a checkpoint when the new version is due one: every `checkpoint.interval`
/// versions, and once the log entries since the last checkpoint hold at least
/// [`CHECKPOINT_AFTER_ACTIONS`] file actions and a quarter of the version's files. The
/// share keeps the cost bounded both ways: a reader replays at most that much JSON, and a
/// run of commits that each change a thousand files of a large dataset (a compaction) does
/// not write the whole file index after every one of them. A failure is logged, not raised:
/// the commit has landed and the log alone is complete. `theirs` are the commits of other
/// writers this one was applied after, `ours` the one it made.
async fn maybe_checkpoint(
    log: &LogStore,
    snapshot: &mut Snapshot,
    theirs: &[Commit],
    ours: &Commit,
) {
    let version = snapshot.version();
    let due = version > 0 && version.is_multiple_of(snapshot.checkpoint_interval());
    if !due && !many_actions(snapshot.log_actions(), snapshot.files().len()) {
        return;
    }
    // Commits of other writers since this one read the dataset: one of them may have
    // written a checkpoint since, and only the actions after it count.
    if !due
        && let Some(first) = theirs.first().map(|c| c.version)
        && let Some(checkpoint) = log.last_checkpoint_hint().await
        && checkpoint >= first
    {
        let since: usize = theirs
            .iter()
            .chain([ours])
            .filter(|c| c.version > checkpoint)
            .map(|c| c.add.len() + c.remove.len())
            .sum();
        snapshot.restart_log_actions(since);
        if !many_actions(snapshot.log_actions(), snapshot.files().len()) {
            return;
        }
    }
    match write_checkpoint(log, snapshot).await {
        Ok(()) => snapshot.restart_log_actions(0),
        Err(e) => tracing::warn!(version, error = %e, "could not write checkpoint"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_needs_a_thousand_actions_and_a_quarter_of_the_files() {
        assert!(!many_actions(999, 10));
        assert!(many_actions(1_000, 10));
        // A compaction of 100 000 files, a partition of 1 200 files a commit: about every
        // 21st commit, not every one.
        assert!(!many_actions(1_200, 100_000));
        assert!(!many_actions(24_000, 100_000));
        assert!(many_actions(25_000, 100_000));
    }
}
