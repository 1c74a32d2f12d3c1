//! What a cache holds and how much: budgets, block size, revalidation, and where the
//! settings come from (the API, or the environment).

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use object_store::path::Path;

use crate::error::{Error, Result};

/// Turns the cache on or off for stores that would otherwise get it (`off`, `on`, `remote`).
pub const CACHE_VARIABLE: &str = "DALA_CACHE";
/// Byte budget of the memory tier, e.g. `512MiB`.
pub const MEMORY_VARIABLE: &str = "DALA_CACHE_MEMORY";
/// Directory of the SSD tier; unset means no SSD tier.
pub const DIR_VARIABLE: &str = "DALA_CACHE_DIR";
/// Byte budget of the SSD tier, e.g. `20GiB`.
pub const DISK_VARIABLE: &str = "DALA_CACHE_DISK";
/// Size of the blocks that ranges are cached in, e.g. `1MiB`.
pub const BLOCK_VARIABLE: &str = "DALA_CACHE_BLOCK";
/// Seconds after which a mutable object is checked again with a HEAD request.
pub const TTL_VARIABLE: &str = "DALA_CACHE_TTL";

/// Settings of a [`Cache`](crate::Cache).
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Byte budget of the memory tier (L1).
    pub memory_bytes: u64,
    /// The SSD tier (L2), if any.
    pub disk: Option<DiskOptions>,
    /// Ranges are cached as aligned blocks of this many bytes.
    pub block_size: u64,
    /// Byte budget of decoded metadata: Parquet footers, and datasets' states as of a commit.
    pub metadata_bytes: u64,
    /// How long the size and e-tag of a mutable object, or the store's answer that it does
    /// not exist, are trusted before the store is asked again. Immutable objects (see
    /// [`CacheOptions::immutable`]) are never revalidated, and their absence never cached.
    pub revalidate_after: Duration,
    /// Which objects never change once written. Their cached metadata is trusted until it
    /// is evicted; every other object is revalidated after
    /// [`revalidate_after`](CacheOptions::revalidate_after).
    pub immutable: fn(&Path) -> bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            disk: None,
            block_size: 1024 * 1024,
            metadata_bytes: 64 * 1024 * 1024,
            revalidate_after: Duration::from_secs(5),
            immutable: written_once,
        }
    }
}

/// Settings of the SSD tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskOptions {
    /// The directory that holds the entries; created when missing, shared safely by
    /// processes.
    pub dir: PathBuf,
    /// Byte budget of the tier (per process; entries beyond it are evicted).
    pub bytes: u64,
}

impl DiskOptions {
    /// An SSD tier in `dir` with the default budget (10 GiB).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

/// When the process-wide cache applies to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Never.
    Off,
    /// Only for remote stores (S3): the default.
    #[default]
    Remote,
    /// For every store, local disks included.
    On,
}

impl CacheOptions {
    /// The default options, changed by the `DALA_CACHE_*` environment variables that are set.
    pub fn from_env() -> Result<Self> {
        let mut options = Self::default();
        if let Some(bytes) = env_bytes(MEMORY_VARIABLE)? {
            options.memory_bytes = bytes;
        }
        if let Some(dir) = std::env::var_os(DIR_VARIABLE).filter(|dir| !dir.is_empty()) {
            let mut disk = DiskOptions::new(dir);
            if let Some(bytes) = env_bytes(DISK_VARIABLE)? {
                disk.bytes = bytes;
            }
            options.disk = Some(disk);
        }
        if let Some(bytes) = env_bytes(BLOCK_VARIABLE)? {
            options.block_size = bytes;
        }
        if let Some(value) = env_value(TTL_VARIABLE) {
            let seconds: f64 = value.parse().map_err(|_| Error::InvalidSetting {
                name: TTL_VARIABLE.into(),
                value: value.clone(),
                message: "expected a number of seconds".into(),
            })?;
            options.revalidate_after =
                Duration::try_from_secs_f64(seconds).map_err(|e| Error::InvalidSetting {
                    name: TTL_VARIABLE.into(),
                    value,
                    message: e.to_string(),
                })?;
        }
        options.validate()?;
        Ok(options)
    }

    /// Checks the settings: every budget and the block size must be positive.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, value: u64| {
            if value == 0 {
                Err(Error::InvalidSetting {
                    name: name.into(),
                    value: "0".into(),
                    message: "must be positive".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("block_size", self.block_size)?;
        positive("memory_bytes", self.memory_bytes)?;
        positive("metadata_bytes", self.metadata_bytes)?;
        if let Some(disk) = &self.disk {
            positive("disk.bytes", disk.bytes)?;
        }
        if self.block_size > u32::MAX as u64 / 2 {
            return Err(Error::InvalidSetting {
                name: "block_size".into(),
                value: self.block_size.to_string(),
                message: "must be under 2 GiB".into(),
            });
        }
        Ok(())
    }
}

impl CacheMode {
    /// The mode `DALA_CACHE` asks for (`off`, `remote`, `on`; unset means `remote`).
    pub fn from_env() -> Result<Self> {
        match env_value(CACHE_VARIABLE).as_deref() {
            None | Some("remote") => Ok(Self::Remote),
            Some("off" | "0" | "false" | "no") => Ok(Self::Off),
            Some("on" | "1" | "true" | "yes" | "all") => Ok(Self::On),
            Some(other) => Err(Error::InvalidSetting {
                name: CACHE_VARIABLE.into(),
                value: other.into(),
                message: "expected off, remote or on".into(),
            }),
        }
    }
}

/// dala's own write-once objects: Parquet files and checkpoints (never rewritten under the
/// same name) and numbered JSON log entries (created with a conditional put). Hints such as
/// `_last_checkpoint` and a catalog's `catalog.json` are mutable.
pub fn written_once(path: &Path) -> bool {
    let Some(name) = path.filename() else {
        return false;
    };
    if name.ends_with(".parquet") {
        return true;
    }
    let numbered = |stem: &str| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit());
    name.strip_suffix(".json")
        .or_else(|| name.strip_suffix(".checkpoint"))
        .is_some_and(numbered)
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

fn env_bytes(name: &str) -> Result<Option<u64>> {
    let Some(value) = env_value(name) else {
        return Ok(None);
    };
    parse_bytes(&value)
        .map(Some)
        .map_err(|message| Error::InvalidSetting {
            name: name.into(),
            value,
            message,
        })
}

/// Parses a byte size such as `512MiB`, `2 GB` or `1048576`.
pub fn parse_bytes(value: &str) -> std::result::Result<u64, String> {
    value
        .trim()
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("not a byte size ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_objects_are_data_files_and_log_entries() {
        assert!(written_once(&Path::from("t/year=2024/part-1.parquet")));
        assert!(written_once(&Path::from(
            "t/_dala/00000000000000000007.json"
        )));
        assert!(written_once(&Path::from(
            "t/_dala/00000000000000000100.checkpoint"
        )));
        assert!(written_once(&Path::from(
            "t/_dala/00000000000000000100.checkpoint.parquet"
        )));
        assert!(!written_once(&Path::from("t/notes.checkpoint")));
        assert!(!written_once(&Path::from("t/_dala/_last_checkpoint")));
        assert!(!written_once(&Path::from("catalog/catalog.json")));
        assert!(!written_once(&Path::from("x/.json")));
    }

    #[test]
    fn byte_sizes_parse_with_units() {
        assert_eq!(parse_bytes("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_bytes("2 GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
    }
}
