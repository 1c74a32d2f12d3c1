//! A tiered cache under object-store reads, for datasets that live on object stores.
//!
//! Every footer read and range request to S3 is a round trip. [`Cache`] makes the second
//! read of anything local:
//!
//! - **L1 memory**: a moka cache weighted by bytes, with TinyLFU admission, so one large
//!   scan does not flush the blocks that are read often (moka counts reads once the tier is
//!   half full; until then there is room for everything).
//! - **L2 SSD** (optional): a directory with a byte budget; entries are written to a
//!   temporary name and renamed, carry a checksum of each 64 KiB segment that is verified
//!   on every read, and survive restarts. A read takes only the segments it needs from an
//!   entry, and what it read is promoted to memory.
//! - **Ranges as blocks**: reads are cut into aligned blocks, so a selective scan caches
//!   only the blocks it touched.
//! - **Footers**: decoded Parquet metadata of write-once files, in its own memory budget.
//! - **Never stale**: blocks are keyed by path and e-tag; an object that changed is read
//!   afresh (`If-Match`). dala's data files and log entries are written once
//!   ([`written_once`]); other objects are revalidated with a HEAD request at most once
//!   per [`CacheOptions::revalidate_after`], and an answer that one of them does not exist
//!   is trusted for as long. That a write-once object does not exist is never cached: a
//!   dataset finds its newest commit by asking for the one after the newest it knows.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use dala_cache::{Cache, CacheOptions, DiskOptions};
//! use object_store::{ObjectStoreExt, memory::InMemory, path::Path};
//!
//! let cache = Cache::new(CacheOptions {
//!     disk: Some(DiskOptions::new("/var/cache/dala")),
//!     ..CacheOptions::default()
//! })?;
//! let store = cache.wrap(Arc::new(InMemory::new()));
//! let bytes = store.get_range(&Path::from("data/part-0.parquet"), 0..1024).await?;
//! println!("{} bytes; {:?}", bytes.len(), cache.stats().counts);
//! # Ok(()) }
//! ```
//!
//! The environment configures the process-wide cache ([`Cache::process`]): `DALA_CACHE`
//! (`off`, `remote` (the default: S3 stores only), `on`), `DALA_CACHE_MEMORY`,
//! `DALA_CACHE_DIR`, `DALA_CACHE_DISK`, `DALA_CACHE_BLOCK` and `DALA_CACHE_TTL`.

mod cache;
mod disk;
mod error;
mod options;
mod stats;
mod store;

pub use cache::{Cache, clear_disk, disk_stats, verify_disk};
pub use error::{Error, Result};
pub use options::{
    BLOCK_VARIABLE, CACHE_VARIABLE, CacheMode, CacheOptions, DIR_VARIABLE, DISK_VARIABLE,
    DiskOptions, MEMORY_VARIABLE, TTL_VARIABLE, parse_bytes, written_once,
};
pub use stats::{CacheStats, Counts};
pub use store::CachedStore;
