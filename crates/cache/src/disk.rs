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
//! entry carries its key, an xxh3 checksum of each 64 KiB segment of its payload, and one of
//! its header (lengths, key and segment checksums):
//!
//! ```text
//! magic "DALACB02" | header checksum u64 | key length u32 | payload length u64
//! | key | segment checksums (u64 each) | payload
//! ```
//!
//! A read of part of a block reads and checks only the header and the segments it needs,
//! so a selective scan does not read (or hash) the rest of each 1 MiB block. An entry that
//! fails a check is deleted and counted as corrupt, and the block is fetched again; an
//! entry of the format before this one is deleted as a miss. Each
//! process keeps its own index of the entries (a moka cache weighted by bytes), which evicts
//! entries beyond the budget by deleting their files. The entries earlier processes left are
//! added to it by a thread of its own when the process starts, so that a start does not wait
//! for a walk over every entry (a full 10 GiB tier holds over 10 000); meanwhile reads are
//! served as usual, and each entry read or written is indexed as it is. An entry another
//! process deleted is simply a miss.

use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use moka::notification::RemovalCause;
use twox_hash::{XxHash3_64, XxHash3_128};

use crate::error::{Error, Result};
use crate::options::DiskOptions;

const MAGIC: &[u8; 8] = b"DALACB02";
/// The magic of the entries written before segment checksums; read as misses.
const FORMER_MAGIC: &[u8; 8] = b"DALACB01";
/// Magic, header checksum, key length, payload length.
const HEADER: usize = 8 + 8 + 4 + 8;
/// The payload is checked in segments of this many bytes, so that part of it can be read
/// alone.
pub(crate) const SEGMENT: usize = 64 * 1024;
/// Temporary files older than this are left over from a crash and are removed.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// What reading an entry found.
#[derive(Debug)]
pub(crate) enum DiskRead<T = Bytes> {
    /// The entry's payload (or the parts of it asked for), checked.
    Hit(T),
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
    /// checksums.
    pub fn read(&self, key: &str, expected_len: Option<usize>) -> DiskRead {
        let name = entry_name(key);
        let path = entry_path(&self.dir.join("blocks"), &name);
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) => return self.unreadable(&name, &path, &e),
        };
        let file_len = data.len() as u64;
        let found = decode(data, key, expected_len);
        self.checked(name, &path, file_len, found)
    }

    /// Reads bytes `parts` of the `len`-byte payload stored under `key`: the header, and the
    /// segments around the parts (one read per run of adjacent segments), each checked. The
    /// hit holds the runs read, each with its offset in the payload.
    pub fn read_parts(
        &self,
        key: &str,
        len: usize,
        parts: &[Range<usize>],
    ) -> DiskRead<Vec<(usize, Bytes)>> {
        let name = entry_name(key);
        let path = entry_path(&self.dir.join("blocks"), &name);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) => return self.unreadable(&name, &path, &e),
        };
        let found = read_segments(&file, key, len, parts);
        let file_len = payload_start(key, len) + len;
        self.checked(name, &path, file_len as u64, found)
    }

    fn unreadable<T>(&self, name: &str, path: &FsPath, e: &std::io::Error) -> DiskRead<T> {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cache entry unreadable");
        }
        self.index.invalidate(name);
        DiskRead::Miss
    }

    /// Indexes a sound entry; deletes one that is not.
    fn checked<T>(
        &self,
        name: String,
        path: &FsPath,
        file_len: u64,
        found: Found<T>,
    ) -> DiskRead<T> {
        match found {
            Found::Sound(payload) => {
                // Touch the index so that eviction follows this process's use.
                if self.index.get(&name).is_none() {
                    self.index.insert(name, weight(file_len));
                }
                DiskRead::Hit(payload)
            }
            Found::Former => {
                self.index.invalidate(&name);
                let _ = std::fs::remove_file(path);
                DiskRead::Miss
            }
            Found::Broken => {
                tracing::warn!(path = %path.display(), "corrupt cache entry removed");
                self.index.invalidate(&name);
                let _ = std::fs::remove_file(path);
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
            stored_key(&data)
                .is_some_and(|key| matches!(decode(data.clone(), &key, None), Found::Sound(_)))
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

/// What an entry's bytes turned out to be.
enum Found<T = Bytes> {
    /// The payload (or the segments asked for), every check passed.
    Sound(T),
    /// An entry of the format before this one.
    Former,
    /// Not a whole, sound entry for the key.
    Broken,
}

fn segment_count(payload_len: usize) -> usize {
    payload_len.div_ceil(SEGMENT)
}

/// Where the payload of an entry for `key` with `payload_len` bytes starts.
fn payload_start(key: &str, payload_len: usize) -> usize {
    HEADER + key.len() + segment_count(payload_len) * 8
}

/// The checksum of segment `index` of a payload (seeded with its index, so that segments
/// cannot trade places).
fn segment_sum(index: usize, segment: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(index as u64, segment)
}

fn encode(key: &str, payload: &[u8]) -> Vec<u8> {
    let key = key.as_bytes();
    let sums_len = segment_count(payload.len()) * 8;
    let mut out = Vec::with_capacity(HEADER + key.len() + sums_len + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    for (index, segment) in payload.chunks(SEGMENT).enumerate() {
        out.extend_from_slice(&segment_sum(index, segment).to_le_bytes());
    }
    let header_sum = XxHash3_64::oneshot(&out[16..]);
    out[8..16].copy_from_slice(&header_sum.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The segment checksums of an entry whose header (`head`: everything before the payload)
/// is sound for `key` and, when expected, a payload of `expected_len` bytes; with the
/// payload's length.
fn check_header<T>(
    head: &[u8],
    key: &str,
    expected_len: Option<usize>,
) -> Result<(usize, Vec<u64>), Found<T>> {
    if head.len() < HEADER {
        return Err(Found::Broken);
    }
    if &head[..8] == FORMER_MAGIC {
        return Err(Found::Former);
    }
    let field = |range: Range<usize>| head.get(range).ok_or(Found::Broken);
    let u64_at = |at: usize| -> Result<u64, Found<T>> {
        Ok(u64::from_le_bytes(
            field(at..at + 8)?.try_into().map_err(|_| Found::Broken)?,
        ))
    };
    let key_len = u32::from_le_bytes(field(16..20)?.try_into().map_err(|_| Found::Broken)?);
    let payload_len = usize::try_from(u64_at(20)?).map_err(|_| Found::Broken)?;
    if &head[..8] != MAGIC
        || key_len as usize != key.len()
        || expected_len.is_some_and(|len| len != payload_len)
    {
        return Err(Found::Broken);
    }
    let key_end = HEADER + key.len();
    let sums_end = key_end
        .checked_add(
            segment_count(payload_len)
                .checked_mul(8)
                .ok_or(Found::Broken)?,
        )
        .ok_or(Found::Broken)?;
    if field(HEADER..key_end)? != key.as_bytes()
        || XxHash3_64::oneshot(field(16..sums_end)?) != u64_at(8)?
    {
        return Err(Found::Broken);
    }
    let sums = head[key_end..sums_end]
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect();
    Ok((payload_len, sums))
}

/// Whether `data`, segments `first..` of a payload, matches their checksums.
fn segments_sound(data: &[u8], first: usize, sums: &[u64]) -> bool {
    data.chunks(SEGMENT)
        .enumerate()
        .all(|(n, segment)| sums.get(first + n) == Some(&segment_sum(first + n, segment)))
}

/// The payload of an entry whose header, key, lengths and checksums are all right.
fn decode(data: Vec<u8>, key: &str, expected_len: Option<usize>) -> Found {
    let (payload_len, sums) = match check_header(&data, key, expected_len) {
        Ok(header) => header,
        Err(found) => return found,
    };
    let start = payload_start(key, payload_len);
    if data.len() != start + payload_len || !segments_sound(&data[start..], 0, &sums) {
        return Found::Broken;
    }
    Found::Sound(Bytes::from(data).slice(start..))
}

/// The segments around bytes `parts` of the `len`-byte payload of the entry in `file`,
/// checked, read without the rest of the payload: one read per run of adjacent segments,
/// each with its offset in the payload.
fn read_segments(
    file: &std::fs::File,
    key: &str,
    len: usize,
    parts: &[Range<usize>],
) -> Found<Vec<(usize, Bytes)>> {
    if parts.iter().any(|part| part.is_empty() || part.end > len) {
        return Found::Broken;
    }
    let start = payload_start(key, len);
    let mut head = vec![0; start];
    if file.read_exact_at(&mut head, 0).is_err() {
        return Found::Broken;
    }
    let sums = match check_header(&head, key, Some(len)) {
        Ok((_, sums)) => sums,
        Err(found) => return found,
    };
    if file
        .metadata()
        .map_or(true, |m| m.len() != (start + len) as u64)
    {
        return Found::Broken;
    }
    let mut wanted: Vec<Range<usize>> = parts
        .iter()
        .map(|part| part.start / SEGMENT..part.end.div_ceil(SEGMENT))
        .collect();
    wanted.sort_unstable_by_key(|segments| segments.start);
    let mut runs: Vec<Range<usize>> = Vec::with_capacity(wanted.len());
    for segments in wanted {
        match runs.last_mut() {
            Some(run) if segments.start <= run.end => run.end = run.end.max(segments.end),
            _ => runs.push(segments),
        }
    }
    let mut read = Vec::with_capacity(runs.len());
    for run in runs {
        let from = run.start * SEGMENT;
        let to = (run.end * SEGMENT).min(len);
        let mut data = vec![0; to - from];
        if file
            .read_exact_at(&mut data, (start + from) as u64)
            .is_err()
            || !segments_sound(&data, run.start, &sums)
        {
            return Found::Broken;
        }
        read.push((from, Bytes::from(data)));
    }
    Found::Sound(read)
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

    /// Rewrites the file of the entry stored under `key` with `change` applied; its path.
    fn rewrite_entry(dir: &FsPath, key: &str, change: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
        let path = entry_path(&dir.join("blocks"), &entry_name(key));
        let mut data = std::fs::read(&path).expect("read");
        change(&mut data);
        std::fs::write(&path, data).expect("write");
        path
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
        let path = rewrite_entry(dir.path(), "k", |data| {
            let last = data.len() - 1;
            data[last] ^= 0x01;
        });
        assert!(matches!(disk.read("k", Some(7)), DiskRead::Corrupt));
        assert!(!path.exists());
        assert!(matches!(disk.read("k", Some(7)), DiskRead::Miss));
    }

    #[test]
    fn parts_are_read_in_runs_of_adjacent_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 1 << 20);
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        disk.write("k", &payload).expect("write");
        let parts = [250_000..250_001, 0..10, 70_000..70_010];
        let DiskRead::Hit(runs) = disk.read_parts("k", payload.len(), &parts) else {
            panic!("expected a hit");
        };
        // Segments 0 and 1 in one read, segment 3 in another; segments 2 and 4 are not read.
        let shape: Vec<(usize, usize)> = runs.iter().map(|(at, run)| (*at, run.len())).collect();
        assert_eq!(shape, [(0, 2 * SEGMENT), (3 * SEGMENT, SEGMENT)]);
        for (at, run) in &runs {
            assert_eq!(&run[..], &payload[*at..at + run.len()]);
        }
    }

    #[test]
    fn a_damaged_header_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 1 << 20);
        let payload = vec![3u8; 100_000];
        disk.write("k", &payload).expect("write");
        // The second segment's checksum, just after the key.
        let path = rewrite_entry(dir.path(), "k", |data| data[HEADER + 1 + 8] ^= 0x01);
        assert!(matches!(
            disk.read_parts("k", payload.len(), std::slice::from_ref(&(0..10))),
            DiskRead::Corrupt
        ));
        assert!(!path.exists());
    }

    #[test]
    fn an_entry_of_the_former_format_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 1 << 20);
        disk.write("k", b"payload").expect("write");
        let path = rewrite_entry(dir.path(), "k", |data| {
            data[..8].copy_from_slice(FORMER_MAGIC)
        });
        assert!(matches!(disk.read("k", Some(7)), DiskRead::Miss));
        assert!(!path.exists());
    }

    #[test]
    fn a_different_key_or_length_is_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = tier(dir.path(), 1 << 20);
        disk.write("k", b"payload").expect("write");
        assert!(matches!(disk.read("k", Some(8)), DiskRead::Corrupt));
        disk.write("k", b"payload").expect("write");
        rewrite_entry(dir.path(), "k", |data| *data = encode("other", b"payload"));
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
