//! The cache itself: the memory tier, the SSD tier, what is known of each object, the
//! decoded footers and values, and the counters. Stores share one cache through
//! [`CachedStore`](crate::CachedStore) wrappers.

use std::any::Any;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use crate::disk::{DiskRead, DiskTier, SEGMENT};
use crate::error::Result;
use crate::options::{CacheMode, CacheOptions};
use crate::stats::{CacheStats, Counters, Counts};
use crate::store::CachedStore;

/// The process-wide cache, set up when first asked for.
static PROCESS: OnceLock<Option<Arc<Cache>>> = OnceLock::new();

/// What is known of an object: its metadata, and when a store last confirmed it.
#[derive(Debug, Clone)]
pub(crate) struct ObjectEntry {
    pub meta: ObjectMeta,
    pub checked: Instant,
}

/// Something decoded from a write-once object, kept under the metadata budget.
#[derive(Clone)]
enum Decoded {
    /// A Parquet footer and what it was read for.
    Footer {
        size: u64,
        page_index: bool,
        metadata: ArrowReaderMetadata,
    },
    /// A caller's value (see [`Cache::keep_decoded`]) and its weight in bytes.
    Value {
        value: Arc<dyn Any + Send + Sync>,
        bytes: u32,
    },
}

impl Decoded {
    fn weight(&self) -> u32 {
        match self {
            Decoded::Footer { metadata, .. } => {
                u32::try_from(metadata.metadata().memory_size()).unwrap_or(u32::MAX)
            }
            Decoded::Value { bytes, .. } => *bytes,
        }
    }
}

/// An object of one store: the store's name and the path.
pub(crate) type ObjectKey = (Arc<str>, Path);

/// A tiered cache of object-store reads: memory (L1), an optional SSD directory (L2), the
/// size and e-tag of each object read, and decoded Parquet footers.
///
/// Wrap a store with [`Cache::wrap`]; every wrapper of one cache shares its tiers, budgets
/// and counters.
pub struct Cache {
    pub(crate) options: CacheOptions,
    pub(crate) memory: moka::sync::Cache<String, Bytes>,
    pub(crate) disk: Option<DiskTier>,
    pub(crate) objects: moka::sync::Cache<ObjectKey, ObjectEntry>,
    /// Objects the store said do not exist, and when: trusted like the metadata of an
    /// object that is not written once, for [`CacheOptions::revalidate_after`]. Reads of
    /// write-once objects never use them (see [`Cache::note_missing`]). Also kept on the
    /// SSD tier, with the wall-clock time, for the processes after this one.
    absent: moka::sync::Cache<ObjectKey, Instant>,
    /// Decoded footers and callers' decoded values, by the object they came from.
    decoded: moka::sync::Cache<ObjectKey, Decoded>,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("options", &self.options)
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache with `options`; opens (and indexes) the SSD tier's directory when there is one.
    pub fn new(options: CacheOptions) -> Result<Arc<Self>> {
        options.validate()?;
        let disk = options.disk.as_ref().map(DiskTier::open).transpose()?;
        let memory = moka::sync::Cache::builder()
            .max_capacity(options.memory_bytes)
            .weigher(|key: &String, block: &Bytes| {
                u32::try_from(block.len() + key.len()).unwrap_or(u32::MAX)
            })
            .build();
        let decoded = moka::sync::Cache::builder()
            .max_capacity(options.metadata_bytes)
            .weigher(|_key: &ObjectKey, entry: &Decoded| entry.weight())
            .build();
        Ok(Arc::new(Self {
            memory,
            disk,
            objects: moka::sync::Cache::new(1_000_000),
            absent: moka::sync::Cache::new(100_000),
            decoded,
            counters: Counters::default(),
            options,
        }))
    }

    /// A cache configured by the `DALA_CACHE_*` environment variables.
    pub fn from_env() -> Result<Arc<Self>> {
        Self::new(CacheOptions::from_env()?)
    }

    /// The process-wide cache that stores get when `DALA_CACHE` allows it (remote stores by
    /// default), configured by the environment when first asked for; `None` when the
    /// cache is off.
    pub fn process() -> Result<Option<Arc<Self>>> {
        if let Some(cache) = PROCESS.get() {
            return Ok(cache.clone());
        }
        let cache = match CacheMode::from_env()? {
            CacheMode::Off => None,
            CacheMode::Remote | CacheMode::On => Some(Self::from_env()?),
        };
        Ok(PROCESS.get_or_init(|| cache).clone())
    }

    /// The process-wide cache if something has used it (without setting it up otherwise).
    pub fn process_if_started() -> Option<Arc<Self>> {
        PROCESS.get().cloned().flatten()
    }

    /// Whether the process-wide cache applies to a store that is remote (or local).
    pub fn applies_to(remote: bool) -> Result<bool> {
        Ok(match CacheMode::from_env()? {
            CacheMode::Off => false,
            CacheMode::Remote => remote,
            CacheMode::On => true,
        })
    }

    /// `store` with its reads going through this cache.
    pub fn wrap(self: &Arc<Self>, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        Arc::new(CachedStore::new(store, self.clone()))
    }

    /// The options the cache was made with.
    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    /// Counts so far and what the tiers hold.
    pub fn stats(&self) -> CacheStats {
        self.memory.run_pending_tasks();
        self.decoded.run_pending_tasks();
        let (disk_bytes, disk_entries) = self.disk.as_ref().map_or((0, 0), DiskTier::usage);
        CacheStats {
            counts: self.counters.snapshot(),
            memory_bytes: self.memory.weighted_size(),
            memory_entries: self.memory.entry_count(),
            memory_budget: self.options.memory_bytes,
            disk_bytes,
            disk_entries,
            disk_budget: self.options.disk.as_ref().map_or(0, |d| d.bytes),
            metadata_entries: self.decoded.entry_count(),
        }
    }

    /// Adds the counts since the last call to the SSD tier's `stats.json`, so that
    /// `dala cache stats` shows totals over processes; returns the new totals (`None`
    /// without an SSD tier).
    pub fn persist_counts(&self) -> Result<Option<Counts>> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let counts = self.counters.take();
        crate::stats::add_to_file(disk.dir(), &counts).map(Some)
    }

    /// Empties every tier of this cache (the SSD tier's directory included).
    pub fn clear(&self) -> Result<()> {
        self.memory.invalidate_all();
        self.objects.invalidate_all();
        self.decoded.invalidate_all();
        if let Some(disk) = &self.disk {
            crate::disk::clear_dir(disk.dir())?;
            crate::stats::remove_file(disk.dir())?;
            disk.reopen()?;
        }
        Ok(())
    }

    /// The decoded footer of `path` in the store named `store` (any name that tells the
    /// caller's stores apart, e.g. the store's `Display`), if cached for a file of `size`
    /// bytes and (when `page_index`) with its page index.
    pub fn footer(
        &self,
        store: &Arc<str>,
        path: &Path,
        size: u64,
        page_index: bool,
    ) -> Option<ArrowReaderMetadata> {
        let key = (store.clone(), path.clone());
        let found = match self.decoded.get(&key) {
            Some(Decoded::Footer {
                size: kept_size,
                page_index: with_index,
                metadata,
            }) if kept_size == size && (with_index || !page_index) => Some(metadata),
            _ => None,
        };
        self.count_metadata(found.is_some());
        found
    }

    fn count_metadata(&self, hit: bool) {
        let counter = if hit {
            &self.counters.metadata_hits
        } else {
            &self.counters.metadata_misses
        };
        Counters::add(counter, 1);
    }

    /// A value the caller decoded from the write-once object at `path` of the store named
    /// `store` and kept with [`Cache::keep_decoded`]; `None` when it is not kept (or is
    /// not a `T`).
    pub fn decoded<T: Any + Send + Sync>(&self, store: &Arc<str>, path: &Path) -> Option<Arc<T>> {
        let found = match self.decoded.get(&(store.clone(), path.clone())) {
            Some(Decoded::Value { value, .. }) => value.downcast::<T>().ok(),
            _ => None,
        };
        self.count_metadata(found.is_some());
        found
    }

    /// Keeps `value`, decoded from the write-once object at `path` (alone, or with the
    /// write-once objects before it, such as a log's commits up to one), under the
    /// metadata budget, weighing `bytes`. Values of objects that are not written once are
    /// not kept, and a write to `path` through the cache forgets the value.
    pub fn keep_decoded<T: Any + Send + Sync>(
        &self,
        store: &Arc<str>,
        path: &Path,
        value: Arc<T>,
        bytes: usize,
    ) {
        if !(self.options.immutable)(path) {
            return;
        }
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.decoded.insert(
            (store.clone(), path.clone()),
            Decoded::Value { value, bytes },
        );
    }

    /// Keeps the decoded footer of a write-once file (other files are not kept, as they
    /// may change under the same name).
    pub fn insert_footer(
        &self,
        store: &Arc<str>,
        path: &Path,
        size: u64,
        page_index: bool,
        metadata: ArrowReaderMetadata,
    ) {
        if !(self.options.immutable)(path) {
            return;
        }
        let key = (store.clone(), path.clone());
        self.decoded.insert(
            key,
            Decoded::Footer {
                size,
                page_index,
                metadata,
            },
        );
    }

    /// Forgets what is known of `path` in the store named `store`, after a write to it.
    pub(crate) fn forget(&self, store: &Arc<str>, path: &Path) {
        let key = (store.clone(), path.clone());
        self.objects.invalidate(&key);
        self.absent.invalidate(&key);
        self.decoded.invalidate(&key);
        if let Some(disk) = &self.disk {
            disk.remove(&absent_key(store, path));
        }
    }

    /// Bytes `within` of a block from memory: the block, or (after a partial read from the
    /// SSD tier) the segments of it that cover `within`.
    pub(crate) fn lookup_memory(&self, key: &str, within: Range<usize>) -> Option<Bytes> {
        let piece = match self.memory.get(key) {
            Some(block) if within.end <= block.len() => block.slice(within),
            _ if self.disk.is_none() || within.is_empty() => return None,
            _ => {
                let first = within.start / SEGMENT;
                let segments = (first..within.end.div_ceil(SEGMENT))
                    .map(|s| self.memory.get(&segment_key(key, s)))
                    .collect::<Option<Vec<Bytes>>>()?;
                let within = within.start - first * SEGMENT..within.end - first * SEGMENT;
                let joined = join(&segments);
                if within.end > joined.len() {
                    return None;
                }
                joined.slice(within)
            }
        };
        Counters::add(&self.counters.memory_hits, 1);
        Counters::add(&self.counters.memory_bytes, piece.len() as u64);
        Some(piece)
    }

    /// Bytes `parts` of the `len`-byte block `key` from the SSD tier, reading and checking
    /// only the segments that cover them; what was read is promoted to memory (the block,
    /// or its segments).
    pub(crate) fn lookup_disk(
        &self,
        key: &str,
        len: usize,
        parts: &[Range<usize>],
    ) -> Option<Vec<Bytes>> {
        let disk = self.disk.as_ref()?;
        let runs = match disk.read_parts(key, len, parts) {
            DiskRead::Hit(runs) => runs,
            DiskRead::Corrupt => {
                Counters::add(&self.counters.disk_corrupt, 1);
                return None;
            }
            DiskRead::Miss => return None,
        };
        Counters::add(&self.counters.disk_hits, 1);
        let read: usize = runs.iter().map(|(_, run)| run.len()).sum();
        Counters::add(&self.counters.disk_bytes, read as u64);
        if let [(0, whole)] = runs.as_slice()
            && whole.len() == len
        {
            self.memory.insert(key.to_string(), whole.clone());
        } else {
            for (from, run) in &runs {
                for at in (0..run.len()).step_by(SEGMENT) {
                    let segment = run.slice(at..(at + SEGMENT).min(run.len()));
                    self.memory
                        .insert(segment_key(key, (from + at) / SEGMENT), segment);
                }
            }
        }
        parts
            .iter()
            .map(|part| {
                let (from, run) = runs
                    .iter()
                    .find(|(from, run)| *from <= part.start && part.end <= from + run.len())?;
                Some(run.slice(part.start - from..part.end - from))
            })
            .collect()
    }

    /// Whether the cache knows, without asking the store, that the write-once object at
    /// `path` of the store named `store` (as the store's wrapper names it, e.g. in its
    /// `Display`) exists: its metadata is in memory or on the SSD tier. A write-once object
    /// the cache has seen cannot have changed since, so a reader may rely on it; an object
    /// the cache does not know may still exist.
    pub fn knows(&self, store: &Arc<str>, path: &Path) -> bool {
        (self.options.immutable)(path) && self.written_once_meta(store, path).is_some()
    }

    /// Notes that the object at `path` of the store named `store` did not exist just now,
    /// to be trusted for [`CacheOptions::revalidate_after`](crate::CacheOptions::revalidate_after):
    /// kept in memory and on the SSD tier (with the wall-clock time, so that the processes
    /// after this one trust it for what is left of the interval). A write to `path`
    /// through a cache on the same tiers forgets it. The cached store notes the mutable
    /// objects the store said do not exist; for a write-once object (such as the commit
    /// after a log's latest) the note is the caller's alone, as reads through the cache
    /// never use it (a write-once object is fetched once it exists).
    pub fn note_missing(&self, store: &Arc<str>, path: &Path) {
        self.absent
            .insert((store.clone(), path.clone()), Instant::now());
        if let Some(disk) = &self.disk
            && let Err(e) = disk.write(&absent_key(store, path), &unix_millis().to_le_bytes())
        {
            tracing::warn!(dir = %disk.dir().display(), error = %e, "cache entry not written");
        }
    }

    /// Whether [`Cache::note_missing`] (in this process, or in another one sharing the SSD
    /// tier) noted `path` missing less than the revalidation interval ago, and no write
    /// through the cache has made it since.
    pub fn recently_missing(&self, store: &Arc<str>, path: &Path) -> bool {
        let interval = self.options.revalidate_after;
        let key = (store.clone(), path.clone());
        if self
            .absent
            .get(&key)
            .is_some_and(|when| when.elapsed() < interval)
        {
            return true;
        }
        let Some(disk) = &self.disk else {
            return false;
        };
        let DiskRead::Hit(noted) = disk.read(&absent_key(store, path), Some(8)) else {
            return false;
        };
        let Some(noted) = noted.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)) else {
            return false;
        };
        // A note from the future (another machine's clock) is not trusted.
        let age = match unix_millis().checked_sub(noted) {
            Some(age) => std::time::Duration::from_millis(age),
            None => return false,
        };
        if age >= interval {
            return false;
        }
        if let Some(when) = Instant::now().checked_sub(age) {
            self.absent.insert(key, when);
        }
        true
    }

    /// The metadata of the write-once object at `path`, known in memory or kept on the SSD
    /// tier by an earlier process (then noted in memory too).
    pub(crate) fn written_once_meta(&self, store: &Arc<str>, path: &Path) -> Option<ObjectMeta> {
        let key = (store.clone(), path.clone());
        if let Some(entry) = self.objects.get(&key) {
            return Some(entry.meta);
        }
        let meta = self.disk_meta(store, path)?;
        self.objects.insert(
            key,
            ObjectEntry {
                meta: meta.clone(),
                checked: Instant::now(),
            },
        );
        Some(meta)
    }

    /// The metadata of a write-once object kept on the SSD tier by an earlier process.
    pub(crate) fn disk_meta(&self, store: &str, path: &Path) -> Option<ObjectMeta> {
        let disk = self.disk.as_ref()?;
        match disk.read(&meta_key(store, path), None) {
            DiskRead::Hit(data) => {
                let stored: StoredMeta = serde_json::from_slice(&data).ok()?;
                Some(ObjectMeta {
                    location: path.clone(),
                    last_modified: chrono::DateTime::from_timestamp_nanos(stored.modified_ns),
                    size: stored.size,
                    e_tag: stored.e_tag,
                    version: stored.version,
                })
            }
            DiskRead::Corrupt => {
                Counters::add(&self.counters.disk_corrupt, 1);
                None
            }
            DiskRead::Miss => None,
        }
    }

    /// Keeps the metadata of a write-once object on the SSD tier, so that a later process
    /// can use the blocks there without asking the store.
    pub(crate) fn keep_disk_meta(&self, store: &str, meta: &ObjectMeta) {
        let Some(disk) = &self.disk else { return };
        let stored = StoredMeta {
            size: meta.size,
            e_tag: meta.e_tag.clone(),
            version: meta.version.clone(),
            modified_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or_default(),
        };
        let Ok(data) = serde_json::to_vec(&stored) else {
            return;
        };
        if let Err(e) = disk.write(&meta_key(store, &meta.location), &data) {
            tracing::warn!(dir = %disk.dir().display(), error = %e, "cache entry not written");
        }
    }

    /// Keeps a block fetched from the store in memory and on the SSD tier.
    pub(crate) fn store_block(&self, key: String, block: Bytes) {
        if let Some(disk) = &self.disk
            && let Err(e) = disk.write(&key, &block)
        {
            tracing::warn!(dir = %disk.dir().display(), error = %e, "cache entry not written");
        }
        self.memory.insert(key, block);
    }
}

/// An object's metadata as the SSD tier keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMeta {
    size: u64,
    e_tag: Option<String>,
    version: Option<String>,
    modified_ns: i64,
}

/// The memory tier's key of segment `index` of the block `block_key`, read alone from the
/// SSD tier.
fn segment_key(block_key: &str, index: usize) -> String {
    format!("{block_key}\nsegment {index}")
}

/// `parts` one after another: the part itself when there is one (no copy).
pub(crate) fn join(parts: &[Bytes]) -> Bytes {
    match parts {
        [] => Bytes::new(),
        [only] => only.clone(),
        _ => {
            let mut out = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
            for part in parts {
                out.extend_from_slice(part);
            }
            Bytes::from(out)
        }
    }
}

fn meta_key(store: &str, path: &Path) -> String {
    format!("meta\n{store}\n{path}")
}

/// The SSD tier's key of the note that an object does not exist.
fn absent_key(store: &str, path: &Path) -> String {
    format!("absent\n{store}\n{path}")
}

/// Milliseconds since the Unix epoch, now.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Removes every entry and the statistics of the SSD tier in `dir`; returns how many files
/// were removed.
pub fn clear_disk(dir: &std::path::Path) -> Result<u64> {
    let removed = crate::disk::clear_dir(dir)?;
    crate::stats::remove_file(dir)?;
    Ok(removed)
}

/// The totals in the SSD tier's `stats.json` in `dir`, with the bytes and entries found on
/// disk.
pub fn disk_stats(dir: &std::path::Path) -> Result<(Counts, u64, u64)> {
    let counts = crate::stats::read_file(dir)?;
    let (bytes, entries) = crate::disk::dir_usage(dir);
    Ok((counts, bytes, entries))
}

/// Checks every entry of the SSD tier in `dir` against its checksum; returns how many are
/// whole and how many are not (a reader would drop and refetch those).
pub fn verify_disk(dir: &std::path::Path) -> (u64, u64) {
    crate::disk::verify_dir(dir)
}
