//! Hits, misses and bytes per tier, counted as reads happen, and summed across processes in
//! the SSD tier's `stats.json`.

use std::path::Path as FsPath;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The counters a cache keeps while it runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub memory_hits: AtomicU64,
    pub memory_bytes: AtomicU64,
    pub disk_hits: AtomicU64,
    pub disk_bytes: AtomicU64,
    pub disk_corrupt: AtomicU64,
    pub misses: AtomicU64,
    pub store_requests: AtomicU64,
    pub store_bytes: AtomicU64,
    pub revalidations: AtomicU64,
    pub metadata_hits: AtomicU64,
    pub metadata_misses: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Counts {
        self.read(|c| c.load(Ordering::Relaxed))
    }

    /// Takes the counts and sets every counter back to zero.
    pub fn take(&self) -> Counts {
        self.read(|c| c.swap(0, Ordering::Relaxed))
    }

    fn read(&self, get: impl Fn(&AtomicU64) -> u64) -> Counts {
        Counts {
            memory_hits: get(&self.memory_hits),
            memory_hit_bytes: get(&self.memory_bytes),
            disk_hits: get(&self.disk_hits),
            disk_hit_bytes: get(&self.disk_bytes),
            disk_corrupt: get(&self.disk_corrupt),
            misses: get(&self.misses),
            store_requests: get(&self.store_requests),
            store_bytes: get(&self.store_bytes),
            revalidations: get(&self.revalidations),
            metadata_hits: get(&self.metadata_hits),
            metadata_misses: get(&self.metadata_misses),
        }
    }
}

/// Counts of cache events. Blocks are the unit of hits and misses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Blocks served from memory.
    pub memory_hits: u64,
    /// Bytes served from memory (the parts of blocks that reads asked for).
    pub memory_hit_bytes: u64,
    /// Blocks served from the SSD tier, whole or in part (and promoted to memory).
    pub disk_hits: u64,
    /// Bytes read from the SSD tier: the 64 KiB segments around the parts of blocks that
    /// reads asked for.
    pub disk_hit_bytes: u64,
    /// SSD entries that failed their checksum and were fetched again.
    pub disk_corrupt: u64,
    /// Blocks no tier had.
    pub misses: u64,
    /// Requests sent to the object store for data (ranges and whole objects).
    pub store_requests: u64,
    /// Bytes fetched from the object store.
    pub store_bytes: u64,
    /// HEAD requests that checked a mutable object's size and e-tag.
    pub revalidations: u64,
    /// Parquet footers served decoded from memory.
    pub metadata_hits: u64,
    /// Parquet footers that were read and decoded.
    pub metadata_misses: u64,
}

impl Counts {
    /// The share of block reads that a tier served, from 0 to 1 (0 when nothing was read).
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.memory_hits + self.disk_hits;
        let total = hits + self.misses;
        if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.memory_hits += other.memory_hits;
        self.memory_hit_bytes += other.memory_hit_bytes;
        self.disk_hits += other.disk_hits;
        self.disk_hit_bytes += other.disk_hit_bytes;
        self.disk_corrupt += other.disk_corrupt;
        self.misses += other.misses;
        self.store_requests += other.store_requests;
        self.store_bytes += other.store_bytes;
        self.revalidations += other.revalidations;
        self.metadata_hits += other.metadata_hits;
        self.metadata_misses += other.metadata_misses;
    }
}

/// A cache's counts and what its tiers hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Event counts.
    pub counts: Counts,
    /// Bytes held by the memory tier.
    pub memory_bytes: u64,
    /// Blocks held by the memory tier.
    pub memory_entries: u64,
    /// The memory tier's budget.
    pub memory_budget: u64,
    /// Bytes held by the SSD tier.
    pub disk_bytes: u64,
    /// Entries held by the SSD tier.
    pub disk_entries: u64,
    /// The SSD tier's budget (0 without one).
    pub disk_budget: u64,
    /// Decoded footers held in memory.
    pub metadata_entries: u64,
}

const STATS_FILE: &str = "stats.json";

/// Adds `counts` to the totals in `<dir>/stats.json` (written to a temporary name and
/// renamed). Two processes adding at the same instant may lose one's counts: these are
/// statistics, not data.
pub(crate) fn add_to_file(dir: &FsPath, counts: &Counts) -> Result<Counts> {
    let mut total = read_file(dir)?;
    total.merge(counts);
    let path = dir.join(STATS_FILE);
    let temp = dir
        .join("tmp")
        .join(format!("stats-{}", uuid::Uuid::new_v4()));
    let error = |message: String| Error::Stats {
        path: path.clone(),
        message,
    };
    let json = serde_json::to_vec_pretty(&total).map_err(|e| error(e.to_string()))?;
    std::fs::write(&temp, json)
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            error(e.to_string())
        })?;
    Ok(total)
}

/// The totals in `<dir>/stats.json` (zero when there is none).
pub(crate) fn read_file(dir: &FsPath) -> Result<Counts> {
    let path = dir.join(STATS_FILE);
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| Error::Stats {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Counts::default()),
        Err(e) => Err(Error::Stats {
            path,
            message: e.to_string(),
        }),
    }
}

/// Removes `<dir>/stats.json`.
pub(crate) fn remove_file(dir: &FsPath) -> Result<()> {
    let path = dir.join(STATS_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Disk { path, source }),
    }
}
