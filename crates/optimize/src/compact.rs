//! Compaction: small files of a partition bin-packed into files of a target size.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use dala_dataset::{
    Clustering, Dataset, Error as DatasetError, RewriteOptions, Scalar, SortColumn, WriteOptions,
};
use futures::{StreamExt, stream};
use serde::Serialize;

use crate::error::{Error, Result, check_plan_version};

/// How [`plan_compaction`] groups files and how the new files are written.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Bytes per output file (default 128 MiB).
    pub target_file_size: u64,
    /// Files at least this share of the target are left alone (default 0.75), unless
    /// `rewrite_all`, `sort_by` or `unique` asks for every file to be rewritten.
    pub near_target: f64,
    /// Rows per output file, if capped.
    pub max_rows_per_file: Option<usize>,
    /// Sort the rows of each partition by these columns, across its files: every file of
    /// the partition is rewritten, and the new files hold consecutive ranges.
    pub sort_by: Vec<SortColumn>,
    /// Cluster the rows of each partition along a Z-order curve over these 2 to 4 data
    /// columns, across its files, so that a filter on any of them prunes files.
    pub zorder: Vec<String>,
    /// Drop duplicate rows within each group: rows equal on these columns (all columns
    /// when empty).
    pub unique: Option<Vec<String>>,
    /// Rewrite every file, those near the target too (to apply new writer settings).
    pub rewrite_all: bool,
    /// Group files by the day, week or month their rows begin in (the smallest value of
    /// `timestamp_column` in the file index), so that no new file mixes periods.
    pub by_period: Option<Period>,
    /// The timestamp or date column of `by_period` (default: the column the dataset derives
    /// its partitions from).
    pub timestamp_column: Option<String>,
    /// Partitions whose groups share one commit (default 1: a commit per partition).
    pub partitions_per_commit: usize,
    /// Groups rewritten at once (default: the rayon pool's threads).
    pub concurrency: usize,
    /// Memory for the whole job (default 1 GiB): the file index first, the rest shared
    /// among the groups running at once. A budget below the index and one group's least
    /// needs is refused ([`Error::MemoryBudget`]) rather than exceeded.
    pub memory_budget: usize,
    /// Writer settings of the new files (compression, row-group size, statistics...);
    /// the fields above take precedence.
    pub write: WriteOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_file_size: 128 * 1024 * 1024,
            near_target: 0.75,
            max_rows_per_file: None,
            sort_by: Vec::new(),
            zorder: Vec::new(),
            unique: None,
            rewrite_all: false,
            by_period: None,
            timestamp_column: None,
            partitions_per_commit: 1,
            concurrency: rayon::current_num_threads().max(1),
            memory_budget: 1 << 30,
            write: WriteOptions::default(),
        }
    }
}

impl CompactOptions {
    fn rewrites_everything(&self) -> bool {
        self.rewrite_all || self.clustering().is_some() || self.unique.is_some()
    }

    /// How rows are ordered across the files of a partition, if they are.
    fn clustering(&self) -> Option<Clustering> {
        if !self.zorder.is_empty() {
            Some(Clustering::ZOrder(self.zorder.clone()))
        } else if !self.sort_by.is_empty() {
            Some(Clustering::Sort(self.sort_by.clone()))
        } else {
            None
        }
    }

    fn check(&self) -> Result<()> {
        if self.target_file_size == 0 {
            return Err(Error::InvalidOption(
                "target_file_size must be above 0".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.near_target) {
            return Err(Error::InvalidOption(format!(
                "near_target must be between 0 and 1, not {}",
                self.near_target
            )));
        }
        if !self.zorder.is_empty() && !self.sort_by.is_empty() {
            return Err(Error::InvalidOption(
                "sort_by and zorder each order the rows: choose one".into(),
            ));
        }
        if !self.zorder.is_empty() && !(2..=4).contains(&self.zorder.len()) {
            return Err(Error::InvalidOption(format!(
                "zorder needs 2 to 4 columns, not {}",
                self.zorder.len()
            )));
        }
        if self.partitions_per_commit == 0 || self.concurrency == 0 {
            return Err(Error::InvalidOption(
                "partitions_per_commit and concurrency must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// A period of time files are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    /// A calendar day.
    Day,
    /// An ISO week.
    Week,
    /// A calendar month.
    Month,
}

impl std::str::FromStr for Period {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            other => Err(Error::InvalidOption(format!(
                "unknown period {other:?} (day, week or month)"
            ))),
        }
    }
}

impl Period {
    /// The label of the period `value` (a date or timestamp) falls in.
    fn label(self, value: &Scalar) -> Option<String> {
        let day = value.to_date()?;
        Some(match self {
            Period::Day => day.format("%Y-%m-%d").to_string(),
            Period::Week => day.format("%G-W%V").to_string(),
            Period::Month => day.format("%Y-%m").to_string(),
        })
    }
}

/// Files that are rewritten together, in one commit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileGroup {
    /// The partition directories of its files.
    pub partitions: Vec<String>,
    /// The periods its files begin in (with `by_period`).
    pub periods: Vec<String>,
    /// The files (paths relative to the dataset root).
    pub files: Vec<String>,
    /// Rows in them.
    pub rows: u64,
    /// Bytes of them.
    pub bytes: u64,
    /// Files expected after the rewrite.
    pub files_after: u64,
}

/// What a compaction would do: groups of files and the files they become.
#[derive(Debug, Clone, Serialize)]
pub struct CompactionPlan {
    /// The dataset version the plan was made from.
    pub version: u64,
    /// Groups of files, each rewritten and committed on its own.
    pub groups: Vec<FileGroup>,
    /// Files in the dataset.
    pub files_total: usize,
    /// Bytes in the dataset.
    pub bytes_total: u64,
    #[serde(skip)]
    options: CompactOptions,
}

impl CompactionPlan {
    /// Files the plan rewrites.
    pub fn files_rewritten(&self) -> usize {
        self.groups.iter().map(|g| g.files.len()).sum()
    }

    /// Files expected in their place.
    pub fn files_after(&self) -> u64 {
        self.groups.iter().map(|g| g.files_after).sum()
    }

    /// Bytes the plan rewrites.
    pub fn bytes_rewritten(&self) -> u64 {
        self.groups.iter().map(|g| g.bytes).sum()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl fmt::Display for CompactionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "compaction of version {}: {} of {} files ({} of {}) into about {} files, in {} commits",
            self.version,
            self.files_rewritten(),
            self.files_total,
            bytes(self.bytes_rewritten()),
            bytes(self.bytes_total),
            self.files_after(),
            self.groups.len()
        )?;
        for group in &self.groups {
            let partitions = match group.partitions.as_slice() {
                [] => "(unpartitioned)".to_string(),
                [one] if one.is_empty() => "(unpartitioned)".to_string(),
                [one] => one.clone(),
                many => format!("{} and {} more", many[0], many.len() - 1),
            };
            let partitions = match group.periods.as_slice() {
                [] => partitions,
                periods => format!("{partitions} ({})", periods.join(", ")),
            };
            writeln!(
                f,
                "  {partitions}: {} files, {} rows, {} -> {} files",
                group.files.len(),
                group.rows,
                bytes(group.bytes),
                group.files_after
            )?;
        }
        Ok(())
    }
}

/// The length of the longest of `names`, to align a printed table.
pub(crate) fn widest<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0)
}

/// A file to pack: its path, bytes and rows.
type SmallFile<'a> = (&'a str, u64, u64);

/// The dataset property naming the column derived partitions come from.
const TIMESTAMP_COLUMN: &str = "partition.timestamp_column";

/// Bytes for people.
pub(crate) fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).to_string()
}

/// Groups the small files of each partition of `dataset`'s version into bins of at most
/// the target size (first fit, largest first). Reads no data file.
pub fn plan_compaction(dataset: &Dataset, options: &CompactOptions) -> Result<CompactionPlan> {
    options.check()?;
    let snapshot = dataset.snapshot();
    let target = options.target_file_size;
    let near = (target as f64 * options.near_target) as u64;
    let period_column = match options.by_period {
        Some(_) => {
            let name = options
                .timestamp_column
                .clone()
                .or_else(|| snapshot.properties().get(TIMESTAMP_COLUMN).cloned())
                .ok_or_else(|| {
                    Error::InvalidOption(
                        "by_period needs a timestamp_column (the dataset has none)".into(),
                    )
                })?;
            let index = snapshot.data_schema().index_of(&name).map_err(|_| {
                Error::InvalidOption(format!("{name} is not a data column of the dataset"))
            })?;
            Some(index)
        }
        None => None,
    };
    // Files of a partition (and period) are bin-packed together.
    let mut by_partition: BTreeMap<(&str, Option<String>), Vec<SmallFile>> = BTreeMap::new();
    for file in snapshot.files() {
        if options.rewrites_everything() || file.size < near {
            let period = options
                .by_period
                .zip(period_column)
                .and_then(|(period, i)| {
                    let min = file.stats.get(i)?.as_ref()?.min.as_ref()?;
                    period.label(min)
                });
            by_partition
                .entry((file.partition_dir(), period))
                .or_default()
                .push((file.path.as_str(), file.size, file.rows));
        }
    }
    let mut bins_by_partition: Vec<(String, Vec<FileGroup>)> = Vec::new();
    for ((partition, period), mut files) in by_partition {
        files.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut bins: Vec<FileGroup> = Vec::new();
        // Ordered across files, a partition is one bin: its rows are sorted together.
        let one_bin = options.clustering().is_some();
        for (path, size, rows) in files {
            let fits = match one_bin {
                true => (!bins.is_empty()).then_some(0),
                false => bins.iter().position(|bin| bin.bytes + size <= target),
            };
            let bin = match fits {
                Some(i) => &mut bins[i],
                None => {
                    bins.push(FileGroup {
                        partitions: vec![partition.to_string()],
                        periods: period.iter().cloned().collect(),
                        ..FileGroup::default()
                    });
                    let last = bins.len() - 1;
                    &mut bins[last]
                }
            };
            bin.files.push(path.to_string());
            bin.bytes += size;
            bin.rows += rows;
        }
        // A file alone in its bin gains nothing from a rewrite, unless asked for one.
        bins.retain(|bin| bin.files.len() > 1 || options.rewrites_everything());
        for bin in &mut bins {
            bin.files_after = expected_files(bin.bytes, bin.rows, options);
        }
        if !bins.is_empty() {
            bins_by_partition.push((partition.to_string(), bins));
        }
    }
    // Commit groups: the bins of up to `partitions_per_commit` partitions. One rewrite
    // writes a partition's rows together, so periods each keep a group of their own.
    let per_commit = match options.by_period {
        Some(_) => 1,
        None => options.partitions_per_commit,
    };
    let mut groups = Vec::new();
    for chunk in bins_by_partition.chunks(per_commit) {
        let mut group = FileGroup {
            partitions: chunk.iter().map(|(p, _)| p.clone()).collect(),
            ..FileGroup::default()
        };
        for bin in chunk.iter().flat_map(|(_, bins)| bins) {
            group.periods.extend(bin.periods.iter().cloned());
            group.files.extend(bin.files.iter().cloned());
            group.rows += bin.rows;
            group.bytes += bin.bytes;
            group.files_after += bin.files_after;
        }
        groups.push(group);
    }
    if !groups.is_empty() {
        check_budget(options.memory_budget, dataset)?;
    }
    Ok(CompactionPlan {
        version: snapshot.version(),
        groups,
        files_total: snapshot.files().len(),
        bytes_total: snapshot.bytes(),
        options: options.clone(),
    })
}

fn expected_files(bytes: u64, rows: u64, options: &CompactOptions) -> u64 {
    let by_size = bytes.div_ceil(options.target_file_size).max(1);
    let by_rows = options
        .max_rows_per_file
        .map_or(1, |max| rows.div_ceil(max.max(1) as u64).max(1));
    by_size.max(by_rows)
}

/// How one group ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupOutcome {
    /// The group's partitions.
    pub partitions: Vec<String>,
    /// The version its commit created; `None` when it was skipped.
    pub version: Option<u64>,
    /// Files removed and added.
    pub files_removed: u64,
    /// Files added.
    pub files_added: u64,
    /// Bytes before and after.
    pub bytes_before: u64,
    /// Bytes written.
    pub bytes_after: u64,
    /// Duplicate rows dropped.
    pub rows_dropped: u64,
    /// Why it was skipped (a concurrent writer changed its files).
    pub skipped: Option<String>,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactionReport {
    /// Every group, in the order they finished.
    pub groups: Vec<GroupOutcome>,
    /// Files removed by the committed groups.
    pub files_removed: u64,
    /// Files added by the committed groups.
    pub files_added: u64,
    /// Bytes of the files removed.
    pub bytes_before: u64,
    /// Bytes of the files added.
    pub bytes_after: u64,
    /// Duplicate rows dropped (with `unique`).
    pub rows_dropped: u64,
    /// Groups skipped because a concurrent writer changed their files.
    pub skipped: usize,
    /// The newest version committed.
    pub version: Option<u64>,
    /// Wall time.
    pub seconds: f64,
}

impl fmt::Display for CompactionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "compacted {} files ({}) into {} files ({}) in {} commits, {:.2}s",
            self.files_removed,
            bytes(self.bytes_before),
            self.files_added,
            bytes(self.bytes_after),
            self.groups.len() - self.skipped,
            self.seconds
        )?;
        if self.rows_dropped > 0 {
            write!(f, "; {} duplicate rows dropped", self.rows_dropped)?;
        }
        if self.skipped > 0 {
            write!(
                f,
                "; {} groups skipped (changed by another writer)",
                self.skipped
            )?;
        }
        Ok(())
    }
}

/// Memory a running group holds beside its writer's buffers: the small files it reads
/// ahead and their decoded batches, its encoders' state, and its commit (a checkpoint
/// holds one chunk of the index at a time in Arrow form).
const GROUP_OVERHEAD: usize = 48 << 20;

/// The least memory a group's writer is given: a few row groups of wide rows.
const MIN_WRITER_MEMORY: usize = 32 << 20;

/// Fails with [`Error::MemoryBudget`] when `budget` cannot hold `dataset`'s file index
/// and one group at its writer's minimum.
fn check_budget(budget: usize, dataset: &Dataset) -> Result<()> {
    let index = dataset.snapshot().index_memory();
    let needed = index + GROUP_OVERHEAD + MIN_WRITER_MEMORY;
    if budget < needed {
        return Err(Error::MemoryBudget {
            budget,
            needed,
            index,
            files: dataset.snapshot().files().len(),
        });
    }
    Ok(())
}

/// How many groups run at once (at most `wanted`) and how much each one's writer may
/// buffer. The file index, which every group shares, comes off the budget first; the
/// rest is divided among the groups, each charged [`GROUP_OVERHEAD`] too. Fewer groups
/// run at once rather than any writer getting less than [`MIN_WRITER_MEMORY`] (a budget
/// that cannot hold one such group was refused when the plan was made).
fn share_budget(budget: usize, index: usize, wanted: usize) -> (usize, usize) {
    let left = budget.saturating_sub(index);
    let mut running = wanted.max(1);
    while running > 1 && left / running < GROUP_OVERHEAD + MIN_WRITER_MEMORY {
        running -= 1;
    }
    let writer = (left / running)
        .saturating_sub(GROUP_OVERHEAD)
        .max(MIN_WRITER_MEMORY);
    (running, writer)
}

/// A task that stops when its handle is dropped (when the compaction is).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `plan` on `dataset` (opened at the plan's version): each group's files are
/// rewritten and swapped in its own commit, `concurrency` groups at a time, each with its
/// share of the memory budget. `on_group` is called as each group ends. A group whose
/// files a concurrent writer removed meanwhile is skipped and reported; any other error
/// stops the job, and the groups committed before it stay committed.
pub async fn execute_compaction(
    dataset: &Dataset,
    plan: &CompactionPlan,
    on_group: &(dyn Fn(&GroupOutcome) + Sync),
) -> Result<CompactionReport> {
    let started = Instant::now();
    check_plan_version(dataset, plan.version)?;
    let options = &plan.options;
    let (running, writer_memory) = share_budget(
        options.memory_budget,
        dataset.snapshot().index_memory(),
        options.concurrency.min(plan.groups.len()),
    );
    let rewrite = RewriteOptions {
        write: WriteOptions {
            target_file_size: options.target_file_size,
            max_rows_per_file: options.max_rows_per_file,
            sort_by: Vec::new(),
            unique: options.unique.clone(),
            max_buffered_bytes: writer_memory,
            ..options.write.clone()
        },
        cluster: options.clustering(),
        ..RewriteOptions::default()
    };
    // Each group runs on a task of its own, so that groups encode and compress on as
    // many threads as run at once.
    let rewrite = Arc::new(rewrite);
    // Each group starts from the newest version the job has committed, so that its commit
    // walks past the groups still running, not past every group before it.
    let newest = Arc::new(Mutex::new(dataset.clone()));
    let planned = plan.version;
    let mut outcomes = stream::iter(&plan.groups)
        .map(|group| {
            let base = newest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let (newest, rewrite, files) = (newest.clone(), rewrite.clone(), group.files.clone());
            let mut task = AbortOnDrop(tokio::spawn(async move {
                if base.version() > planned
                    && let Err(e) = base.snapshot().entries(&files)
                {
                    // Another writer removed one of the files since the plan.
                    return Err(DatasetError::CommitConflict {
                        version: base.version(),
                        reason: e.to_string(),
                    });
                }
                let (committed, result) = base.rewrite_files(&files, &rewrite).await?;
                let mut newest = newest.lock().unwrap_or_else(PoisonError::into_inner);
                if committed.version() > newest.version() {
                    *newest = committed;
                }
                Ok(result)
            }));
            async move {
                let done = match (&mut task.0).await {
                    Ok(done) => done,
                    Err(e) => Err(DatasetError::InvalidArgument(format!(
                        "a compaction task failed: {e}"
                    ))),
                };
                (group, done)
            }
        })
        .buffer_unordered(running);
    let mut report = CompactionReport::default();
    while let Some((group, done)) = outcomes.next().await {
        let outcome = match done {
            Ok(result) => GroupOutcome {
                partitions: group.partitions.clone(),
                version: result.version,
                files_removed: result.files_removed,
                files_added: result.files_added,
                bytes_before: group.bytes,
                bytes_after: result.bytes_written,
                rows_dropped: result.rows_deleted,
                skipped: None,
            },
            Err(DatasetError::CommitConflict { reason, .. }) => GroupOutcome {
                partitions: group.partitions.clone(),
                skipped: Some(reason),
                ..GroupOutcome::default()
            },
            Err(e) => return Err(e.into()),
        };
        on_group(&outcome);
        report.files_removed += outcome.files_removed;
        report.files_added += outcome.files_added;
        report.bytes_before += outcome.bytes_before;
        report.bytes_after += outcome.bytes_after;
        report.rows_dropped += outcome.rows_dropped;
        report.skipped += usize::from(outcome.skipped.is_some());
        report.version = report.version.max(outcome.version);
        report.groups.push(outcome);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_index_comes_off_the_budget_before_the_groups_share_it() {
        // 1 GiB, a 224 MiB index, two groups: 400 MiB each, 352 of it for the writer.
        assert_eq!(share_budget(1024 * MIB, 224 * MIB, 2), (2, 352 * MIB));
        // Room for one group at the writer's minimum.
        assert_eq!(
            share_budget(304 * MIB, 224 * MIB, 2),
            (1, MIN_WRITER_MEMORY)
        );
        // Room for two groups of 80 MiB but not three.
        assert_eq!(share_budget(400 * MIB, 224 * MIB, 4), (2, 40 * MIB));
        assert_eq!(share_budget(1024 * MIB, 0, 0), (1, 976 * MIB));
    }
}
