//! The SSD tier: one file per block in a directory, with a byte budget.
//!
//! ```text
//! <dir>/blocks/<2 hex>/<32 hex>   one entry: header, key, payload
//! <dir>/tmp/<uuid>                an entry being written (renamed into place when whole)
//! <dir>/stats.json                counters summed over the processes that used the cache
//! ```
//!
//! An entry is written to a temporary name and renamed into place, so a reader sees a whole
//! entry or none, and two processes writing the same block both leave a whole one. Each
//! entry carries its key and an xxh3 checksum of key and payload; an entry that fails
//! either check is deleted and counted as corrupt, and the block is fetched again. Each
//! process keeps its own index of the entries (a moka cache weighted by bytes), which evicts
//! entries beyond the budget by deleting their files. The entries earlier processes left are
//! added to it by a thread of its own when the process starts, so that a start does not wait
//! for a walk over every entry (a full 10 GiB tier holds over 10 000); meanwhile reads are
//! served as usual, and each entry read or written is indexed as it is. An entry another
//! process deleted is simply a miss.

use std::hash::Hasher as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use moka::notification::RemovalCause;
use twox_hash::{XxHash3_64, XxHash3_128};

use crate::error::{Error, Result};
use crate::options::DiskOptions;

const MAGIC: &[u8; 8] = b"DALACB01";
const HEADER: usize = 8 + 8 + 4 + 8;
/// Temporary files older than this are left over from a crash and are removed.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// What reading an entry found.
#[derive(Debug)]
pub(crate) enum DiskRead {
    /// The entry, checked.
    Hit(Bytes),
    /// No entry.
    Miss,
    /// An entry that failed its checks; it has been deleted.
    Corrupt,
}

/// The SSD tier of one process.
#[derive(Clone)]
pub(crate) struct DiskTier {
    dir: PathBuf,
    index: moka::sync::Cache<String, u32>,
    /// Set once the entries found in the directory at the start are all indexed.
    indexed: Arc<OnceLock<()>>,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("dir", &self.dir)
            .field("bytes", &self.index.weighted_size())
            .finish()
    }
}

impl DiskTier {
    /// Opens (creating when missing) the tier in `options.dir`, and starts indexing the
    /// entries already there on a thread of its own.
    pub fn open(options: &DiskOptions) -> Result<Self> {
        let dir = options.dir.clone();
        for sub in ["blocks", "tmp"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|source| Error::Disk { path, source })?;
        }
        let blocks = dir.join("blocks");
        let listener_blocks = blocks.clone();
        let index = moka::sync::Cache::builder()
            .max_capacity(options.bytes)
            .weigher(|_name: &String, size: &u32| *size)
            .eviction_listener(move |name: Arc<String>, _size, cause| {
                // A replaced entry's file is the new one; every other removal frees the file.
                if cause != RemovalCause::Replaced {
                    let _ = std::fs::remove_file(entry_path(&listener_blocks, &name));
                }
            })
            .build();
        let tier = Self {
            dir,
            index,
            indexed: Arc::new(OnceLock::new()),
        };
        let walker = tier.clone();
        let spawned = std::thread::Builder::new()
            .name("dala-cache-index".into())
            .spawn(move || walker.index_existing());
        if spawned.is_err() {
            tier.index_existing();
        }
        Ok(tier)
    }

    /// Reads the entry stored under `key`, checking key, length (when one is expected) and
    /// checksum.
    pub fn read(&self, key: &str, expected_len: Option<usize>) -> DiskRead {
        let name = entry_name(key);
        let path = entry_path(&self.dir.join("blocks"), &name);
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cache entry unreadable");
                }
                self.index.invalidate(&name);
                return DiskRead::Miss;
            }
        };
        let file_len = data.len() as u64;
        match decode(data, key, expected_len) {
            Some(payload) => {
                // Touch the index so that eviction follows this process's use.
                if self.index.get(&name).is_none() {
                    self.index.insert(name, weight(file_len));
                }
                DiskRead::Hit(payload)
            }
            None => {
                tracing::warn!(path = %path.display(), "corrupt cache entry removed");
                self.index.invalidate(&name);
                let _ = std::fs::remove_file(&path);
                DiskRead::Corrupt
            }
        }
    }

    /// Stores `payload` under `key`: written to a temporary file, then renamed into place.
    pub fn write(&self, key: &str, payload: &[u8]) -> std::io::Result<()> {
        let name = entry_name(key);
        let final_path = entry_path(&self.dir.join("blocks"), &name);
        if let Some(parent) = final_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temp = self.dir.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let entry = encode(key, payload);
        let file_len = entry.len() as u64;
        let result =
            std::fs::write(&temp, entry).and_then(|()| std::fs::rename(&temp, &final_path));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result?;
        self.index.insert(name, weight(file_len));
        Ok(())
    }

    /// Removes the entry stored under `key`, if there is one (whichever process wrote it).
    pub fn remove(&self, key: &str) {
        let name = entry_name(key);
        let path = entry_path(&self.dir.join("blocks"), &name);
        self.index.invalidate(&name);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cache entry not removed");
        }
    }

    /// Forgets every entry and recreates the directory's folders (after a clear).
    pub fn reopen(&self) -> Result<()> {
        // The walk over the entries found at the start must not index cleared ones.
        self.indexed.wait();
        self.index.invalidate_all();
        self.index.run_pending_tasks();
        for sub in ["blocks", "tmp"] {
            let path = self.dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|source| Error::Disk { path, source })?;
        }
        Ok(())
    }

    /// Bytes and entries this process counts in the tier (once the entries found at the
    /// start are indexed).
    pub fn usage(&self) -> (u64, u64) {
        self.indexed.wait();
        self.index.run_pending_tasks();
        (self.index.weighted_size(), self.index.entry_count())
    }

    /// The tier's directory.
    pub fn dir(&self) -> &FsPath {
        &self.dir
    }

    /// Adds the entries already in the directory (left by earlier processes) to the index,
    /// evicting (deleting) those beyond the budget, and removes stale temporary files.
    fn index_existing(&self) {
        /// Marks the indexing done however it ends.
        struct Done<'a>(&'a OnceLock<()>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let _ = self.0.set(());
            }
        }
        let _done = Done(&self.indexed);
        let blocks = self.dir.join("blocks");
        let shards = match std::fs::read_dir(&blocks) {
            Ok(shards) => shards,
            Err(e) => {
                tracing::warn!(path = %blocks.display(), error = %e, "cache directory unreadable");
                return;
            }
        };
        for shard in shards.flatten() {
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                let name = entry.file_name().to_string_lossy().into_owned();
                // An entry this process has read or written meanwhile is indexed already.
                self.index
                    .entry(name)
                    .or_insert_with(|| weight(metadata.len()));
            }
        }
        self.index.run_pending_tasks();
        self.remove_stale_temporaries();
    }

    fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("tmp")) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Removes every entry (and the statistics) of the SSD tier in `dir`.
pub(crate) fn clear_dir(dir: &FsPath) -> Result<u64> {
    let mut removed = 0;
    for sub in ["blocks", "tmp"] {
        let path = dir.join(sub);
        match std::fs::read_dir(&path) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    removed += count_files(&entry.path());
                }
                std::fs::remove_dir_all(&path).map_err(|source| Error::Disk {
                    path: path.clone(),
                    source,
                })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Disk { path, source }),
        }
    }
    Ok(removed)
}

fn count_files(path: &FsPath) -> u64 {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.flatten().map(|e| count_files(&e.path())).sum(),
        Err(_) => 1,
    }
}

/// Checks every entry of the SSD tier in `dir` (magic, lengths, checksum); returns how many
/// are whole and how many are not.
pub(crate) fn verify_dir(dir: &FsPath) -> (u64, u64) {
    let (mut whole, mut broken) = (0, 0);
    for path in entry_files(dir) {
        let sound = std::fs::read(&path).ok().is_some_and(|data| {
            stored_key(&data).is_some_and(|key| decode(data.clone(), &key, None).is_some())
        });
        if sound {
            whole += 1;
        } else {
            broken += 1;
        }
    }
    (whole, broken)
}

fn entry_files(dir: &FsPath) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(shards) = std::fs::read_dir(dir.join("blocks")) {
        for shard in shards.flatten() {
            if let Ok(entries) = std::fs::read_dir(shard.path()) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    files
}

/// The key an entry says it holds.
fn stored_key(data: &[u8]) -> Option<String> {
    let key_len = u32::from_le_bytes(data.get(16..20)?.try_into().ok()?) as usize;
    let key = data.get(HEADER..HEADER.checked_add(key_len)?)?;
    String::from_utf8(key.to_vec()).ok()
}

/// Bytes and files under the SSD tier's `blocks` folder in `dir`, as found on disk.
pub(crate) fn dir_usage(dir: &FsPath) -> (u64, u64) {
    let files = entry_files(dir);
    let bytes = files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    (bytes, files.len() as u64)
}

/// An entry's weight in the budget: its file's size.
fn weight(file_len: u64) -> u32 {
    u32::try_from(file_len).unwrap_or(u32::MAX)
}

fn entry_name(key: &str) -> String {
    format!("{:032x}", XxHash3_128::oneshot(key.as_bytes()))
}

fn entry_path(blocks: &FsPath, name: &str) -> PathBuf {
    blocks.join(&name[..2]).join(name)
}

fn checksum(key: &[u8], payload: &[u8]) -> u64 {
    let mut hasher = XxHash3_64::new();
    hasher.write(key);
    hasher.write(payload);
    hasher.finish()
}

fn encode(key: &str, payload: &[u8]) -> Vec<u8> {
    let key = key.as_bytes();
    let mut out = Vec::with_capacity(HEADER + key.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&checksum(key, payload).to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(payload);
    out
}

/// The payload of an entry whose magic, key, lengths and checksum are all right.
fn decode(data: Vec<u8>, key: &str, expected_len: Option<usize>) -> Option<Bytes> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return None;
    }
    let sum = u64::from_le_bytes(data[8..16].try_into().ok()?);
    let key_len = u32::from_le_bytes(data[16..20].try_into().ok()?) as usize;
    let payload_len = usize::try_from(u64::from_le_bytes(data[20..28].try_into().ok()?)).ok()?;
    let key_end = HEADER.checked_add(key_len)?;
    if expected_len.is_some_and(|len| len != payload_len)
        || data.len() != key_end.checked_add(payload_len)?
    {
        return None;
    }
    let (stored_key, payload) = (&data[HEADER..key_end], &data[key_end..]);
    if stored_key != key.as_bytes() || checksum(stored_key, payload) != sum {
        return None;
    }
    Some(Bytes::from(data).slice(key_end..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(dir: &FsPath, bytes: u64) -> DiskTier {
        DiskTier::open(&DiskOptions {
            dir: dir.to_path_buf(),
            bytes,
        })
        .expect("open")
    }

    #[test]
    fn an_entry_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        tier(dir.path(), 1 << 20)
            .write("k", b"payload")
            .expect("write");
        match tier(dir.path(), 1 << 20).read("k", Some(7)) {
            DiskRead::Hit(bytes) => assert_eq!(&bytes[..], b"payload"),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn a_flipped_byte_is_detected_and_the_entry_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 1 << 20);
        disk.write("k", b"payload").expect("write");
        let path = entry_path(&dir.path().join("blocks"), &entry_name("k"));
        let mut data = std::fs::read(&path).expect("read");
        let last = data.len() - 1;
        data[last] ^= 0x01;
        std::fs::write(&path, data).expect("write");
        assert!(matches!(disk.read("k", Some(7)), DiskRead::Corrupt));
        assert!(!path.exists());
        assert!(matches!(disk.read("k", Some(7)), DiskRead::Miss));
    }

    #[test]
    fn a_different_key_or_length_is_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 1 << 20);
        disk.write("k", b"payload").expect("write");
        assert!(matches!(disk.read("k", Some(8)), DiskRead::Corrupt));
        disk.write("k", b"payload").expect("write");
        let data = encode("other", b"payload");
        let path = entry_path(&dir.path().join("blocks"), &entry_name("k"));
        std::fs::write(&path, data).expect("write");
        assert!(matches!(disk.read("k", Some(7)), DiskRead::Corrupt));
    }

    #[test]
    fn entries_left_by_an_earlier_process_are_indexed_and_kept_to_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let block = vec![7u8; 4096];
        let first = tier(dir.path(), 1 << 20);
        for i in 0..20 {
            first.write(&format!("k{i}"), &block).expect("write");
        }
        drop(first);
        let (_, entries) = tier(dir.path(), 1 << 20).usage();
        assert_eq!(entries, 20);
        // A smaller budget in a later process deletes the entries beyond it.
        let (bytes, _) = tier(dir.path(), 32 * 1024).usage();
        assert!(bytes <= 32 * 1024, "{bytes} bytes indexed");
        let (on_disk, _) = dir_usage(dir.path());
        assert!(on_disk <= 32 * 1024 + 8 * 4096, "{on_disk} bytes on disk");
        assert!(on_disk > 0, "every entry was deleted");
    }

    #[test]
    fn the_budget_is_kept_by_deleting_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 64 * 1024);
        let block = vec![7u8; 4096];
        for i in 0..100 {
            disk.write(&format!("k{i}"), &block).expect("write");
        }
        let (bytes, _) = disk.usage();
        assert!(bytes <= 64 * 1024, "{bytes} bytes indexed");
        let (on_disk, _) = dir_usage(dir.path());
        assert!(on_disk <= 64 * 1024 + 8 * 4096, "{on_disk} bytes on disk");
    }
}
