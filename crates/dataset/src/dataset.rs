//! [`Dataset`]: open a dataset at a version, write to it, scan it, read its history.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::error::ArrowError;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectStore;
use object_store::path::Path;
use serde::Serialize;

use crate::adopt::{adoptable_files, index_files, infer_partitioning, list_data_files};
use crate::checkpoint::{read_checkpoint, write_checkpoint};
use crate::commit::{ConflictScope, PendingCommit, commit, in_memory_first};
use crate::conform::{conform, evolve};
use crate::derive::{TIMESTAMP_COLUMN_PROPERTY, derive_partitions};
use crate::error::{Error, Result};
use crate::filter::Expr;
use crate::layout::PartitionField;
use crate::log::{Commit, CommitView, Latest, LogStore, Operation};
use crate::merge::Unique;
use crate::options::{SchemaMode, WriteMode, WriteOptions};
use crate::scan::ScanBuilder;
use crate::snapshot::{FileEntry, Snapshot, check_property};
use crate::store::{CacheChoice, resolve_with};
use crate::write::{FileWriter, data_schema, delete_files, resolve_partitioning};

/// Commits read at once while replaying the log.
const LOG_READ_CONCURRENCY: usize = 16;

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteResult {
    /// The version committed, or None when there was nothing to commit.
    pub version: Option<u64>,
    /// Rows added (by a merge: input rows with a key the dataset did not have).
    pub rows_inserted: u64,
    /// Dataset rows replaced by a different input row with the same key.
    pub rows_updated: u64,
    /// Rows removed (by `delete`, `overwrite` or `overwrite-partitions`).
    pub rows_deleted: u64,
    /// Input rows that changed nothing: with `insert`, rows whose key was present; with
    /// `update` and `upsert`, rows equal to the dataset's row with their key.
    pub rows_unchanged: u64,
    /// Data files added.
    pub files_added: u64,
    /// Data files removed.
    pub files_removed: u64,
    /// Bytes of data files written.
    pub bytes_written: u64,
}

impl fmt::Display for WriteResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "version {v}: ")?,
            None => write!(f, "nothing to commit: ")?,
        }
        write!(
            f,
            "{} rows inserted, {} updated, {} deleted, {} unchanged; {} files added, {} removed; {} bytes written",
            self.rows_inserted,
            self.rows_updated,
            self.rows_deleted,
            self.rows_unchanged,
            self.files_added,
            self.files_removed,
            self.bytes_written
        )
    }
}

/// Configures how a dataset is found and opened. Made by [`Dataset::builder`].
#[derive(Debug, Clone)]
pub struct DatasetBuilder {
    location: String,
    store: Option<(Arc<dyn ObjectStore>, Path)>,
    storage_options: HashMap<String, String>,
    version: Option<u64>,
    timestamp: Option<DateTime<Utc>>,
    cache: CacheChoice,
    adopt_in_memory: bool,
}

impl DatasetBuilder {
    /// Indexes a folder without a dala log in memory instead of adopting it: nothing is
    /// written, so a dry run or a look leaves the folder as it was. The dataset opened is
    /// the version 0 that adoption would commit, and nothing can be committed on it (see
    /// [`Snapshot::is_committed`]); open it without this to adopt it first. No effect on a
    /// dataset that has a log.
    pub fn adopt_in_memory(mut self) -> Self {
        self.adopt_in_memory = true;
        self
    }

    /// Reads through `cache` (memory and SSD tiers, decoded footers) instead of the
    /// process-wide cache that the environment configures.
    pub fn with_cache(mut self, cache: Arc<dala_cache::Cache>) -> Self {
        self.cache = CacheChoice::Use(cache);
        self
    }

    /// Reads straight from the store, without any cache.
    pub fn without_cache(mut self) -> Self {
        self.cache = CacheChoice::Off;
        self
    }

    /// Uses this store and root instead of resolving the location.
    pub fn with_store(mut self, store: Arc<dyn ObjectStore>, root: Path) -> Self {
        self.store = Some((store, root));
        self
    }

    /// Sets a store option (for S3: `aws_endpoint`, `aws_region`, `aws_allow_http`, …).
    pub fn with_storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Opens this version instead of the latest.
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Opens the last version committed at or before `timestamp`.
    pub fn with_timestamp(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    fn log_store(&self) -> Result<(LogStore, String)> {
        match &self.store {
            Some((store, root)) => {
                let cache = match &self.cache {
                    CacheChoice::Use(cache) => Some(cache.clone()),
                    CacheChoice::Process | CacheChoice::Off => None,
                };
                let store = match &cache {
                    Some(cache) => cache.wrap(store.clone()),
                    None => store.clone(),
                };
                let log = LogStore::new(store, root.clone()).with_cache(cache);
                Ok((log, self.location.clone()))
            }
            None => {
                let location = resolve_with(&self.location, &self.storage_options, &self.cache)?;
                let log = LogStore::new(location.store, location.root)
                    .with_cache(location.cache)
                    .with_local(location.local);
                Ok((log, location.url))
            }
        }
    }

    /// Opens the dataset. A folder of hive Parquet without a dala log is adopted as
    /// version 0 (when opening the latest version).
    pub async fn open(self) -> Result<Dataset> {
        let (log, url) = self.log_store()?;
        let version = match self.timestamp {
            Some(ts) => Some(version_at_time(&log, ts).await?),
            None => self.version,
        };
        let snapshot = match load_snapshot(&log, version, Latest::Recent).await? {
            Some(s) => s,
            None if version.is_none() && self.adopt_in_memory => {
                let pending = adoption(&log, &url).await?;
                in_memory_first(&pending, log.commit_path(0).as_ref())?
            }
            None if version.is_none() => adopt(&log, &url).await?,
            None => {
                return Err(Error::NotFound {
                    what: format!("dataset at {url}"),
                });
            }
        };
        Ok(Dataset {
            log,
            url,
            snapshot: Arc::new(snapshot),
        })
    }

    /// Writes `data` to the dataset, creating it if it does not exist.
    pub async fn write<I>(self, data: I, options: &WriteOptions) -> Result<(Dataset, WriteResult)>
    where
        I: IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    {
        let (log, url) = self.log_store()?;
        let base = match load_snapshot(&log, None, Latest::Now).await? {
            Some(s) => Some(s),
            None if adoptable_files(&log).await?.is_empty() => None,
            None => Some(adopt(&log, &url).await?),
        };
        let (snapshot, result) = write_impl(&log, base.as_ref(), data, options).await?;
        let snapshot = match (snapshot, base) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                let why = match options.mode {
                    WriteMode::Update => "an update only changes rows that exist",
                    _ => "the input had no rows",
                };
                return Err(Error::NotFound {
                    what: format!("dataset at {url} ({why})"),
                });
            }
        };
        Ok((
            Dataset {
                log,
                url,
                snapshot: Arc::new(snapshot),
            },
            result,
        ))
    }
}

/// A hive-partitioned Parquet dataset at one version.
#[derive(Debug, Clone)]
pub struct Dataset {
    log: LogStore,
    url: String,
    snapshot: Arc<Snapshot>,
}

impl Dataset {
    /// A builder for the dataset at `location` (a path, `file://`, `s3://` or `memory://`).
    pub fn builder(location: impl Into<String>) -> DatasetBuilder {
        DatasetBuilder {
            location: location.into(),
            store: None,
            storage_options: HashMap::new(),
            version: None,
            timestamp: None,
            cache: CacheChoice::Process,
            adopt_in_memory: false,
        }
    }

    /// Opens the latest version.
    pub async fn open(location: impl Into<String>) -> Result<Self> {
        Self::builder(location).open().await
    }

    /// Opens `version`.
    pub async fn open_at(location: impl Into<String>, version: u64) -> Result<Self> {
        Self::builder(location).with_version(version).open().await
    }

    /// Opens the last version committed at or before `timestamp`.
    pub async fn open_at_time(
        location: impl Into<String>,
        timestamp: DateTime<Utc>,
    ) -> Result<Self> {
        Self::builder(location)
            .with_timestamp(timestamp)
            .open()
            .await
    }

    /// Writes `data` to the dataset at `location`, creating it if needed.
    pub async fn write_to<I>(
        location: impl Into<String>,
        data: I,
        options: &WriteOptions,
    ) -> Result<WriteResult>
    where
        I: IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    {
        Ok(Self::builder(location).write(data, options).await?.1)
    }

    /// Writes `data` to this dataset and moves it to the new version.
    pub async fn write<I>(&mut self, data: I, options: &WriteOptions) -> Result<WriteResult>
    where
        I: IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    {
        self.require_log()?;
        let (snapshot, result) = write_impl(&self.log, Some(&self.snapshot), data, options).await?;
        if let Some(snapshot) = snapshot {
            self.snapshot = Arc::new(snapshot);
        }
        Ok(result)
    }

    /// Removes the rows `filter` matches, in one commit, and moves to the new version.
    /// Files it matches whole are dropped without being read; files it matches in part are
    /// written again without those rows (with default write options); other files are
    /// left alone. Nothing is committed when no row matches.
    pub async fn delete(&mut self, filter: Expr) -> Result<WriteResult> {
        self.delete_with(filter, &WriteOptions::default()).await
    }

    /// [`Dataset::delete`], writing the rewritten files with `options`.
    pub async fn delete_with(
        &mut self,
        filter: Expr,
        options: &WriteOptions,
    ) -> Result<WriteResult> {
        self.require_log()?;
        let options = &options.with_dataset_defaults(self.snapshot.properties())?;
        options.validate()?;
        let (snapshot, result) = delete_impl(&self.log, &self.snapshot, &filter, options).await?;
        if let Some(snapshot) = snapshot {
            self.snapshot = Arc::new(snapshot);
        }
        Ok(result)
    }

    /// Sets dataset properties (for example [`crate::PROP_DEFAULT_ENGINE`]) in one commit
    /// that changes no data, and moves to the new version. An empty value clears a
    /// property where dala reads it.
    pub async fn set_properties(
        &mut self,
        properties: BTreeMap<String, String>,
    ) -> Result<WriteResult> {
        self.require_log()?;
        for (key, value) in &properties {
            check_property(key, value)?;
        }
        self.reload().await?;
        let pending = PendingCommit {
            operation: Operation::SetProperties,
            options: serde_json::Value::Null,
            schema: self.snapshot.data_schema().clone(),
            partitioning: self.snapshot.partitioning().to_vec(),
            properties: Some(properties),
            add: Vec::new(),
            remove: Vec::new(),
            scope: ConflictScope::Append,
            metadata: Default::default(),
        };
        let snapshot = commit(&self.log, Some(&self.snapshot), &pending).await?;
        let result = WriteResult {
            version: Some(snapshot.version()),
            ..WriteResult::default()
        };
        self.snapshot = Arc::new(snapshot);
        Ok(result)
    }

    /// A scan of this version.
    pub fn scan(&self) -> ScanBuilder {
        ScanBuilder::new(self.log.clone(), self.snapshot.clone()).with_url(&self.url)
    }

    /// This dataset at `snapshot`, a version just committed through this handle's log.
    pub(crate) fn at(&self, snapshot: Snapshot) -> Dataset {
        Dataset {
            log: self.log.clone(),
            url: self.url.clone(),
            snapshot: Arc::new(snapshot),
        }
    }

    /// The version's state: schema, partitioning and file index.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.snapshot.version()
    }

    /// The schema a scan returns (data columns, then partition columns).
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.snapshot.schema()
    }

    /// Where the dataset lives.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store and log of the dataset.
    pub fn log_store(&self) -> &LogStore {
        &self.log
    }

    /// The Parquet footer of one of the dataset's files (row groups, column chunks and
    /// their sizes, statistics), read with one or two range requests.
    pub async fn file_metadata(
        &self,
        file: &FileEntry,
    ) -> Result<Arc<parquet::file::metadata::ParquetMetaData>> {
        let location = self.log.child(&file.path)?;
        let metadata =
            crate::scan::load_metadata_at(&self.log, &location, file.size, false).await?;
        Ok(metadata.metadata().clone())
    }

    /// Moves to the latest version; returns whether it changed.
    pub async fn reload(&mut self) -> Result<bool> {
        let latest = load_snapshot(&self.log, None, Latest::Now)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("dataset at {}", self.url),
            })?;
        let changed = latest.version() != self.snapshot.version();
        self.snapshot = Arc::new(latest);
        Ok(changed)
    }

    /// Every commit, newest first.
    pub async fn history(&self) -> Result<Vec<Commit>> {
        let listing = self.log.list(None).await?;
        let log = self.log.clone();
        let mut commits: Vec<Commit> = stream::iter(listing.commits)
            .map(move |v| {
                let log = log.clone();
                async move { log.read_commit(v).await }
            })
            .buffered(LOG_READ_CONCURRENCY)
            .try_collect()
            .await?;
        commits.reverse();
        Ok(commits)
    }

    /// Registers data files that were added to the folder behind dala's back, as one
    /// append commit (`dala sync`). Files already in the index are left alone.
    pub async fn refresh(&mut self) -> Result<WriteResult> {
        self.require_log()?;
        self.reload().await?;
        let listed = list_data_files(&self.log).await?;
        let new: Vec<(String, u64)> = {
            let known: std::collections::HashSet<&str> =
                self.snapshot.files().map(|f| f.path.as_str()).collect();
            listed
                .into_iter()
                .filter(|(p, _)| !known.contains(p.as_str()))
                .collect()
        };
        if new.is_empty() {
            return Ok(WriteResult::default());
        }
        let (_, entries) = index_files(
            &self.log,
            &new,
            self.snapshot.partitioning(),
            Some(self.snapshot.data_schema().clone()),
        )
        .await?;
        let pending = PendingCommit {
            operation: Operation::Sync,
            options: serde_json::Value::Null,
            schema: self.snapshot.data_schema().clone(),
            partitioning: self.snapshot.partitioning().to_vec(),
            properties: None,
            add: entries,
            remove: Vec::new(),
            scope: ConflictScope::Append,
            metadata: Default::default(),
        };
        let result = summarize(&pending);
        let snapshot = commit(&self.log, Some(&self.snapshot), &pending).await?;
        let result = WriteResult {
            version: Some(snapshot.version()),
            ..result
        };
        self.snapshot = Arc::new(snapshot);
        Ok(result)
    }

    /// Writes a checkpoint of this version now.
    pub async fn checkpoint(&self) -> Result<()> {
        self.require_log()?;
        write_checkpoint(&self.log, &self.snapshot).await
    }

    /// Fails, before anything is written, when this dataset was indexed in memory (see
    /// [`DatasetBuilder::adopt_in_memory`]): it has no log to commit to, and on a folder
    /// without a log, files written beside the data would be adopted as data later.
    pub(crate) fn require_log(&self) -> Result<()> {
        match self.snapshot.is_committed() {
            true => Ok(()),
            false => Err(crate::commit::uncommitted(&self.url)),
        }
    }
}

fn summarize(pending: &PendingCommit) -> WriteResult {
    WriteResult {
        version: None,
        rows_inserted: pending.add.iter().map(|f| f.rows).sum(),
        rows_deleted: pending.remove.iter().map(|f| f.rows).sum(),
        files_added: pending.add.len() as u64,
        files_removed: pending.remove.len() as u64,
        bytes_written: pending.add.iter().map(|f| f.size).sum(),
        ..Default::default()
    }
}

/// Loads `version` (None: the latest, as fresh as `freshness` asks). Returns None when the
/// dataset has no log.
pub(crate) async fn load_snapshot(
    log: &LogStore,
    version: Option<u64>,
    freshness: Latest,
) -> Result<Option<Snapshot>> {
    let hint = log
        .last_checkpoint_hint()
        .await
        .filter(|h| version.is_none_or(|v| *h <= v));
    let (mut listing, listed) = match log.cached_listing(hint, freshness).await? {
        Some(listing) => (listing, false),
        None => (log.list(hint).await?, true),
    };
    if hint.is_some() && listing.commits.is_empty() {
        listing = log.list(None).await?; // a stale or wrong hint
    }
    let Some(&latest) = listing.commits.last() else {
        return Ok(None);
    };
    if listed {
        log.note_latest(latest);
    }
    let target = version.unwrap_or(latest);
    if target > latest && freshness == Latest::Recent {
        // The version asked for may be newer than the last check.
        return Box::pin(load_snapshot(log, version, Latest::Now)).await;
    }
    if target > latest {
        return Err(Error::NotFound {
            what: format!("version {target} (the latest is {latest})"),
        });
    }
    let checkpoint = listing
        .checkpoints
        .iter()
        .rev()
        .find(|c| **c <= target)
        .copied();
    let cached = log
        .cached_snapshot(&listing.commits, target)
        .filter(|s| checkpoint.is_none_or(|c| s.version() >= c));
    // A snapshot this process built before, at the target or a little earlier, saves
    // reading the checkpoint and the commits up to it.
    let (mut snapshot, start) = match (cached, checkpoint) {
        (Some(s), _) => {
            let next = s.version() + 1;
            (s, next)
        }
        (None, Some(c)) => (read_checkpoint(log, c).await?, c + 1),
        (None, None) if listing.commits.first() != Some(&0) => {
            // The listing began at a hint; look further back.
            listing = log.list(None).await?;
            if let Some(c) = listing.checkpoints.iter().rev().find(|c| **c <= target) {
                (read_checkpoint(log, *c).await?, c + 1)
            } else {
                let bytes = log.read_commit_bytes(0).await.map_err(|e| match e {
                    Error::NotFound { .. } => Error::CorruptLog {
                        path: log.commit_path(0).to_string(),
                        message: "version 0 is missing".into(),
                    },
                    e => e,
                })?;
                (first_snapshot(log, &bytes)?, 1)
            }
        }
        (None, None) => (first_snapshot(log, &log.read_commit_bytes(0).await?)?, 1),
    };
    let versions: Vec<u64> = (start..=target).collect();
    for v in &versions {
        if listing.commits.binary_search(v).is_err() {
            return Err(Error::CorruptLog {
                path: log.commit_path(*v).to_string(),
                message: format!("version {v} is missing: the log has a gap"),
            });
        }
    }
    let reader = log.clone();
    let mut commits = stream::iter(versions)
        .map(move |v| {
            let log = reader.clone();
            async move { (v, log.read_commit_bytes(v).await) }
        })
        .buffered(LOG_READ_CONCURRENCY);
    while let Some((v, bytes)) = commits.next().await {
        let path = log.commit_path(v);
        let bytes = bytes?;
        let commit = CommitView::parse(&bytes, v, path.as_ref())?;
        snapshot.apply_entry(&commit, path.as_ref())?;
    }
    log.keep_snapshot(&snapshot);
    Ok(Some(snapshot))
}

/// Version 0 from the bytes of its commit.
fn first_snapshot(log: &LogStore, bytes: &[u8]) -> Result<Snapshot> {
    let path = log.commit_path(0);
    let commit = CommitView::parse(bytes, 0, path.as_ref())?;
    Snapshot::from_first_entry(&commit, path.as_ref())
}

async fn version_at_time(log: &LogStore, ts: DateTime<Utc>) -> Result<u64> {
    let listing = log.list(None).await?;
    let millis = ts.timestamp_millis();
    // Commit timestamps grow with versions; find the last one at or before `ts`.
    let (mut lo, mut hi) = (0usize, listing.commits.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let commit = log.read_commit(listing.commits[mid]).await?;
        if commit.timestamp <= millis {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    match lo.checked_sub(1).and_then(|i| listing.commits.get(i)) {
        Some(v) => Ok(*v),
        None => Err(Error::NotFound {
            what: format!("a version at or before {ts}"),
        }),
    }
}

/// Creates version 0 from the hive Parquet files already under the root.
async fn adopt(log: &LogStore, url: &str) -> Result<Snapshot> {
    let pending = adoption(log, url).await?;
    match commit(log, None, &pending).await {
        Ok(snapshot) => Ok(snapshot),
        // Another process adopted or created it first: use theirs.
        Err(Error::CommitConflict { .. }) => load_snapshot(log, None, Latest::Now)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("dataset at {url}"),
            }),
        Err(e) => Err(e),
    }
}

/// The commit that adopts the hive tree at `url` (its files indexed) as version 0.
async fn adoption(log: &LogStore, url: &str) -> Result<PendingCommit> {
    let files = adoptable_files(log).await?;
    if files.is_empty() {
        return Err(Error::NotFound {
            what: format!("dataset at {url}"),
        });
    }
    let partitioning = infer_partitioning(&files)?;
    let (schema, entries) = index_files(log, &files, &partitioning, None).await?;
    Ok(PendingCommit {
        operation: Operation::Adopt,
        options: serde_json::Value::Null,
        schema,
        partitioning,
        properties: None,
        add: entries,
        remove: Vec::new(),
        scope: ConflictScope::All,
        metadata: Default::default(),
    })
}

/// Writes `data` on top of `base` and commits it.
async fn write_impl<I>(
    log: &LogStore,
    base: Option<&Snapshot>,
    data: I,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)>
where
    I: IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
{
    let options = &match base {
        Some(base) => options.with_dataset_defaults(base.properties())?,
        None => options.clone(),
    };
    options.validate()?;
    // Partition columns derived from a timestamp column are added to every batch, and
    // duplicates dropped if asked.
    let partition_names: Vec<String> = match (options.partition_by.is_empty(), base) {
        (true, Some(b)) => b.partitioning().iter().map(|p| p.name.clone()).collect(),
        _ => options.partition_by.clone(),
    };
    let timestamp_column = options
        .timestamp_column
        .clone()
        .or_else(|| base.and_then(|b| b.properties().get(TIMESTAMP_COLUMN_PROPERTY).cloned()));
    let mut unique = options
        .unique
        .as_ref()
        .map(|columns| Unique::new(columns.clone()));
    let mut batches = data.into_iter().map(move |batch| {
        let mut batch = batch?;
        if let Some(column) = &timestamp_column {
            batch = derive_partitions(&batch, &partition_names, column)?;
        }
        if let Some(unique) = unique.as_mut() {
            batch = unique.filter(&batch)?;
        }
        Ok::<_, Error>(batch)
    });
    let first = loop {
        match batches.next() {
            None => return overwrite_with_nothing(log, base, options).await,
            Some(batch) => {
                let batch = batch?;
                if batch.num_rows() > 0 {
                    break batch;
                }
            }
        }
    };
    if options.mode.is_merge() {
        let mut input = vec![first];
        for batch in batches {
            input.push(batch?);
        }
        return match base {
            Some(base) => merge_and_commit(log, base, input, options).await,
            // Nothing to update.
            None if options.mode == WriteMode::Update => Ok((None, WriteResult::default())),
            // A merge into a dataset that does not exist creates it from the input,
            // deduplicated by key.
            None => {
                let schema = input[0].schema();
                let key = crate::merge::resolve_key(&options.key, &schema, &schema)?;
                let deduped = crate::merge::dedup_last(&concat_batches(&schema, &input)?, &key)?;
                create_or_append(log, None, deduped, std::iter::empty(), options).await
            }
        };
    }
    create_or_append(log, base, first, batches, options).await
}

/// An input without rows: an overwrite empties the dataset; every other mode does nothing.
async fn overwrite_with_nothing(
    log: &LogStore,
    base: Option<&Snapshot>,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    if let Some(base) = base
        && options.mode == WriteMode::OverwritePartitions
        && !options.replace_partitions.is_empty()
    {
        return empty_partitions(log, base, options).await;
    }
    let Some(base) = base.filter(|b| options.mode == WriteMode::Overwrite && b.files().len() > 0)
    else {
        return Ok((None, WriteResult::default()));
    };
    let remove = base.files().cloned().collect();
    commit_removal(
        log,
        base,
        options,
        Operation::Overwrite,
        remove,
        ConflictScope::All,
    )
    .await
}

/// Commits the removal of `remove` (no files added) with the dataset's schema.
async fn commit_removal(
    log: &LogStore,
    base: &Snapshot,
    options: &WriteOptions,
    operation: Operation,
    remove: Vec<FileEntry>,
    scope: ConflictScope,
) -> Result<(Option<Snapshot>, WriteResult)> {
    let pending = PendingCommit {
        operation,
        options: serde_json::to_value(options).unwrap_or_default(),
        schema: base.data_schema().clone(),
        partitioning: base.partitioning().to_vec(),
        properties: (!options.properties.is_empty()).then(|| options.properties.clone()),
        add: Vec::new(),
        remove,
        scope,
        metadata: options.metadata.clone(),
    };
    let summary = summarize(&pending);
    let snapshot = commit_written(log, Some(base), &pending).await?;
    let result = WriteResult {
        version: Some(snapshot.version()),
        ..summary
    };
    Ok((Some(snapshot), result))
}

/// The partition directories `options.replace_partitions` names.
fn replaced_dirs(
    partitioning: &[PartitionField],
    options: &WriteOptions,
) -> Result<BTreeSet<String>> {
    options
        .replace_partitions
        .iter()
        .map(|values| {
            if values.len() != partitioning.len() {
                return Err(Error::InvalidArgument(format!(
                    "replace_partitions: {} values for {} partition columns",
                    values.len(),
                    partitioning.len()
                )));
            }
            crate::layout::partition_dir(partitioning, values)
        })
        .collect()
}

/// `overwrite-partitions` without input rows: removes the files of the partitions
/// `options.replace_partitions` names, in one commit (nothing when they hold none).
async fn empty_partitions(
    log: &LogStore,
    base: &Snapshot,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    let dirs = replaced_dirs(base.partitioning(), options)?;
    let remove: Vec<FileEntry> = base
        .files()
        .filter(|f| dirs.contains(f.partition_dir()))
        .cloned()
        .collect();
    if remove.is_empty() {
        return Ok((None, WriteResult::default()));
    }
    let scope = ConflictScope::Partitions(dirs);
    commit_removal(
        log,
        base,
        options,
        Operation::OverwritePartitions,
        remove,
        scope,
    )
    .await
}

/// Appends or overwrites (creating the dataset if there is no `base`).
async fn create_or_append(
    log: &LogStore,
    base: Option<&Snapshot>,
    first: RecordBatch,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    let input_schema = first.schema();
    let partitioning =
        resolve_partitioning(&input_schema, options, base.map(|s| s.partitioning()))?;
    let schema = data_schema(&input_schema, &partitioning);
    let partition_names: Vec<String> = partitioning.iter().map(|p| p.name.clone()).collect();
    let schema = match base {
        Some(s) => evolve(
            s.data_schema(),
            &input_schema,
            &partition_names,
            options.schema_mode,
        )?,
        None => schema,
    };
    // A writer creating a dataset announces itself before writing any data file, so
    // that no one adopts its files as a foreign tree (see `adoptable_files`).
    let marker = match base {
        None => Some(log.announce_creation().await?),
        Some(_) => None,
    };
    let result = write_and_commit(
        log,
        base,
        input_schema,
        first,
        batches,
        schema,
        partitioning,
        options,
    )
    .await;
    if let Some(marker) = marker {
        log.withdraw_creation(&marker).await;
    }
    result
}

/// The body of [`write_impl`] once the schema is settled.
#[allow(clippy::too_many_arguments)]
async fn write_and_commit(
    log: &LogStore,
    base: Option<&Snapshot>,
    input_schema: arrow::datatypes::SchemaRef,
    first: RecordBatch,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    schema: arrow::datatypes::SchemaRef,
    partitioning: Vec<crate::layout::PartitionField>,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    let mut writer = FileWriter::try_new(log, schema.clone(), partitioning.clone(), options)?;
    // What every input batch is conformed to: the data columns, then the partition columns.
    let target: arrow::datatypes::SchemaRef = Arc::new(arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .cloned()
            .chain(partitioning.iter().map(|p| {
                let nullable = input_schema
                    .field_with_name(&p.name)
                    .map_or(true, |f| f.is_nullable());
                Arc::new(arrow::datatypes::Field::new(
                    &p.name,
                    p.data_type.clone(),
                    nullable,
                ))
            }))
            .collect::<Vec<_>>(),
    ));
    let partition_names: Vec<String> = partitioning.iter().map(|p| p.name.clone()).collect();
    let missing_as_null = options.schema_mode == SchemaMode::Merge;
    let conformed = std::iter::once(Ok(first))
        .chain(batches)
        .map(|batch| conform(&batch?, &target, &partition_names, missing_as_null));
    let written = writer.write_all(conformed).await;
    let entries = writer.conclude(written).await?;
    let (remove, scope, operation) = match (options.mode, base) {
        (WriteMode::Overwrite, Some(base)) => (
            base.files().cloned().collect::<Vec<FileEntry>>(),
            ConflictScope::All,
            Operation::Overwrite,
        ),
        (WriteMode::Overwrite, None) => (Vec::new(), ConflictScope::All, Operation::Overwrite),
        (WriteMode::OverwritePartitions, base) => {
            let mut dirs: BTreeSet<String> = entries
                .iter()
                .map(|f| f.partition_dir().to_string())
                .collect();
            dirs.extend(replaced_dirs(&partitioning, options)?);
            let remove = base
                .map(|b| {
                    b.files()
                        .filter(|f| dirs.contains(f.partition_dir()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (
                remove,
                ConflictScope::Partitions(dirs),
                Operation::OverwritePartitions,
            )
        }
        _ => (Vec::new(), ConflictScope::Append, Operation::Append),
    };
    let mut properties = options.properties.clone();
    if let (None, Some(column)) = (base, &options.timestamp_column) {
        properties.insert(TIMESTAMP_COLUMN_PROPERTY.to_string(), column.clone());
    }
    let pending = PendingCommit {
        operation,
        options: serde_json::to_value(options).unwrap_or_default(),
        schema,
        partitioning,
        properties: (!properties.is_empty()).then_some(properties),
        add: entries,
        remove,
        scope,
        metadata: options.metadata.clone(),
    };
    let summary = summarize(&pending);
    let snapshot = commit_written(log, base, &pending).await?;
    let result = WriteResult {
        version: Some(snapshot.version()),
        ..summary
    };
    Ok((Some(snapshot), result))
}

/// Commits a change whose files are written. When the commit certainly did not land, its
/// files are deleted; when it did, the files it removed are deleted (unless the dataset
/// keeps them for a retention period).
pub(crate) async fn commit_written(
    log: &LogStore,
    base: Option<&Snapshot>,
    pending: &PendingCommit,
) -> Result<Snapshot> {
    crate::failpoint::hit("write:after-data");
    let snapshot = match commit(log, base, pending).await {
        Ok(s) => s,
        Err(e) => {
            if matches!(
                e,
                Error::CommitConflict { .. }
                    | Error::SchemaMismatch { .. }
                    | Error::PartitioningMismatch { .. }
            ) {
                delete_files(log, pending.add.iter().map(|f| f.path.as_str())).await;
            }
            return Err(e);
        }
    };
    crate::failpoint::hit("commit:after-log");
    if snapshot.retention().is_none() {
        delete_files(log, pending.remove.iter().map(|f| f.path.as_str())).await;
    }
    Ok(snapshot)
}

/// Runs a merge (`insert`, `update`, `upsert`) of `input` into `base` and commits it.
async fn merge_and_commit(
    log: &LogStore,
    base: &Snapshot,
    input: Vec<RecordBatch>,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    tracing::debug!(batches = input.len(), "merge: input read");
    let partitions: Vec<String> = base.partitioning().iter().map(|p| p.name.clone()).collect();
    let input_schema = input[0].schema();
    // The dataset is read at the schema it will have, so that rows compare.
    let evolved = evolve(
        base.data_schema(),
        &input_schema,
        &partitions,
        options.schema_mode,
    )?;
    let snapshot = Arc::new(base.with_data_schema(evolved.clone()));
    let schema = snapshot.schema();
    let key = crate::merge::resolve_key(&options.key, &schema, &input_schema)?;
    let missing_as_null = options.schema_mode == SchemaMode::Merge;
    let input = crate::merge::prepare_input(input, &schema, &partitions, &key, missing_as_null)?;
    let mut writer = FileWriter::try_new(log, evolved, base.partitioning().to_vec(), options)?;
    let merged = crate::merge::merge(log, &snapshot, &input, &key, options.mode, &mut writer).await;
    let (rewrite, probe) = match merged {
        Ok(done) => done,
        Err(e) => {
            writer.abort().await;
            return Err(vanished_is_conflict(log, base, e).await);
        }
    };
    let operation = match options.mode {
        WriteMode::Insert => Operation::Insert,
        WriteMode::Update => Operation::Update,
        _ => Operation::Upsert,
    };
    let scope = ConflictScope::Keys(Arc::new(probe));
    finish_rewrite(
        log, &snapshot, base, writer, rewrite, operation, scope, options,
    )
    .await
}

/// `error`, met reading the files of `base`, as a conflict when it is a missing file and a
/// newer version removed files of `base`: a concurrent commit deleted what this operation
/// was reading. Nothing was committed; a retry reads the new version. A file missing from
/// the latest version too stays a `NotFound`.
async fn vanished_is_conflict(log: &LogStore, base: &Snapshot, error: Error) -> Error {
    if !matches!(error, Error::NotFound { .. }) {
        return error;
    }
    let Ok(Some(latest)) = load_snapshot(log, None, Latest::Now).await else {
        return error;
    };
    let latest_files: HashSet<&str> = latest.files().map(|f| f.path.as_str()).collect();
    let removed = base
        .files()
        .filter(|f| !latest_files.contains(f.path.as_str()))
        .count();
    if latest.version() == base.version() || removed == 0 {
        return error;
    }
    Error::CommitConflict {
        version: latest.version(),
        reason: format!(
            "versions {} to {} removed {removed} files this operation was reading ({error}); \
             nothing was committed",
            base.version() + 1,
            latest.version()
        ),
    }
}

/// Finishes the files of a merge or delete and commits them with the files it removes;
/// commits nothing when nothing changed.
#[allow(clippy::too_many_arguments)]
async fn finish_rewrite(
    log: &LogStore,
    target: &Snapshot,
    base: &Snapshot,
    mut writer: FileWriter<'_>,
    rewrite: crate::merge::Rewrite,
    operation: Operation,
    scope: ConflictScope,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    let entries = writer.conclude(Ok(())).await?;
    let mut result = WriteResult {
        version: None,
        rows_inserted: rewrite.rows_inserted,
        rows_updated: rewrite.rows_updated,
        rows_deleted: rewrite.rows_deleted,
        rows_unchanged: rewrite.rows_unchanged,
        files_added: entries.len() as u64,
        files_removed: rewrite.remove.len() as u64,
        bytes_written: entries.iter().map(|f| f.size).sum(),
    };
    if entries.is_empty() && rewrite.remove.is_empty() {
        return Ok((None, result));
    }
    let pending = PendingCommit {
        operation,
        options: serde_json::to_value(options).unwrap_or_default(),
        schema: target.data_schema().clone(),
        partitioning: base.partitioning().to_vec(),
        properties: (!options.properties.is_empty()).then(|| options.properties.clone()),
        add: entries,
        remove: rewrite.remove,
        scope,
        metadata: options.metadata.clone(),
    };
    tracing::debug!(files = pending.add.len(), "rewrite: files written");
    let snapshot = commit_written(log, Some(base), &pending).await?;
    tracing::debug!(version = snapshot.version(), "rewrite: committed");
    result.version = Some(snapshot.version());
    Ok((Some(snapshot), result))
}

/// Deletes the rows `filter` matches from `base` and commits.
async fn delete_impl(
    log: &LogStore,
    base: &Arc<Snapshot>,
    filter: &Expr,
    options: &WriteOptions,
) -> Result<(Option<Snapshot>, WriteResult)> {
    let mut writer = FileWriter::try_new(
        log,
        base.data_schema().clone(),
        base.partitioning().to_vec(),
        options,
    )?;
    let rewrite = match crate::merge::delete(log, base, filter, &mut writer).await {
        Ok(rewrite) => rewrite,
        Err(e) => {
            writer.abort().await;
            return Err(vanished_is_conflict(log, base, e).await);
        }
    };
    finish_rewrite(
        log,
        base,
        base,
        writer,
        rewrite,
        Operation::Delete,
        ConflictScope::Append,
        options,
    )
    .await
}
