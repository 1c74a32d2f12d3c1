//! The commit log under `_dala/`: one JSON file per version, created with a
//! conditional put so that two writers can never both commit the same version.
//!
//! ```text
//! _dala/00000000000000000000.json        version 0 (creates the dataset)
//! _dala/00000000000000000001.json        version 1
//! _dala/00000000000000000100.checkpoint  the file index at version 100 (Parquet)
//! _dala/_last_checkpoint                 a hint: the newest checkpoint's version
//! ```
//!
//! A checkpoint is a Parquet file whose name does not end in `.parquet`, so that another
//! engine's recursive glob over the dataset (`**/*.parquet`) does not read it as data.
//! Checkpoints named `<version>.checkpoint.parquet`, as they were first written, are still
//! read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::Schema;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::layout::{LOG_DIR, PartitionField};
use crate::snapshot::Snapshot;
use crate::stats::LogColumnStats;

/// The name of a checkpoint after its version.
const CHECKPOINT_SUFFIX: &str = ".checkpoint";
/// The name checkpoints had before: other engines' globs took them for data files.
const LEGACY_CHECKPOINT_SUFFIX: &str = ".checkpoint.parquet";

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// Created the dataset (version 0), possibly with data.
    Create,
    /// Adopted an existing hive tree as version 0.
    Adopt,
    /// Added files.
    Append,
    /// Replaced every file.
    Overwrite,
    /// Registered files that were added behind dala's back.
    Sync,
    /// Replaced the partitions its input had rows for.
    OverwritePartitions,
    /// Added rows whose key was absent.
    Insert,
    /// Replaced rows by key.
    Update,
    /// Replaced rows by key and added rows with new keys.
    Upsert,
    /// Removed the rows that matched a filter.
    Delete,
    /// Set dataset properties, changing no data.
    SetProperties,
    /// Rewrote files into new ones holding the same rows (compaction, sorting,
    /// recompression; with `unique`, less duplicates).
    Optimize,
    /// Rewrote every row under a new partitioning.
    Repartition,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

/// A file added by a commit, as stored in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddFile {
    /// Path relative to the dataset root.
    pub path: String,
    /// Partition values by column (typed by the dataset's partitioning).
    #[serde(default)]
    pub partition: Map<String, Value>,
    /// Rows in the file.
    pub rows: u64,
    /// Bytes on storage.
    pub size: u64,
    /// Column statistics by column name.
    #[serde(default)]
    pub stats: BTreeMap<String, LogColumnStats>,
}

/// A file removed by a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveFile {
    /// Path relative to the dataset root.
    pub path: String,
    /// Rows the file held.
    pub rows: u64,
    /// Bytes the file held.
    pub size: u64,
}

/// One version of the dataset: the entry stored at `_dala/<version>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The version this commit creates.
    pub version: u64,
    /// Milliseconds since the Unix epoch, from the writer's clock.
    pub timestamp: i64,
    /// What the commit did.
    pub operation: Operation,
    /// The options of the operation, as given.
    #[serde(default)]
    pub options: Value,
    /// The version the writer read before writing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_version: Option<u64>,
    /// The data schema, when this commit sets or changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// The partition columns, when this commit sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioning: Option<Vec<PartitionField>>,
    /// Dataset properties, when this commit sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
    /// Files added.
    #[serde(default)]
    pub add: Vec<AddFile>,
    /// Files removed.
    #[serde(default)]
    pub remove: Vec<RemoveFile>,
    /// The partition directories this commit added to or removed from.
    #[serde(default)]
    pub partitions: Vec<String>,
    /// Free-form metadata supplied by the writer.
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

impl Commit {
    /// Parses the log entry of `version` (stored at `path`, which errors name): JSON with
    /// no unknown field, the version it claims, and only file paths inside the dataset.
    pub fn parse(bytes: &[u8], version: u64, path: &str) -> Result<Commit> {
        let corrupt = |message: String| Error::CorruptLog {
            path: path.to_string(),
            message,
        };
        let commit: Commit = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        check_commit(
            commit.version,
            version,
            commit.add.iter().map(|a| a.path.as_str()),
            commit.remove.iter().map(|r| r.path.as_str()),
        )
        .map_err(corrupt)?;
        Ok(commit)
    }
}

/// A commit as read to load a snapshot: [`Commit`]'s fields, borrowed from the bytes it was
/// parsed from, less those a snapshot does not keep (options, partitions, metadata: still
/// read in full and checked to be of their types, so that what [`Commit::parse`] refuses is
/// refused here too). The statistics of each file stay JSON text until the snapshot reads
/// them straight into typed values of their columns' types, which saves most of the parse:
/// a commit of many files is mostly statistics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommitView<'a> {
    pub version: u64,
    pub timestamp: i64,
    pub operation: Operation,
    // Parsed to check it, as `Commit` does, but not kept.
    #[serde(default, rename = "options")]
    _options: AnyJson,
    #[serde(default, rename = "read_version")]
    _read_version: Option<u64>,
    #[serde(default)]
    pub schema: Option<Schema>,
    #[serde(default)]
    pub partitioning: Option<Vec<PartitionField>>,
    #[serde(default)]
    pub properties: Option<BTreeMap<String, String>>,
    #[serde(default, borrow)]
    pub add: Vec<AddView<'a>>,
    #[serde(default, borrow)]
    pub remove: Vec<RemoveView<'a>>,
    #[serde(default, rename = "partitions", borrow)]
    _partitions: Vec<Name<'a>>,
    #[serde(default, rename = "metadata", borrow)]
    _metadata: BTreeMap<Name<'a>, AnyJson>,
}

/// Any JSON value, read in full and not kept: its strings are decoded, so an invalid
/// escape or a lone surrogate is refused as [`Commit::parse`] refuses it (serde's
/// `IgnoredAny` skips strings without decoding them). Nothing is allocated.
#[derive(Debug, Default)]
struct AnyJson;

impl<'de> Deserialize<'de> for AnyJson {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(AnyJson)
    }
}

impl<'de> serde::de::Visitor<'de> for AnyJson {
    type Value = AnyJson;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_unit<E>(self) -> std::result::Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<AnyJson, A::Error> {
        while seq.next_element::<AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<AnyJson, A::Error> {
        while map.next_entry::<AnyJson, AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }
}

/// A file added by a commit, as [`CommitView`] reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddView<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    #[serde(default)]
    pub partition: Map<String, Value>,
    pub rows: u64,
    pub size: u64,
    #[serde(default, borrow)]
    pub stats: BTreeMap<Name<'a>, LogStatsText<'a>>,
}

/// A file removed by a commit, as [`CommitView`] reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveView<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    // Parsed to check them, as `Commit` does, but not kept.
    #[serde(rename = "rows")]
    _rows: u64,
    #[serde(rename = "size")]
    _size: u64,
}

/// A name in the log, borrowed unless it holds escapes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub(crate) struct Name<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// [`LogColumnStats`] with its values as JSON text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogStatsText<'a> {
    #[serde(default, borrow)]
    pub max: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub min: Option<&'a RawValue>,
    #[serde(default)]
    pub nulls: Option<u64>,
}

impl<'a> CommitView<'a> {
    /// Parses the log entry of `version` (stored at `path`) as [`Commit::parse`] does, with
    /// the same checks.
    pub fn parse(bytes: &'a [u8], version: u64, path: &str) -> Result<Self> {
        let corrupt = |message: String| Error::CorruptLog {
            path: path.to_string(),
            message,
        };
        let commit: CommitView =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        check_commit(
            commit.version,
            version,
            commit.add.iter().map(|a| a.path.as_ref()),
            commit.remove.iter().map(|r| r.path.as_ref()),
        )
        .map_err(corrupt)?;
        Ok(commit)
    }
}

/// Checks that a commit holds `version` (it claims `claimed`) and names only files inside
/// the dataset; the message says what is wrong.
fn check_commit<'p>(
    claimed: u64,
    version: u64,
    added: impl Iterator<Item = &'p str>,
    removed: impl Iterator<Item = &'p str>,
) -> std::result::Result<(), String> {
    if claimed != version {
        return Err(format!("holds version {claimed} instead of {version}"));
    }
    for file in added.chain(removed) {
        if let Err(reason) = crate::layout::check_relative_path(file) {
            return Err(format!(
                "names {file:?}, not a file inside the dataset: {reason}"
            ));
        }
    }
    Ok(())
}

impl Commit {
    /// Rows added by this commit.
    pub fn rows_added(&self) -> u64 {
        self.add.iter().map(|a| a.rows).sum()
    }

    /// Rows removed by this commit.
    pub fn rows_removed(&self) -> u64 {
        self.remove.iter().map(|r| r.rows).sum()
    }
}

/// Reads and writes a dataset's log on its object store.
#[derive(Debug, Clone)]
pub struct LogStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// The cache the store reads through, with the store's name in its footer keys.
    cache: Option<(Arc<dala_cache::Cache>, Arc<str>)>,
    /// The store, when it is the local file system read without a cache.
    local: Option<Arc<object_store::local::LocalFileSystem>>,
}

/// How fresh the answer to "which version is the latest" must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    /// As of a check made less than the cache's revalidation interval ago (opening a
    /// dataset: a commit another process made since may not be seen until then).
    Recent,
    /// As of now: ask the store (reloading, conflict checks).
    Now,
}

/// The log and checkpoint versions found by one listing of `_dala/`.
#[derive(Debug, Default, Clone)]
pub struct LogListing {
    /// Versions with a commit file, ascending.
    pub commits: Vec<u64>,
    /// Versions with a checkpoint, ascending.
    pub checkpoints: Vec<u64>,
}

impl LogStore {
    /// A log store for the dataset at `root` on `store`.
    pub fn new(store: Arc<dyn ObjectStore>, root: Path) -> Self {
        Self {
            store,
            root,
            cache: None,
            local: None,
        }
    }

    /// Notes that the store is `local`, the local file system read without a cache, so
    /// that [`LogStore::local_path`] can name files on disk.
    pub fn with_local(mut self, local: Option<Arc<object_store::local::LocalFileSystem>>) -> Self {
        self.local = local;
        self
    }

    /// Where `location` is on the local disk, when the store is the local file system
    /// read without a cache.
    pub fn local_path(&self, location: &Path) -> Option<std::path::PathBuf> {
        let local = self.local.as_ref()?;
        if self.cache.is_some() {
            return None;
        }
        local.path_to_filesystem(location).ok()
    }

    /// A log store whose `store` reads through `cache` (the store must already be wrapped
    /// by it); the cache also keeps decoded footers.
    pub fn with_cache(mut self, cache: Option<Arc<dala_cache::Cache>>) -> Self {
        self.cache = cache.map(|cache| (cache, Arc::from(self.store.to_string())));
        self
    }

    /// The cache the store reads through, if any.
    pub fn cache(&self) -> Option<&Arc<dala_cache::Cache>> {
        self.cache.as_ref().map(|(cache, _)| cache)
    }

    /// The decoded footer of the data file at `location` (of `size` bytes, with its page
    /// index when `page_index`): from the cache when it holds it, else decoded by `load`
    /// and kept there.
    pub(crate) async fn footer<F>(
        &self,
        location: &Path,
        size: u64,
        page_index: bool,
        load: F,
    ) -> Result<ArrowReaderMetadata>
    where
        F: Future<Output = Result<ArrowReaderMetadata>>,
    {
        let Some((cache, store_name)) = &self.cache else {
            return load.await;
        };
        if let Some(metadata) = cache.footer(store_name, location, size, page_index) {
            return Ok(metadata);
        }
        let metadata = load.await?;
        cache.insert_footer(store_name, location, size, page_index, metadata.clone());
        Ok(metadata)
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store path of a path relative to the dataset root. Segments are taken as they
    /// are (hive escapes stay literal); `.`/`..` segments and control characters are refused.
    pub fn child(&self, relative: &str) -> Result<Path> {
        let full = if self.root.as_ref().is_empty() {
            relative.to_string()
        } else {
            format!("{}/{}", self.root, relative)
        };
        Path::parse(&full)
            .map_err(|e| Error::InvalidArgument(format!("invalid path {relative:?}: {e}")))
    }

    /// The path relative to the dataset root of a store path below it.
    pub fn relative(&self, location: &Path) -> Option<String> {
        let root = self.root.as_ref();
        let full = location.as_ref();
        if root.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(root)?
            .strip_prefix('/')
            .map(str::to_string)
    }

    fn log_dir(&self) -> Path {
        self.root.clone().join(LOG_DIR)
    }

    /// Where the commit of `version` lives.
    pub fn commit_path(&self, version: u64) -> Path {
        self.log_dir().join(format!("{version:020}.json"))
    }

    /// Where the checkpoint of `version` is written.
    pub fn checkpoint_path(&self, version: u64) -> Path {
        self.log_dir()
            .join(format!("{version:020}{CHECKPOINT_SUFFIX}"))
    }

    /// Where the checkpoint of `version` was written before it got its present name.
    pub fn legacy_checkpoint_path(&self, version: u64) -> Path {
        self.log_dir()
            .join(format!("{version:020}{LEGACY_CHECKPOINT_SUFFIX}"))
    }

    fn last_checkpoint_path(&self) -> Path {
        self.log_dir().join("_last_checkpoint")
    }

    /// Lists `_dala/`, starting after `from_version` when given.
    pub async fn list(&self, from_version: Option<u64>) -> Result<LogListing> {
        let dir = self.log_dir();
        let names = match self.local_path(&dir) {
            Some(local_dir) => list_local(&local_dir, &dir)?,
            None => {
                let stream = match from_version {
                    Some(v) => {
                        let offset = dir.clone().join(format!("{v:020}"));
                        self.store.list_with_offset(Some(&dir), &offset)
                    }
                    None => self.store.list(Some(&dir)),
                };
                let objects: Vec<_> = stream
                    .try_collect()
                    .await
                    .map_err(|e| Error::store(&dir, e))?;
                objects
                    .into_iter()
                    .filter_map(|o| o.location.filename().map(str::to_string))
                    .collect()
            }
        };
        let mut listing = LogListing::default();
        for name in &names {
            if let Some(v) = name.strip_suffix(".json").and_then(|n| n.parse().ok()) {
                listing.commits.push(v);
            } else if let Some(v) = name
                .strip_suffix(CHECKPOINT_SUFFIX)
                .or_else(|| name.strip_suffix(LEGACY_CHECKPOINT_SUFFIX))
                .and_then(|n| n.parse().ok())
            {
                listing.checkpoints.push(v);
            }
        }
        if let Some(v) = from_version {
            listing.commits.retain(|c| *c >= v);
            listing.checkpoints.retain(|c| *c >= v);
        }
        listing.commits.sort_unstable();
        listing.checkpoints.sort_unstable();
        listing.checkpoints.dedup();
        Ok(listing)
    }

    /// The log from `hint` (the newest checkpoint's version; None: from version 0) to the
    /// latest commit, as far as the cache knows it, confirmed by one request: that the
    /// commit after the newest one the cache knows does not exist. Commits are written
    /// once and in order, so the answer is as fresh as a listing. With
    /// [`Latest::Recent`], an answer to that request less than the cache's revalidation
    /// interval old is trusted without asking again (a write through this cache forgets
    /// it). None when the store has no cache, the cache does not know where to start, or
    /// newer commits exist: the caller lists the log instead.
    pub async fn cached_listing(
        &self,
        hint: Option<u64>,
        freshness: Latest,
    ) -> Result<Option<LogListing>> {
        let Some((cache, store_name)) = &self.cache else {
            return Ok(None);
        };
        let start = hint.unwrap_or(0);
        let known = match hint {
            Some(h) => cache.knows(store_name, &self.checkpoint_path(h)),
            None => cache.knows(store_name, &self.commit_path(0)),
        };
        if !known {
            return Ok(None);
        }
        let mut latest = start;
        while cache.knows(store_name, &self.commit_path(latest + 1)) {
            latest += 1;
        }
        let listing = LogListing {
            commits: (start..=latest).collect(),
            checkpoints: hint.into_iter().collect(),
        };
        let next = self.commit_path(latest + 1);
        if matches!(freshness, Latest::Recent) && cache.recently_missing(store_name, &next) {
            return Ok(Some(listing));
        }
        match self.store.head(&next).await {
            Err(object_store::Error::NotFound { .. }) => {
                cache.note_missing(store_name, &next);
                Ok(Some(listing))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(Error::store(&next, e)),
        }
    }

    /// The newest snapshot this process kept (see [`LogStore::keep_snapshot`]) among
    /// `versions` up to `target`, looking back over at most 32 of them.
    pub(crate) fn cached_snapshot(&self, versions: &[u64], target: u64) -> Option<Snapshot> {
        let (cache, store_name) = self.cache.as_ref()?;
        versions
            .iter()
            .rev()
            .skip_while(|v| **v > target)
            .take(32)
            .find_map(|v| cache.decoded::<Snapshot>(store_name, &self.commit_path(*v)))
            .map(|snapshot| (*snapshot).clone())
    }

    /// Keeps `snapshot` in the cache's metadata tier, under its commit's name: a dataset's
    /// state at a version follows from its write-once commits, so it never goes stale.
    pub(crate) fn keep_snapshot(&self, snapshot: &Snapshot) {
        if let Some((cache, store_name)) = &self.cache {
            let path = self.commit_path(snapshot.version());
            let bytes = snapshot.memory_size();
            cache.keep_decoded(store_name, &path, Arc::new(snapshot.clone()), bytes);
        }
    }

    /// Notes, for [`LogStore::cached_listing`], that a listing just found `version` the
    /// latest commit.
    pub fn note_latest(&self, version: u64) {
        if let Some((cache, store_name)) = &self.cache {
            cache.note_missing(store_name, &self.commit_path(version + 1));
        }
    }

    /// Reads a whole object.
    pub async fn read_bytes(&self, path: &Path) -> Result<bytes::Bytes> {
        self.store
            .get(path)
            .await
            .map_err(|e| Error::store(path, e))?
            .bytes()
            .await
            .map_err(|e| Error::store(path, e))
    }

    /// Reads a small object of the log (a commit, the checkpoint hint): on a local disk read
    /// without a cache, straight from the file on this thread, where a trip to the blocking
    /// pool would cost more than the read; else from the store.
    async fn read_log_entry(&self, path: &Path) -> Result<bytes::Bytes> {
        let Some(file) = self.local_path(path) else {
            return self.read_bytes(path).await;
        };
        match std::fs::read(&file) {
            Ok(bytes) => Ok(bytes.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                what: file.display().to_string(),
            }),
            Err(e) => Err(local_error(path, e)),
        }
    }

    /// The bytes of the commit of `version`, for [`CommitView::parse`].
    pub(crate) async fn read_commit_bytes(&self, version: u64) -> Result<bytes::Bytes> {
        self.read_log_entry(&self.commit_path(version)).await
    }

    /// Reads the commit of `version`.
    pub async fn read_commit(&self, version: u64) -> Result<Commit> {
        let path = self.commit_path(version);
        let bytes = self.read_log_entry(&path).await?;
        Commit::parse(&bytes, version, path.as_ref())
    }

    /// Writes `commit` if no commit of its version exists. Returns `Ok(None)` when it
    /// landed, and the commit another writer got there first with otherwise.
    ///
    /// The store may retry a conditional put after a server error, and the retry of a put
    /// that landed the first time is refused as if another writer had won. So a refused
    /// put reads the entry back: the same bytes as ours mean the commit is ours.
    pub async fn try_write_commit(&self, commit: &Commit) -> Result<Option<Commit>> {
        let path = self.commit_path(commit.version);
        let bytes = serde_json::to_vec(commit).map_err(|e| Error::CorruptLog {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let bytes = bytes::Bytes::from(bytes);
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes.clone()), options)
            .await
        {
            Ok(_) => Ok(None),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let theirs = self.read_bytes(&path).await?;
                if theirs == bytes {
                    return Ok(None);
                }
                Commit::parse(&theirs, commit.version, path.as_ref()).map(Some)
            }
            Err(e) => Err(Error::store(&path, e)),
        }
    }

    /// Whether `_dala/` holds anything at all (commits, checkpoints or creation markers).
    pub async fn has_entries(&self) -> Result<bool> {
        use futures::StreamExt;
        let dir = self.log_dir();
        match self.store.list(Some(&dir)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(Error::store(&dir, e)),
        }
    }

    /// Puts a marker saying a writer is creating the dataset, before it writes data files.
    pub async fn announce_creation(&self) -> Result<Path> {
        let path = self
            .log_dir()
            .join("_creating")
            .join(uuid::Uuid::now_v7().to_string());
        self.store
            .put(&path, PutPayload::from_static(b"{}"))
            .await
            .map_err(|e| Error::store(&path, e))?;
        Ok(path)
    }

    /// Removes a creation marker, best effort.
    pub async fn withdraw_creation(&self, marker: &Path) {
        if let Err(e) = self.store.delete(marker).await {
            tracing::warn!(path = %marker, error = %e, "could not remove creation marker");
        }
    }

    /// The newest checkpoint's version, from the hint file (which may be missing or stale).
    pub async fn last_checkpoint_hint(&self) -> Option<u64> {
        let bytes = self
            .read_log_entry(&self.last_checkpoint_path())
            .await
            .ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        value.get("version")?.as_u64()
    }

    /// Records `version` as the newest checkpoint.
    pub async fn write_last_checkpoint_hint(&self, version: u64) -> Result<()> {
        let path = self.last_checkpoint_path();
        let body = serde_json::json!({ "version": version }).to_string();
        self.store
            .put(&path, PutPayload::from(body.into_bytes()))
            .await
            .map_err(|e| Error::store(&path, e))?;
        Ok(())
    }
}

/// The names of the files in the local folder `dir` (the log folder `path`; none when it
/// does not exist), read on this thread: the log folder holds few names.
fn list_local(dir: &std::path::Path, path: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(local_error(path, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| local_error(path, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// An error reading the log straight from the local disk, as the store would report it.
fn local_error(path: &Path, source: std::io::Error) -> Error {
    Error::Store {
        path: path.to_string(),
        source: object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(source),
        },
    }
}
