//! The cache under a store: what is served from where, and that nothing stale or partial is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dala_cache::{Cache, CacheOptions, DiskOptions};
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// A store that counts the data requests it is sent and can fail them half-way.
#[derive(Debug)]
struct Probe {
    inner: Arc<dyn ObjectStore>,
    gets: AtomicU64,
    heads: AtomicU64,
    fail_mid_read: AtomicBool,
}

impl Probe {
    fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            gets: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            fail_mid_read: AtomicBool::new(false),
        })
    }

    fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Probe({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Probe {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            self.heads.fetch_add(1, Ordering::SeqCst);
            return self.inner.get_opts(location, options).await;
        }
        self.gets.fetch_add(1, Ordering::SeqCst);
        let mut result = self.inner.get_opts(location, options).await?;
        if self.fail_mid_read.load(Ordering::SeqCst) {
            let (meta, range, attributes) = (
                result.meta.clone(),
                result.range.clone(),
                result.attributes.clone(),
            );
            let data = result.bytes().await?;
            let half = data.slice(..data.len() / 2);
            let stream = futures::stream::iter(vec![
                Ok(half),
                Err(object_store::Error::Generic {
                    store: "probe",
                    source: "connection reset".into(),
                }),
            ]);
            result = GetResult {
                payload: GetResultPayload::Stream(stream.boxed()),
                meta,
                range,
                attributes,
            };
        }
        Ok(result)
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

const BLOCK: u64 = 4096;

fn options(disk: Option<&std::path::Path>) -> CacheOptions {
    CacheOptions {
        block_size: BLOCK,
        memory_bytes: 1 << 20,
        disk: disk.map(|dir| DiskOptions {
            dir: dir.to_path_buf(),
            bytes: 1 << 20,
        }),
        ..CacheOptions::default()
    }
}

/// A local store in a temporary folder with one object of `len` known bytes.
async fn store_with(len: usize, name: &str) -> (tempfile::TempDir, Arc<Probe>, Path, Bytes) {
    let dir = tempfile::tempdir().expect("tempdir");
    let local: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local"));
    let data = Bytes::from((0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>());
    let path = Path::from(name);
    local.put(&path, data.clone().into()).await.expect("put");
    (dir, Probe::new(local), path, data)
}

async fn whole(store: &Arc<dyn ObjectStore>, path: &Path) -> Bytes {
    store
        .get(path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes")
}

async fn range(store: &Arc<dyn ObjectStore>, path: &Path, r: Range<u64>) -> Bytes {
    store.get_range(path, r).await.expect("get_range")
}

#[tokio::test]
async fn a_second_read_is_served_from_memory() {
    let (_dir, probe, path, data) = store_with(20_000, "t/part-0.parquet").await;
    let cache = Cache::new(options(None)).expect("cache");
    let store = cache.wrap(probe.clone());

    let first = range(&store, &path, 5000..13_000).await;
    assert_eq!(first, data.slice(5000..13_000));
    assert_eq!(probe.gets(), 1);
    // Inside the blocks already read: no request.
    assert_eq!(
        range(&store, &path, 4096..12_288).await,
        data.slice(4096..12_288)
    );
    assert_eq!(
        range(&store, &path, 6000..6001).await,
        data.slice(6000..6001)
    );
    assert_eq!(probe.gets(), 1);
    // Partly outside: only the missing block is fetched.
    assert_eq!(
        range(&store, &path, 10_000..17_000).await,
        data.slice(10_000..17_000)
    );
    assert_eq!(probe.gets(), 2);
    // The whole object, a suffix and the tail block.
    assert_eq!(whole(&store, &path).await, data);
    assert_eq!(
        store.get_range(&path, 19_000..25_000).await.expect("tail"),
        data.slice(19_000..)
    );
    let stats = cache.stats();
    assert!(stats.counts.memory_hits >= 4, "{stats:?}");
    // Each byte was fetched once: the first read's blocks, then block 4, then block 0.
    assert_eq!(
        stats.counts.store_bytes,
        probe_bytes(&[4096..16_384, 16_384..20_000, 0..4096])
    );
    assert_eq!(probe.gets(), 3);
}

fn probe_bytes(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

#[tokio::test]
async fn the_ssd_tier_serves_a_new_process_without_the_store() {
    let (_dir, probe, path, data) = store_with(50_000, "t/part-0.parquet").await;
    let ssd = tempfile::tempdir().expect("ssd");
    {
        let cache = Cache::new(options(Some(ssd.path()))).expect("cache");
        let store = cache.wrap(probe.clone());
        assert_eq!(
            range(&store, &path, 1000..30_000).await,
            data.slice(1000..30_000)
        );
    }
    let before = (probe.gets(), probe.heads.load(Ordering::SeqCst));
    // A new cache on the same directory: a process after a restart.
    let cache = Cache::new(options(Some(ssd.path()))).expect("cache");
    let store = cache.wrap(probe.clone());
    assert_eq!(
        range(&store, &path, 2000..28_000).await,
        data.slice(2000..28_000)
    );
    assert_eq!((probe.gets(), probe.heads.load(Ordering::SeqCst)), before);
    let counts = cache.stats().counts;
    assert_eq!(counts.disk_hits, 7, "{counts:?}");
    // Promoted: the next read is from memory.
    range(&store, &path, 2000..28_000).await;
    assert_eq!(cache.stats().counts.memory_hits, 7);
}

/// XORs the last byte of every SSD entry file in `ssd` longer than `len` bytes with `mask`;
/// how many it changed.
fn flip_last_byte_of_entries_over(ssd: &std::path::Path, len: usize, mask: u8) -> usize {
    let mut flipped = 0;
    for shard in std::fs::read_dir(ssd.join("blocks")).expect("blocks") {
        for entry in std::fs::read_dir(shard.expect("shard").path()).expect("shard") {
            let path = entry.expect("entry").path();
            let mut bytes = std::fs::read(&path).expect("read");
            if bytes.len() > len {
                let last = bytes.len() - 1;
                bytes[last] ^= mask;
                std::fs::write(&path, bytes).expect("write");
                flipped += 1;
            }
        }
    }
    flipped
}

#[tokio::test]
async fn a_corrupt_ssd_entry_is_refetched() {
    let (_dir, probe, path, data) = store_with(10_000, "t/part-0.parquet").await;
    let ssd = tempfile::tempdir().expect("ssd");
    {
        let cache = Cache::new(options(Some(ssd.path()))).expect("cache");
        range(&cache.wrap(probe.clone()), &path, 0..10_000).await;
    }
    // Flip one byte at the end of every block entry (the payload's last byte).
    assert_eq!(flip_last_byte_of_entries_over(ssd.path(), 4096, 0xff), 2);
    let gets = probe.gets();
    let cache = Cache::new(options(Some(ssd.path()))).expect("cache");
    let store = cache.wrap(probe.clone());
    assert_eq!(range(&store, &path, 0..10_000).await, data);
    let counts = cache.stats().counts;
    assert_eq!(counts.disk_corrupt, 2, "{counts:?}");
    assert_eq!(probe.gets(), gets + 1);
    // The refetched blocks replaced the corrupt entries.
    let cache = Cache::new(options(Some(ssd.path()))).expect("cache");
    assert_eq!(
        range(&cache.wrap(probe.clone()), &path, 0..10_000).await,
        data
    );
    assert_eq!(cache.stats().counts.disk_corrupt, 0);
    assert_eq!(probe.gets(), gets + 1);
}

/// Blocks of four of the SSD tier's 64 KiB segments.
const LARGE_BLOCK: u64 = 256 * 1024;
const SEGMENT: u64 = 64 * 1024;

fn large_block_options(disk: &std::path::Path) -> CacheOptions {
    CacheOptions {
        block_size: LARGE_BLOCK,
        memory_bytes: 16 << 20,
        disk: Some(DiskOptions {
            dir: disk.to_path_buf(),
            bytes: 16 << 20,
        }),
        ..CacheOptions::default()
    }
}

/// An object of `len` bytes read whole through a cache with [`LARGE_BLOCK`] blocks on a new
/// SSD directory, as by an earlier process: the store's probe, the object's path and bytes,
/// and the directories (kept alive by the caller).
async fn kept_on_an_ssd_tier(
    len: usize,
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    Arc<Probe>,
    Path,
    Bytes,
) {
    let (dir, probe, path, data) = store_with(len, "t/part-0.parquet").await;
    let ssd = tempfile::tempdir().expect("ssd");
    let cache = Cache::new(large_block_options(ssd.path())).expect("cache");
    assert_eq!(whole(&cache.wrap(probe.clone()), &path).await, data);
    (dir, ssd, probe, path, data)
}

#[tokio::test]
async fn a_new_process_reads_only_the_segments_it_needs_from_the_ssd_tier() {
    let (_dir, ssd, probe, path, data) = kept_on_an_ssd_tier(600_000).await;
    let gets = probe.gets();
    let cache = Cache::new(large_block_options(ssd.path())).expect("cache");
    let store = cache.wrap(probe.clone());
    // Two column chunks in block 0 (segments 1 and 2) and one in block 2 (its segment 0),
    // asked for together as the Parquet reader does.
    let ranges = [70_000..71_000, 140_000..150_000, 530_000..540_000];
    let slices = |ranges: &[Range<u64>]| -> Vec<Bytes> {
        ranges
            .iter()
            .map(|r| data.slice(r.start as usize..r.end as usize))
            .collect()
    };
    let got = store.get_ranges(&path, &ranges).await.expect("get_ranges");
    assert_eq!(got, slices(&ranges));
    assert_eq!(probe.gets(), gets);
    let counts = cache.stats().counts;
    assert_eq!(counts.disk_hits, 2, "{counts:?}");
    assert_eq!(counts.disk_hit_bytes, 3 * SEGMENT, "{counts:?}");
    // What was read is promoted: the same ranges again come from memory.
    let got = store.get_ranges(&path, &ranges).await.expect("get_ranges");
    assert_eq!(got, slices(&ranges));
    let counts = cache.stats().counts;
    assert_eq!((counts.memory_hits, counts.disk_hits), (3, 2), "{counts:?}");
    // A segment not read yet is read from the SSD tier; still no request to the store.
    assert_eq!(
        range(&store, &path, 200_000..201_000).await,
        data.slice(200_000..201_000)
    );
    let counts = cache.stats().counts;
    assert_eq!(
        (counts.disk_hits, counts.disk_hit_bytes),
        (3, 4 * SEGMENT),
        "{counts:?}"
    );
    assert_eq!(probe.gets(), gets);
}

/// Reads of at most 256 KiB from the SSD tier run on the calling thread; larger ones on
/// tokio's blocking pool. Both serve a new process without the store.
#[tokio::test]
async fn a_large_read_from_the_ssd_tier_is_served_without_the_store() {
    let (_dir, ssd, probe, path, data) = kept_on_an_ssd_tier(600_000).await;
    let gets = probe.gets();
    let cache = Cache::new(large_block_options(ssd.path())).expect("cache");
    let store = cache.wrap(probe.clone());
    assert_eq!(
        range(&store, &path, 1000..590_000).await,
        data.slice(1000..590_000)
    );
    assert_eq!(probe.gets(), gets);
    let counts = cache.stats().counts;
    assert_eq!(counts.disk_hits, 3, "{counts:?}");
    assert_eq!(
        range(&store, &path, 1000..590_000).await,
        data.slice(1000..590_000)
    );
    assert_eq!(cache.stats().counts.memory_hits, 3);
}

#[tokio::test]
async fn a_corrupt_segment_is_found_when_it_is_read() {
    let (_dir, ssd, probe, path, data) = kept_on_an_ssd_tier(300_000).await;
    // Block 0's entry is the one file over 256 KiB; flip its last byte (in segment 3).
    assert_eq!(
        flip_last_byte_of_entries_over(ssd.path(), LARGE_BLOCK as usize, 0x55),
        1
    );
    let gets = probe.gets();
    let cache = Cache::new(large_block_options(ssd.path())).expect("cache");
    let store = cache.wrap(probe.clone());
    // Segment 0 is sound and served.
    assert_eq!(
        range(&store, &path, 1000..2000).await,
        data.slice(1000..2000)
    );
    assert_eq!(cache.stats().counts.disk_corrupt, 0);
    assert_eq!(probe.gets(), gets);
    // Segment 3 fails its checksum: the block is fetched again and the answer is right.
    assert_eq!(
        range(&store, &path, 250_000..251_000).await,
        data.slice(250_000..251_000)
    );
    assert_eq!(cache.stats().counts.disk_corrupt, 1);
    assert_eq!(probe.gets(), gets + 1);
}

#[tokio::test]
async fn a_read_that_fails_half_way_leaves_nothing_cached() {
    let (_dir, probe, path, data) = store_with(30_000, "t/part-0.parquet").await;
    let ssd = tempfile::tempdir().expect("ssd");
    let cache = Cache::new(options(Some(ssd.path()))).expect("cache");
    let store = cache.wrap(probe.clone());
    probe.fail_mid_read.store(true, Ordering::SeqCst);
    let error = store
        .get_range(&path, 0..30_000)
        .await
        .expect_err("must fail");
    assert!(error.to_string().contains("connection reset"), "{error}");
    let stats = cache.stats();
    assert_eq!(
        (stats.memory_entries, stats.disk_entries),
        (0, 0),
        "{stats:?}"
    );
    probe.fail_mid_read.store(false, Ordering::SeqCst);
    assert_eq!(range(&store, &path, 0..30_000).await, data);
}

#[tokio::test]
async fn a_rewritten_mutable_object_is_read_afresh() {
    let (_dir, probe, path, _) = store_with(100, "t/_dala/_last_checkpoint").await;
    let cache = Cache::new(CacheOptions {
        revalidate_after: Duration::ZERO,
        ..options(None)
    })
    .expect("cache");
    let store = cache.wrap(probe.clone());
    let first = whole(&store, &path).await;
    assert_eq!(first.len(), 100);
    // Another writer replaces it behind this cache's back.
    probe
        .inner
        .put(&path, Bytes::from_static(b"42").into())
        .await
        .expect("put");
    let second = whole(&store, &path).await;
    assert_eq!(&second[..], b"42");
}

#[tokio::test]
async fn a_write_through_the_cache_is_seen_at_once() {
    let (_dir, probe, path, _) = store_with(100, "catalog/catalog.json").await;
    let cache = Cache::new(options(None)).expect("cache");
    let store = cache.wrap(probe.clone());
    whole(&store, &path).await;
    store
        .put(&path, Bytes::from_static(b"{}").into())
        .await
        .expect("put");
    let again = whole(&store, &path).await;
    assert_eq!(&again[..], b"{}");
    store.delete(&path).await.expect("delete");
    assert!(matches!(
        store.get(&path).await,
        Err(object_store::Error::NotFound { .. })
    ));
}

/// That a mutable object does not exist is trusted like its metadata would be, for the
/// revalidation interval, and forgotten when this process writes it; that a write-once
/// object (a commit) does not exist is asked of the store every time, since another writer
/// may create it at any moment.
#[tokio::test]
async fn absent_objects_are_remembered_only_when_they_may_change() {
    let (_dir, probe, _, _) = store_with(10, "t/other").await;
    let cache = Cache::new(options(None)).expect("cache");
    let store = cache.wrap(probe.clone());
    let not_found = |r: Result<GetResult>| matches!(r, Err(object_store::Error::NotFound { .. }));

    let hint = Path::from("t/_dala/_last_checkpoint");
    assert!(not_found(store.get(&hint).await));
    assert!(not_found(store.get(&hint).await));
    assert!(not_found(
        store
            .get_opts(&hint, GetOptions::new().with_head(true))
            .await
    ));
    assert_eq!(probe.gets(), 1, "the answer was not remembered");
    assert_eq!(probe.heads.load(Ordering::SeqCst), 0);
    store
        .put(&hint, Bytes::from_static(b"{}").into())
        .await
        .expect("put");
    assert_eq!(&whole(&store, &hint).await[..], b"{}");

    let commit = Path::from("t/_dala/00000000000000000001.json");
    assert!(not_found(store.get(&commit).await));
    assert!(matches!(
        store.head(&commit).await,
        Err(object_store::Error::NotFound { .. })
    ));
    assert_eq!(
        probe.heads.load(Ordering::SeqCst),
        1,
        "a commit's absence was remembered"
    );
    // Another writer commits behind this cache's back: the next read sees it.
    probe
        .inner
        .put(&commit, Bytes::from_static(b"[]").into())
        .await
        .expect("put");
    assert_eq!(&whole(&store, &commit).await[..], b"[]");
    assert!(cache.knows(&Arc::from(store.to_string()), &commit));
    assert!(
        !cache.knows(&Arc::from(store.to_string()), &hint),
        "not write-once"
    );
}

/// A caller's note that a commit was missing is its own: reads through the cache still ask
/// the store, a write through the cache forgets the note, and the note lasts the
/// revalidation interval. Values decoded from a write-once object stay until it is written.
#[tokio::test]
async fn notes_and_decoded_values_follow_their_objects() {
    let (_dir, probe, _, _) = store_with(10, "t/other").await;
    let cache = Cache::new(options(None)).expect("cache");
    let store = cache.wrap(probe.clone());
    let name: Arc<str> = Arc::from(store.to_string());
    let commit = Path::from("t/_dala/00000000000000000001.json");

    cache.note_missing(&name, &commit);
    assert!(cache.recently_missing(&name, &commit));
    probe
        .inner
        .put(&commit, Bytes::from_static(b"[]").into())
        .await
        .expect("put");
    assert_eq!(
        &whole(&store, &commit).await[..],
        b"[]",
        "a read used the note"
    );
    store
        .put(&commit, Bytes::from_static(b"[1]").into())
        .await
        .expect("put");
    assert!(
        !cache.recently_missing(&name, &commit),
        "a write kept the note"
    );
    let no_interval = Cache::new(CacheOptions {
        revalidate_after: std::time::Duration::ZERO,
        ..options(None)
    })
    .expect("cache");
    no_interval.note_missing(&name, &commit);
    assert!(!no_interval.recently_missing(&name, &commit));

    cache.keep_decoded(&name, &commit, Arc::new(7_u64), 8);
    assert_eq!(cache.decoded::<u64>(&name, &commit).as_deref(), Some(&7));
    assert!(
        cache.decoded::<String>(&name, &commit).is_none(),
        "another type"
    );
    let hint = Path::from("t/_dala/_last_checkpoint");
    cache.keep_decoded(&name, &hint, Arc::new(1_u64), 8);
    assert!(
        cache.decoded::<u64>(&name, &hint).is_none(),
        "kept for a mutable object"
    );
    store
        .put(&commit, Bytes::from_static(b"[2]").into())
        .await
        .expect("put");
    assert!(
        cache.decoded::<u64>(&name, &commit).is_none(),
        "a write kept it"
    );
}

/// A note that an object does not exist reaches the processes after this one through the
/// SSD tier, for what is left of the revalidation interval; a write through any cache on
/// the directory removes it.
#[tokio::test]
async fn absence_notes_reach_the_next_process_through_the_ssd_tier() {
    let (_dir, probe, _, _) = store_with(10, "t/other").await;
    let ssd = tempfile::tempdir().expect("ssd");
    let not_found = |r: Result<GetResult>| matches!(r, Err(object_store::Error::NotFound { .. }));
    let hint = Path::from("t/_dala/_last_checkpoint");
    let commit = Path::from("t/_dala/00000000000000000001.json");
    let first = Cache::new(options(Some(ssd.path()))).expect("cache");
    let first_store = first.wrap(probe.clone());
    let name: Arc<str> = Arc::from(first_store.to_string());
    assert!(not_found(first_store.get(&hint).await));
    first.note_missing(&name, &commit);
    assert_eq!(probe.gets(), 1);

    // A new process on the directory trusts both notes without asking.
    let second = Cache::new(options(Some(ssd.path()))).expect("cache");
    let second_store = second.wrap(probe.clone());
    assert!(not_found(second_store.get(&hint).await));
    assert_eq!(probe.gets(), 1, "the note did not reach the next process");
    assert!(second.recently_missing(&name, &commit));

    // A write through the first cache removes the notes for everyone.
    first_store
        .put(&commit, Bytes::from_static(b"[]").into())
        .await
        .expect("put");
    first_store
        .put(&hint, Bytes::from_static(b"{}").into())
        .await
        .expect("put");
    let third = Cache::new(options(Some(ssd.path()))).expect("cache");
    assert!(!third.recently_missing(&name, &commit));
    assert_eq!(&whole(&third.wrap(probe.clone()), &hint).await[..], b"{}");

    // A note older than the interval is not trusted.
    let strict = Cache::new(CacheOptions {
        revalidate_after: std::time::Duration::from_millis(50),
        ..options(Some(ssd.path()))
    })
    .expect("cache");
    strict.note_missing(&name, &commit);
    std::thread::sleep(std::time::Duration::from_millis(60));
    let later = Cache::new(CacheOptions {
        revalidate_after: std::time::Duration::from_millis(50),
        ..options(Some(ssd.path()))
    })
    .expect("cache");
    assert!(!later.recently_missing(&name, &commit));
}

#[tokio::test]
async fn caches_sharing_a_directory_do_not_corrupt_it() {
    let (_dir, probe, path, data) = store_with(200_000, "t/part-0.parquet").await;
    let ssd = tempfile::tempdir().expect("ssd");
    let mut tasks = Vec::new();
    for worker in 0..4u64 {
        let probe = probe.clone();
        let dir = ssd.path().to_path_buf();
        let (path, data) = (path.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            let cache = Cache::new(CacheOptions {
                memory_bytes: 8 * BLOCK,
                ..options(Some(&dir))
            })
            .expect("cache");
            let store = cache.wrap(probe);
            for i in 0..60u64 {
                let start = (i * 7919 + worker * 104_729) % 190_000;
                let r = start..start + 9000;
                let got = store.get_range(&path, r.clone()).await.expect("read");
                assert_eq!(got, data.slice(r.start as usize..r.end as usize));
            }
            cache.stats().counts.disk_corrupt
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), 0);
    }
}

#[tokio::test]
async fn one_large_scan_does_not_flush_the_hot_blocks() {
    // 64 blocks of memory; 16 hot blocks read often, then 400 cold blocks read once.
    let (_dir, probe, path, data) = store_with(420 * BLOCK as usize, "t/part-0.parquet").await;
    let cache = Cache::new(CacheOptions {
        memory_bytes: 64 * (BLOCK + 256),
        ..options(None)
    })
    .expect("cache");
    let store = cache.wrap(probe.clone());
    // A cache in use is full (moka counts how often keys are read once it is half full).
    for block in 16..56 {
        range(&store, &path, block * BLOCK..(block + 1) * BLOCK).await;
    }
    let hot = 0..16 * BLOCK;
    for _ in 0..10 {
        assert_eq!(
            range(&store, &path, hot.clone()).await,
            data.slice(..hot.end as usize)
        );
    }
    for block in 60..420 {
        range(&store, &path, block * BLOCK..(block + 1) * BLOCK).await;
    }
    let before = cache.stats().counts.memory_hits;
    range(&store, &path, hot.clone()).await;
    let still_hot = cache.stats().counts.memory_hits - before;
    assert!(
        still_hot >= 14,
        "only {still_hot} of 16 hot blocks stayed in memory"
    );
}
