//! The state of a dataset at one version: schema, partitioning, properties and the
//! file index with per-file statistics. Built from a checkpoint plus the commits after it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use serde_json::{Map, Value};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::layout::{PartitionField, full_schema, partition_dir};
use crate::log::{AddFile, AddView, Commit, CommitView, Operation, RemoveFile};
use crate::scalar::Scalar;
use crate::stats::{ColumnStats, FileStats, StatsView};

/// Property: commits between checkpoints.
pub const PROP_CHECKPOINT_INTERVAL: &str = "checkpoint.interval";
/// Property: seconds to keep files that a commit removed before deleting them
/// (unset: delete as soon as the commit lands).
pub const PROP_RETENTION_SECONDS: &str = "retention.seconds";

/// Property: the engine scans and queries of this dataset use unless told otherwise
/// (`arrow`, `duckdb` or `polars`; see [`crate::Engine::choose`]).
pub const PROP_DEFAULT_ENGINE: &str = "engine.default";

/// Checks a property's value where dala reads it: numbers for the checkpoint interval and
/// the retention, an engine name for the default engine. Other keys are free-form.
pub fn check_property(key: &str, value: &str) -> Result<()> {
    let valid = match key {
        PROP_CHECKPOINT_INTERVAL => value.parse::<u64>().is_ok_and(|v| v > 0),
        PROP_RETENTION_SECONDS => value.parse::<u64>().is_ok(),
        PROP_DEFAULT_ENGINE => value.is_empty() || value.parse::<Engine>().is_ok(),
        crate::options::PROP_WRITE_DEFAULTS => {
            value.is_empty() || crate::options::WriteDefaults::parse(value).is_ok()
        }
        _ => !key.is_empty(),
    };
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "property {key:?} cannot be {value:?}"
        )))
    }
}

/// Default commits between checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 100;

/// One data file in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    /// Path relative to the dataset root.
    pub path: String,
    /// Partition values, aligned with the dataset's partitioning.
    pub partition_values: Vec<Scalar>,
    /// Rows in the file.
    pub rows: u64,
    /// Bytes on storage.
    pub size: u64,
    /// Statistics of the data columns, aligned with the data schema.
    pub stats: FileStats,
    /// The version that added the file.
    pub added_version: u64,
}

impl FileEntry {
    /// The partition directory of this file (`k=v/...`, empty when unpartitioned).
    pub fn partition_dir(&self) -> &str {
        self.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }

    /// About how many bytes of memory this entry takes (itself, its path, partition
    /// values and statistics, with an allocator's overhead per allocation).
    pub fn memory_size(&self) -> usize {
        use std::mem::size_of;
        const PER_ALLOCATION: usize = 16;
        let scalars: usize = self
            .partition_values
            .iter()
            .chain(
                self.stats
                    .iter()
                    .flatten()
                    .flat_map(|s| s.min.iter().chain(s.max.iter())),
            )
            .map(|v| match v.heap_size() {
                0 => 0,
                n => n + PER_ALLOCATION,
            })
            .sum();
        // The entry, its `Arc` counts and the three vectors.
        size_of::<FileEntry>()
            + 2 * size_of::<usize>()
            + 3 * PER_ALLOCATION
            + self.path.capacity()
            + self.partition_values.capacity() * size_of::<Scalar>()
            + self.stats.capacity() * size_of::<Option<ColumnStats>>()
            + scalars
    }
}

/// Sets and maps of paths, hashed fast: a commit looks up every file of the version.
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A dataset at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    version: u64,
    timestamp: i64,
    schema: SchemaRef,
    partitioning: Vec<PartitionField>,
    properties: BTreeMap<String, String>,
    /// The files in the order their commits added them; shared, so that a commit's copy of
    /// the snapshot does not copy every file's statistics.
    files: Vec<Arc<FileEntry>>,
    columns: HashMap<String, usize>,
    /// Files added or removed by the log entries applied since the checkpoint this
    /// snapshot was read from (or since version 0).
    log_actions: usize,
    /// The version from which every added file holds exactly the data schema (dala
    /// wrote it under this schema); `None` when unknown.
    schema_since: Option<u64>,
    /// Built in memory from a folder without a log, not read from one (see
    /// [`DatasetBuilder::adopt_in_memory`](crate::DatasetBuilder::adopt_in_memory)).
    in_memory: bool,
}

impl Snapshot {
    /// An empty snapshot with a schema and partitioning, before any commit is applied.
    pub fn empty(schema: SchemaRef, partitioning: Vec<PartitionField>) -> Self {
        let columns = column_positions(&schema);
        Snapshot {
            version: 0,
            timestamp: 0,
            schema,
            partitioning,
            properties: BTreeMap::new(),
            files: Vec::new(),
            columns,
            log_actions: 0,
            schema_since: Some(0),
            in_memory: false,
        }
    }

    /// This snapshot with another data schema: the same columns in the same positions,
    /// possibly widened, then new ones (what a schema-merging write commits).
    pub(crate) fn with_data_schema(&self, schema: SchemaRef) -> Snapshot {
        let columns = column_positions(&schema);
        // Its files were written under the old schema: which hold the new one is unknown.
        let schema_since = if schema == self.schema {
            self.schema_since
        } else {
            None
        };
        Snapshot {
            schema,
            columns,
            schema_since,
            ..self.clone()
        }
    }

    /// Builds version 0 from its commit.
    pub fn from_first_commit(commit: &Commit, path: &str) -> Result<Self> {
        Self::from_first_entry(commit, path)
    }

    /// Builds version 0 from its commit, in either form the log is read in.
    pub(crate) fn from_first_entry<C: LogEntry>(commit: &C, path: &str) -> Result<Self> {
        let header = commit.header();
        let schema = header.schema.cloned().ok_or_else(|| Error::CorruptLog {
            path: path.to_string(),
            message: "the first commit has no schema".into(),
        })?;
        let mut snapshot = Snapshot::empty(
            Arc::new(schema),
            header.partitioning.map(<[_]>::to_vec).unwrap_or_default(),
        );
        snapshot.apply_entry(commit, path)?;
        Ok(snapshot)
    }

    /// Restores a snapshot from checkpointed parts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        version: u64,
        timestamp: i64,
        schema: SchemaRef,
        partitioning: Vec<PartitionField>,
        properties: BTreeMap<String, String>,
        files: Vec<FileEntry>,
        schema_since: Option<u64>,
    ) -> Self {
        let columns = column_positions(&schema);
        Snapshot {
            version,
            timestamp,
            schema,
            partitioning,
            properties,
            files: files.into_iter().map(Arc::new).collect(),
            columns,
            log_actions: 0,
            schema_since,
            in_memory: false,
        }
    }

    /// Whether this version is in the dataset's log; false for a folder indexed in memory
    /// (see [`DatasetBuilder::adopt_in_memory`](crate::DatasetBuilder::adopt_in_memory)),
    /// which nothing can be committed on.
    pub fn is_committed(&self) -> bool {
        !self.in_memory
    }

    /// Marks this snapshot as built in memory, not read from a log.
    pub(crate) fn mark_in_memory(&mut self) {
        self.in_memory = true;
    }

    /// The version from which every file added holds exactly [`Snapshot::data_schema`]
    /// (its columns, in order, with their types), because dala wrote it under this schema;
    /// `None` when unknown (a checkpoint written before dala recorded it).
    pub fn schema_since(&self) -> Option<u64> {
        self.schema_since
    }

    /// Files added or removed by the log entries since this snapshot's last checkpoint.
    pub(crate) fn log_actions(&self) -> usize {
        self.log_actions
    }

    /// Sets the file actions counted since the last checkpoint (0 once one is written).
    pub(crate) fn restart_log_actions(&mut self, actions: usize) {
        self.log_actions = actions;
    }

    /// Applies the next commit. `path` names the log file in errors.
    pub fn apply(&mut self, commit: &Commit, path: &str) -> Result<()> {
        self.apply_entry(commit, path)
    }

    /// Applies the next commit, in either form the log is read in.
    pub(crate) fn apply_entry<C: LogEntry>(&mut self, commit: &C, path: &str) -> Result<()> {
        self.apply_metadata(commit, path)?;
        self.apply_files(std::slice::from_ref(commit), path)
    }

    /// Applies the version, schema, partitioning and properties of the next commit, but
    /// not its files: [`Snapshot::apply_files`] adds those later, for several commits in
    /// one pass over the index.
    pub(crate) fn apply_metadata<C: LogEntry>(&mut self, commit: &C, path: &str) -> Result<()> {
        let corrupt = |message: String| Error::CorruptLog {
            path: path.to_string(),
            message,
        };
        let commit = commit.header();
        if commit.version != 0 && commit.version != self.version + 1 {
            return Err(corrupt(format!(
                "version {} follows version {}: the log has a gap",
                commit.version, self.version
            )));
        }
        if let Some(schema) = commit.schema
            && schema != self.schema.as_ref()
        {
            self.schema = Arc::new(schema.clone());
            self.columns = column_positions(&self.schema);
            // The commit's own files were written under its new schema.
            self.schema_since = Some(commit.version);
        }
        if matches!(commit.operation, Operation::Adopt | Operation::Sync) {
            // Files dala did not write may lack columns or have other types.
            self.schema_since = self.schema_since.map(|v| v.max(commit.version + 1));
        }
        if let Some(partitioning) = commit.partitioning {
            self.partitioning = partitioning.to_vec();
        }
        if let Some(properties) = commit.properties {
            self.properties.extend(properties.clone());
        }
        self.version = commit.version;
        self.timestamp = commit.timestamp;
        Ok(())
    }

    /// Applies the files added and removed by `commits` (consecutive, oldest first, whose
    /// metadata is applied): one pass over the index for all their removals, then their
    /// additions in order, less those a later one of them removed.
    pub(crate) fn apply_files<C: LogEntry>(&mut self, commits: &[C], path: &str) -> Result<()> {
        let corrupt = |message: String| Error::CorruptLog {
            path: path.to_string(),
            message,
        };
        self.log_actions += commits
            .iter()
            .map(|c| c.added().len() + c.removed().count())
            .sum::<usize>();
        let mut removed: FastSet<&str> = commits.iter().flat_map(|c| c.removed()).collect();
        if !removed.is_empty() {
            let mut left = removed.clone();
            self.files
                .retain(|f| left.is_empty() || !left.remove(f.path.as_str()));
            let added: FastSet<&str> = commits
                .iter()
                .flat_map(|c| c.added().iter().map(AddedFile::path))
                .collect();
            if let Some(missing) = left.into_iter().find(|p| !added.contains(p)) {
                return Err(corrupt(format!(
                    "removes {missing} which is not in the dataset"
                )));
            }
        }
        for commit in commits {
            let version = commit.header().version;
            for add in commit.added() {
                if removed.remove(add.path()) {
                    continue;
                }
                let entry = self
                    .entry_from_add(add, version)
                    .map_err(|e| corrupt(format!("file {}: {e}", add.path())))?;
                self.files.push(Arc::new(entry));
            }
        }
        Ok(())
    }

    fn entry_from_add<A: AddedFile>(&self, add: &A, version: u64) -> Result<FileEntry> {
        let partition = add.partition();
        let partition_values = self
            .partitioning
            .iter()
            .map(|field| match partition.get(&field.name) {
                Some(v) => Scalar::from_json(v, &field.data_type),
                None => Err(Error::InvalidArgument(format!(
                    "no value for partition column `{}`",
                    field.name
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let stats = add.read_stats(self)?;
        Ok(FileEntry {
            path: add.path().to_string(),
            partition_values,
            rows: add.rows(),
            size: add.size(),
            stats,
            added_version: version,
        })
    }

    /// The log form of an index entry.
    pub fn add_file(&self, entry: &FileEntry) -> AddFile {
        add_file_as(&self.schema, &self.partitioning, entry)
    }

    /// The log form of removing an index entry.
    pub fn remove_file(entry: &FileEntry) -> RemoveFile {
        RemoveFile {
            path: entry.path.clone(),
            rows: entry.rows,
            size: entry.size,
        }
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the version was committed, in milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The schema of the data files (without partition columns).
    pub fn data_schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The schema a scan returns: data columns, then partition columns.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(full_schema(&self.schema, &self.partitioning))
    }

    /// The partition columns.
    pub fn partitioning(&self) -> &[PartitionField] {
        &self.partitioning
    }

    /// The dataset properties.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// About how many bytes of memory the file index of this version takes: the sum of
    /// [`FileEntry::memory_size`], shared with the snapshots of the versions around it.
    pub fn index_memory(&self) -> usize {
        self.files.capacity() * std::mem::size_of::<Arc<FileEntry>>()
            + self.files.iter().map(|f| f.memory_size()).sum::<usize>()
    }

    /// Commits between checkpoints.
    pub fn checkpoint_interval(&self) -> u64 {
        self.properties
            .get(PROP_CHECKPOINT_INTERVAL)
            .and_then(|v| v.parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL)
    }

    /// How long removed files are kept, if a retention is set.
    pub fn retention(&self) -> Option<std::time::Duration> {
        self.properties
            .get(PROP_RETENTION_SECONDS)
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_secs)
    }

    /// The dataset's default engine (property `engine.default`), if it has one.
    pub fn default_engine(&self) -> Result<Option<Engine>> {
        match self.properties.get(PROP_DEFAULT_ENGINE) {
            Some(name) if !name.is_empty() => name.parse().map(Some),
            _ => Ok(None),
        }
    }

    /// The files of this version, in the order their commits added them.
    pub fn files(&self) -> impl ExactSizeIterator<Item = &FileEntry> {
        self.files.iter().map(Arc::as_ref)
    }

    /// The entries of `paths`, in their order; an error names the first path this version
    /// does not hold.
    pub fn entries(&self, paths: &[String]) -> Result<Vec<FileEntry>> {
        let mut wanted: FastMap<&str, Option<&FileEntry>> = FastMap::default();
        wanted.extend(paths.iter().map(|p| (p.as_str(), None)));
        let mut left = wanted.len();
        for file in self.files() {
            if left == 0 {
                break;
            }
            if let Some(slot) = wanted.get_mut(file.path.as_str())
                && slot.is_none()
            {
                *slot = Some(file);
                left -= 1;
            }
        }
        paths
            .iter()
            .map(|path| match wanted.get(path.as_str()) {
                Some(Some(entry)) => Ok((*entry).clone()),
                _ => Err(Error::NotFound {
                    what: format!("{path} in version {}", self.version),
                }),
            })
            .collect()
    }

    /// One file by its relative path (a linear search).
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path).map(Arc::as_ref)
    }

    /// About how many bytes of memory the snapshot holds (its file entries dominate):
    /// what a cache of snapshots weighs it by.
    pub fn memory_size(&self) -> usize {
        let scalar = std::mem::size_of::<Scalar>();
        let column = std::mem::size_of::<Option<ColumnStats>>() + 2 * scalar;
        let files: usize = self
            .files
            .iter()
            .map(|f| {
                std::mem::size_of::<FileEntry>()
                    + f.path.len()
                    + f.partition_values.len() * scalar
                    + f.stats.len() * column
            })
            .sum();
        files + self.columns.len() * 64 + 1024
    }

    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Total bytes of data files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The distinct partition directories, with their file count, rows and bytes.
    pub fn partitions(&self) -> BTreeMap<String, (usize, u64, u64)> {
        let mut out: BTreeMap<String, (usize, u64, u64)> = BTreeMap::new();
        for f in self.files.iter() {
            let e = out.entry(f.partition_dir().to_string()).or_default();
            e.0 += 1;
            e.1 += f.rows;
            e.2 += f.size;
        }
        out
    }

    /// The directory of a combination of partition values.
    pub fn partition_dir(&self, values: &[Scalar]) -> Result<String> {
        partition_dir(&self.partitioning, values)
    }

    /// A statistics view of one file, for pruning.
    pub fn stats_view<'a>(&'a self, entry: &'a FileEntry, partitions_only: bool) -> StatsView<'a> {
        StatsView {
            data_columns: &self.columns,
            partitioning: &self.partitioning,
            stats: &entry.stats,
            partition_values: &entry.partition_values,
            rows: entry.rows,
            partitions_only,
        }
    }
}

fn column_positions(schema: &Schema) -> HashMap<String, usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().clone(), i))
        .collect()
}

/// The log form of an index entry of a dataset with data schema `schema` and
/// `partitioning` (those of the commit that adds it).
pub(crate) fn add_file_as(
    schema: &Schema,
    partitioning: &[PartitionField],
    entry: &FileEntry,
) -> AddFile {
    let partition: Map<String, Value> = partitioning
        .iter()
        .zip(&entry.partition_values)
        .map(|(f, v)| (f.name.clone(), v.to_json()))
        .collect();
    let stats = schema
        .fields()
        .iter()
        .zip(&entry.stats)
        .filter_map(|(f, s)| Some((f.name().clone(), s.as_ref()?.to_log())))
        .collect();
    AddFile {
        path: entry.path.clone(),
        partition,
        rows: entry.rows,
        size: entry.size,
        stats,
    }
}

/// What [`Snapshot::apply_metadata`] reads of a commit.
pub(crate) struct CommitHeader<'c> {
    version: u64,
    timestamp: i64,
    operation: Operation,
    schema: Option<&'c Schema>,
    partitioning: Option<&'c [PartitionField]>,
    properties: Option<&'c BTreeMap<String, String>>,
}

/// A commit in either form the log is read in: [`Commit`] (in full), or [`CommitView`]
/// (to load a snapshot, its statistics read straight into typed values).
pub(crate) trait LogEntry {
    /// A file the commit adds.
    type Added: AddedFile;
    /// Its version, schema, partitioning and properties.
    fn header(&self) -> CommitHeader<'_>;
    /// The files it adds.
    fn added(&self) -> &[Self::Added];
    /// The paths of the files it removes.
    fn removed(&self) -> impl Iterator<Item = &str>;
}

/// A file a commit adds, in either form the log is read in.
pub(crate) trait AddedFile {
    /// Its path relative to the dataset root.
    fn path(&self) -> &str;
    /// Its partition values by column.
    fn partition(&self) -> &Map<String, Value>;
    /// Its rows.
    fn rows(&self) -> u64;
    /// Its bytes.
    fn size(&self) -> u64;
    /// Its statistics, aligned with the data schema of `snapshot`.
    fn read_stats(&self, snapshot: &Snapshot) -> Result<FileStats>;
}

impl Snapshot {
    /// The position and type of the data column a file's statistics name, or an error
    /// naming it.
    fn stats_column(&self, name: &str) -> Result<(usize, &DataType)> {
        let i = *self.columns.get(name).ok_or_else(|| Error::UnknownColumn {
            column: name.to_string(),
            context: Some("in file statistics".into()),
        })?;
        Ok((i, self.schema.field(i).data_type()))
    }
}

impl LogEntry for Commit {
    type Added = AddFile;

    fn header(&self) -> CommitHeader<'_> {
        CommitHeader {
            version: self.version,
            timestamp: self.timestamp,
            operation: self.operation,
            schema: self.schema.as_ref(),
            partitioning: self.partitioning.as_deref(),
            properties: self.properties.as_ref(),
        }
    }

    fn added(&self) -> &[AddFile] {
        &self.add
    }

    fn removed(&self) -> impl Iterator<Item = &str> {
        self.remove.iter().map(|r| r.path.as_str())
    }
}

impl AddedFile for AddFile {
    fn path(&self) -> &str {
        &self.path
    }

    fn partition(&self) -> &Map<String, Value> {
        &self.partition
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_stats(&self, snapshot: &Snapshot) -> Result<FileStats> {
        let mut stats = vec![None; snapshot.schema.fields().len()];
        for (name, value) in &self.stats {
            let (i, data_type) = snapshot.stats_column(name)?;
            stats[i] = Some(ColumnStats::from_log(value, data_type)?);
        }
        Ok(stats)
    }
}

impl<'a> LogEntry for CommitView<'a> {
    type Added = AddView<'a>;

    fn header(&self) -> CommitHeader<'_> {
        CommitHeader {
            version: self.version,
            timestamp: self.timestamp,
            operation: self.operation,
            schema: self.schema.as_ref(),
            partitioning: self.partitioning.as_deref(),
            properties: self.properties.as_ref(),
        }
    }

    fn added(&self) -> &[AddView<'a>] {
        &self.add
    }

    fn removed(&self) -> impl Iterator<Item = &str> {
        self.remove.iter().map(|r| r.path.as_ref())
    }
}

impl AddedFile for AddView<'_> {
    fn path(&self) -> &str {
        &self.path
    }

    fn partition(&self) -> &Map<String, Value> {
        &self.partition
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_stats(&self, snapshot: &Snapshot) -> Result<FileStats> {
        let mut stats = vec![None; snapshot.schema.fields().len()];
        for (name, value) in &self.stats {
            let (i, data_type) = snapshot.stats_column(&name.0)?;
            stats[i] = Some(ColumnStats::from_log_text(value, data_type)?);
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, TimeUnit};
    use serde_json::json;

    /// Version 0 of a dataset partitioned by `year`, with columns of several kinds (one
    /// named with a quote, which the log writes escaped) and two files.
    fn first_commit() -> Value {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("ratio", DataType::Float64, true),
            Field::new("say \"hi\"", DataType::Utf8, true),
        ]);
        let stats = json!({
            "id": {"min": -3, "max": 9, "nulls": 0},
            "price": {"min": "-125", "max": "99999", "nulls": 2},
            "day": {"min": "1992-01-02", "max": "1998-12-01"},
            "at": {"min": 1_700_000_000_000_000_i64, "max": null},
            "ratio": {"min": "-inf", "max": 2.5},
            "say \"hi\"": {"min": "caf\u{e9} \"x\"", "max": "zz\\top", "nulls": 1}
        });
        json!({
            "version": 0,
            "timestamp": 1_700_000_000_000_i64,
            "operation": "create",
            "options": {"mode": "append"},
            "schema": serde_json::to_value(&schema).unwrap(),
            "partitioning": [{"name": "year", "data_type": "Int32"}],
            "properties": {"owner": "tests"},
            "add": [
                {"path": "year=1995/a.parquet", "partition": {"year": 1995}, "rows": 10,
                 "size": 100, "stats": stats},
                {"path": "year=1996/b.parquet", "partition": {"year": 1996}, "rows": 5,
                 "size": 50}
            ],
            "partitions": ["year=1995", "year=1996"],
            "metadata": {"job": 7}
        })
    }

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    #[test]
    fn a_commit_read_to_load_a_snapshot_gives_what_the_full_parse_gives() {
        let first = bytes(&first_commit());
        let full = Snapshot::from_first_commit(&Commit::parse(&first, 0, "c0").unwrap(), "c0");
        let view = CommitView::parse(&first, 0, "c0").unwrap();
        let read = Snapshot::from_first_entry(&view, "c0");
        let (mut full, mut read) = (full.unwrap(), read.unwrap());
        assert_eq!(read.files().count(), 2);
        let stats = &read.files().next().unwrap().stats;
        assert_eq!(
            stats[5].as_ref().unwrap().min,
            Some(Scalar::Utf8("caf\u{e9} \"x\"".into()))
        );
        assert_eq!(stats[3].as_ref().unwrap().max, None);

        let second = bytes(&json!({
            "version": 1,
            "timestamp": 1_700_000_000_001_i64,
            "operation": "upsert",
            "read_version": 0,
            "add": [{"path": "year=1995/c.parquet", "partition": {"year": 1995}, "rows": 3,
                     "size": 30, "stats": {"id": {"min": 1, "max": 2}}}],
            "remove": [{"path": "year=1995/a.parquet", "rows": 10, "size": 100}]
        }));
        full.apply(&Commit::parse(&second, 1, "c1").unwrap(), "c1")
            .unwrap();
        read.apply_entry(&CommitView::parse(&second, 1, "c1").unwrap(), "c1")
            .unwrap();
        for snapshot in [&full, &read] {
            let paths: Vec<&str> = snapshot.files().map(|f| f.path.as_str()).collect();
            assert_eq!(paths, ["year=1996/b.parquet", "year=1995/c.parquet"]);
        }
        assert_eq!(
            full.files().collect::<Vec<_>>(),
            read.files().collect::<Vec<_>>()
        );
        assert_eq!(full.data_schema(), read.data_schema());
        assert_eq!(full.partitioning(), read.partitioning());
        assert_eq!(full.properties(), read.properties());
        assert_eq!(
            (full.version(), full.timestamp(), full.schema_since()),
            (read.version(), read.timestamp(), read.schema_since())
        );
        assert_eq!(full.log_actions(), read.log_actions());
    }

    #[test]
    fn a_commit_read_to_load_a_snapshot_refuses_what_the_full_parse_refuses() {
        /// What breaks a commit, and how.
        type Breakage = (&'static str, fn(&mut Value));
        let broken: [Breakage; 10] = [
            ("an unknown field", |c| c["extra"] = json!(1)),
            ("an unknown field of a file", |c| {
                c["add"][0]["extra"] = json!(1)
            }),
            ("an unknown field of statistics", |c| {
                c["add"][0]["stats"]["id"]["extra"] = json!(1)
            }),
            ("a negative null count", |c| {
                c["add"][0]["stats"]["id"]["nulls"] = json!(-1)
            }),
            ("another version", |c| c["version"] = json!(3)),
            ("a path outside the dataset", |c| {
                c["add"][1]["path"] = json!("../b.parquet")
            }),
            ("partitions that are not names", |c| {
                c["partitions"] = json!([1])
            }),
            ("metadata that is not an object", |c| {
                c["metadata"] = json!([])
            }),
            ("a file without rows", |c| {
                c["add"][1].as_object_mut().unwrap().remove("rows");
            }),
            ("a removal without size", |c| {
                c["remove"] = json!([{"path": "year=1995/a.parquet", "rows": 10}])
            }),
        ];
        for (what, breaks) in broken {
            let mut commit = first_commit();
            breaks(&mut commit);
            let text = bytes(&commit);
            let full = Commit::parse(&text, 0, "c0");
            let view = CommitView::parse(&text, 0, "c0");
            assert!(
                matches!(full, Err(Error::CorruptLog { .. })),
                "{what}: {full:?}"
            );
            assert!(
                matches!(view, Err(Error::CorruptLog { .. })),
                "{what}: {view:?}"
            );
        }
        // Statistics that name no column, or hold a value of the wrong type.
        let broken: [fn(&mut Value); 2] = [
            |c| c["add"][0]["stats"]["nope"] = json!({"min": 1}),
            |c| c["add"][0]["stats"]["id"]["min"] = json!("one"),
        ];
        for breaks in broken {
            let mut commit = first_commit();
            breaks(&mut commit);
            let text = bytes(&commit);
            let full = Snapshot::from_first_commit(&Commit::parse(&text, 0, "c0").unwrap(), "c0");
            let view = CommitView::parse(&text, 0, "c0").unwrap();
            let read = Snapshot::from_first_entry(&view, "c0");
            assert_eq!(full.unwrap_err().to_string(), read.unwrap_err().to_string());
        }
        // Text that no JSON value prints: bytes that are not UTF-8 and lone surrogates, in
        // the parts a snapshot does not keep, and `-0` as an integer statistic, which
        // serde_json parses as the float -0.0 (found by the fuzz target `snapshot_loader`).
        let text = bytes(&first_commit());
        let replaced = |from: &str, to: &[u8]| {
            let at = text
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .unwrap();
            [&text[..at], to, &text[at + from.len()..]].concat()
        };
        let negative_zero = replaced("\"min\":-3", b"\"min\":-0");
        let full =
            Snapshot::from_first_commit(&Commit::parse(&negative_zero, 0, "c0").unwrap(), "c0");
        let view = CommitView::parse(&negative_zero, 0, "c0").unwrap();
        let read = Snapshot::from_first_entry(&view, "c0");
        for refused in [full.unwrap_err(), read.unwrap_err()] {
            assert!(
                matches!(&refused, Error::CorruptLog { message, .. } if message.contains("as Int64")),
                "{refused}"
            );
        }
        let broken = [
            (
                "a key of the options not UTF-8",
                replaced("\"mode\"", b"\"mo\xff\""),
            ),
            (
                "a lone surrogate in the options",
                replaced("\"append\"", b"\"\\ud800\""),
            ),
            (
                "a lone surrogate in the metadata",
                replaced("\"job\":7", b"\"job\":\"\\udc00\""),
            ),
        ];
        for (what, text) in broken {
            let full = Commit::parse(&text, 0, "c0");
            let view = CommitView::parse(&text, 0, "c0");
            assert!(
                matches!(full, Err(Error::CorruptLog { .. })),
                "{what}: {full:?}"
            );
            assert_eq!(
                full.unwrap_err().to_string(),
                view.unwrap_err().to_string(),
                "{what}"
            );
        }
    }
}
