//! The commit log: versions, time travel, history, checkpoints, and planning without
//! listing data directories.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use dala_dataset::{Dataset, Engine, Operation, PROP_DEFAULT_ENGINE, WriteMode, WriteOptions};
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::common::{self, batches, ids, location, partitioned};

#[tokio::test(flavor = "multi_thread")]
async fn time_travel_by_version_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    let after_first = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ds.write(batches(100, 50, 50), &WriteOptions::default())
        .await
        .unwrap();
    ds.write(batches(150, 50, 50), &WriteOptions::default())
        .await
        .unwrap();

    let v0 = Dataset::open_at(&path, 0).await.unwrap();
    assert_eq!(
        ids(&v0.scan().collect().await.unwrap()),
        (0..100).collect::<Vec<_>>()
    );
    let v1 = Dataset::open_at(&path, 1).await.unwrap();
    assert_eq!(v1.snapshot().rows(), 150);
    let latest = Dataset::open(&path).await.unwrap();
    assert_eq!(latest.version(), 2);
    assert_eq!(latest.snapshot().rows(), 200);
    let at = Dataset::open_at_time(&path, after_first).await.unwrap();
    assert_eq!(at.version(), 0);
    assert!(Dataset::open_at(&path, 3).await.is_err());

    let history = latest.history().await.unwrap();
    let ops: Vec<(u64, Operation, u64)> = history
        .iter()
        .map(|c| (c.version, c.operation, c.rows_added()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (2, Operation::Append, 50),
            (1, Operation::Append, 50),
            (0, Operation::Create, 100)
        ]
    );
    // Each commit records the partitions it touched and per-file statistics.
    assert!(
        history[2]
            .partitions
            .contains(&"year=2020/region=north".to_string())
    );
    assert!(history[2].add.iter().all(|a| a.stats.contains_key("id")));
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_bound_what_opening_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions::default();
    let mut ds = Dataset::builder(&path)
        .write(batches(0, 10, 10), &options)
        .await
        .unwrap()
        .0;
    for i in 1..=104 {
        ds.write(batches(i * 10, 10, 10), &options).await.unwrap();
    }
    let log_dir = dir.path().join("ds/_dala");
    assert!(log_dir.join("00000000000000000100.checkpoint").exists());
    // Opening needs the checkpoint and the commits after it only: remove the older ones.
    for v in 0..100 {
        std::fs::remove_file(log_dir.join(format!("{v:020}.json"))).unwrap();
    }
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(reopened.version(), 104);
    assert_eq!(
        ids(&reopened.scan().collect().await.unwrap()),
        (0..1050).collect::<Vec<_>>()
    );
    // Time travel to a version covered by the checkpoint also works.
    let v101 = Dataset::open_at(&path, 101).await.unwrap();
    assert_eq!(v101.snapshot().rows(), 1020);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_of_many_files_is_followed_by_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let small = WriteOptions::default().with_max_rows_per_file(1);
    let ds = common::write(&path, 0, 999, &small).await;
    let log_dir = dir.path().join("ds/_dala");
    assert_eq!(ds.snapshot().files().len(), 999);
    assert!(!log_dir.join("00000000000000000000.checkpoint").exists());
    let mut ds = ds;
    ds.write(batches(999, 1000, 100), &small).await.unwrap();
    // 1 000 files in one commit: the next open reads a checkpoint, not the JSON.
    assert!(log_dir.join("00000000000000000001.checkpoint").exists());
    // Without version 0's entry, only the checkpoint can tell what version 1 holds.
    std::fs::remove_file(log_dir.join("00000000000000000000.json")).unwrap();
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!((reopened.version(), reopened.snapshot().rows()), (1, 1999));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recursive_glob_finds_data_files_only_and_former_checkpoints_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions::default();
    let mut ds = common::write(&path, 0, 10, &options).await;
    ds.write(batches(10, 10, 10), &options).await.unwrap();
    ds.checkpoint().await.unwrap();
    // Every `.parquet` file under the root is a data file of the latest version, so that
    // another engine's `**/*.parquet` reads the data and nothing else.
    let mut parquet: Vec<String> = common::walk(&dir.path().join("ds"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    parquet.sort();
    let mut data: Vec<String> = ds.snapshot().files().map(|f| f.path.clone()).collect();
    data.sort();
    assert_eq!(parquet, data);

    // A checkpoint under the name checkpoints had before is still read: without version
    // 0's entry only the checkpoint can tell what version 1 holds.
    let log_dir = dir.path().join("ds/_dala");
    std::fs::rename(
        log_dir.join("00000000000000000001.checkpoint"),
        log_dir.join("00000000000000000001.checkpoint.parquet"),
    )
    .unwrap();
    std::fs::remove_file(log_dir.join("00000000000000000000.json")).unwrap();
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!((reopened.version(), reopened.snapshot().rows()), (1, 20));
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_follow_the_file_actions_the_log_accumulates() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let small = WriteOptions::default().with_max_rows_per_file(1);
    let log_dir = dir.path().join("ds/_dala");
    let checkpoints = || {
        let mut found: Vec<String> = std::fs::read_dir(&log_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".checkpoint"))
            .map(|name| name[..20].trim_start_matches('0').to_string())
            .collect();
        found.sort();
        found
    };
    // 600 files: too few to need a checkpoint; 600 more: the log now holds 1 200 actions.
    let mut ds = common::write(&path, 0, 600, &small).await;
    let mut stale = Dataset::open(&path).await.unwrap();
    assert!(checkpoints().is_empty());
    ds.write(batches(600, 600, 600), &small).await.unwrap();
    assert_eq!(checkpoints(), vec!["1"]);
    // The next commit starts counting again.
    ds.write(batches(1_200, 10, 10), &small).await.unwrap();
    assert_eq!(checkpoints(), vec!["1"]);
    // A writer that read version 0 counts the actions after the checkpoint another
    // writer made, not the 1 220 since its own read.
    stale.write(batches(1_210, 10, 10), &small).await.unwrap();
    assert_eq!(checkpoints(), vec!["1"]);
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!((reopened.version(), reopened.snapshot().rows()), (3, 1_220));
}

#[tokio::test(flavor = "multi_thread")]
async fn properties_set_the_checkpoint_interval_and_keep_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut options = WriteOptions::default();
    options
        .properties
        .insert("checkpoint.interval".into(), "3".into());
    options
        .properties
        .insert("retention.seconds".into(), "3600".into());
    let mut ds = Dataset::builder(&path)
        .write(batches(0, 10, 10), &options)
        .await
        .unwrap()
        .0;
    let first_files: Vec<String> = ds.snapshot().files().map(|f| f.path.clone()).collect();
    for i in 1..=3 {
        ds.write(batches(i * 10, 10, 10), &WriteOptions::default())
            .await
            .unwrap();
    }
    assert!(
        dir.path()
            .join("ds/_dala/00000000000000000003.checkpoint")
            .exists()
    );
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(reopened.snapshot().checkpoint_interval(), 3);
    // With a retention set, an overwrite keeps the files it removed (for time travel).
    let overwrite = WriteOptions::default().with_mode(WriteMode::Overwrite);
    ds.write(batches(100, 10, 10), &overwrite).await.unwrap();
    for file in &first_files {
        assert!(
            dir.path().join("ds").join(file).exists(),
            "{file} was deleted"
        );
    }
    let old = Dataset::open_at(&path, 3).await.unwrap();
    assert_eq!(
        ids(&old.scan().collect().await.unwrap()),
        (0..40).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set_properties_commits_a_default_engine_without_touching_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    assert_eq!(ds.snapshot().default_engine().unwrap(), None);
    let files: Vec<String> = ds.snapshot().files().map(|f| f.path.clone()).collect();
    let set = [(PROP_DEFAULT_ENGINE.to_string(), "duckdb".to_string())].into();
    let result = ds.set_properties(set).await.unwrap();
    assert_eq!(result.version, Some(1));
    assert_eq!(result.files_added + result.files_removed, 0);

    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(
        reopened.snapshot().default_engine().unwrap(),
        Some(Engine::Duckdb)
    );
    let after: Vec<String> = reopened
        .snapshot()
        .files()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(after, files);
    let history = reopened.history().await.unwrap();
    assert_eq!(history[0].operation, Operation::SetProperties);
    // Asked-for engines win over the dataset's default.
    assert_eq!(
        Engine::choose(Some(Engine::Polars), Some(Engine::Duckdb), None).unwrap(),
        Engine::Polars
    );

    // A value dala cannot read is refused and changes nothing.
    let bad = [(PROP_DEFAULT_ENGINE.to_string(), "spark".to_string())].into();
    let error = ds.set_properties(bad).await.unwrap_err();
    assert!(error.to_string().contains("spark"), "{error}");
    let mut options = WriteOptions::default();
    options
        .properties
        .insert("checkpoint.interval".into(), "often".into());
    let error = ds.write(batches(100, 10, 10), &options).await.unwrap_err();
    assert!(error.to_string().contains("checkpoint.interval"), "{error}");
    assert_eq!(Dataset::open(&path).await.unwrap().version(), 1);

    // An empty value clears it.
    let clear = [(PROP_DEFAULT_ENGINE.to_string(), String::new())].into();
    ds.set_properties(clear).await.unwrap();
    assert_eq!(ds.snapshot().default_engine().unwrap(), None);
}

/// A store that counts listings outside the log directory and of the log directory, and
/// requests for objects in the log directory.
#[derive(Debug, Default)]
struct CountingStore {
    inner: LocalFileSystem,
    data_listings: Arc<AtomicUsize>,
    log_listings: Arc<AtomicUsize>,
    log_requests: Arc<AtomicUsize>,
    /// Conditional puts still to answer as refused after they landed, as a store does
    /// when it retries a put whose first reply was lost.
    lost_create_replies: Arc<AtomicUsize>,
    /// When set, the first that many reads of data files wait at the barrier (made for as
    /// many) until they all wait together.
    data_readers_meet: Option<(usize, Arc<tokio::sync::Barrier>)>,
    data_reads: AtomicUsize,
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore")
    }
}

impl CountingStore {
    /// Waits at the barrier, if any, for the first reads of data.
    async fn meet(&self) {
        if let Some((readers, barrier)) = &self.data_readers_meet
            && self.data_reads.fetch_add(1, Ordering::SeqCst) < *readers
        {
            barrier.wait().await;
        }
    }

    fn count(&self, prefix: Option<&Path>) {
        if prefix.is_some_and(|p| p.as_ref().ends_with("_dala")) {
            self.log_listings.fetch_add(1, Ordering::SeqCst);
        } else {
            self.data_listings.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        l: &Path,
        p: PutPayload,
        o: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = matches!(o.mode, PutMode::Create);
        let result = self.inner.put_opts(l, p, o).await?;
        let lose = || {
            self.lost_create_replies
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if create && lose() {
            return Err(object_store::Error::AlreadyExists {
                path: l.to_string(),
                source: "the retry of a put that landed".into(),
            });
        }
        Ok(result)
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
        if l.as_ref().contains("/_dala/") {
            self.log_requests.fetch_add(1, Ordering::SeqCst);
        } else {
            self.meet().await;
        }
        self.inner.get_opts(l, o).await
    }
    async fn get_ranges(&self, l: &Path, r: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.meet().await;
        self.inner.get_ranges(l, r).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.count(prefix);
        self.inner.list(prefix)
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.count(prefix);
        self.inner.list_with_offset(prefix, offset)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.count(prefix);
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn open_and_scan_never_list_data_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    common::write(&path, 0, 2000, &partitioned()).await;
    let listings = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(CountingStore {
        data_listings: listings.clone(),
        ..CountingStore::default()
    });
    let root = Path::from_absolute_path(dir.path().join("ds")).unwrap();
    let ds = Dataset::builder(&path)
        .with_store(store, root)
        .open()
        .await
        .unwrap();
    let rows = ds
        .scan()
        .with_filter_str("year = 2021 AND qty < 5")
        .unwrap()
        .count_rows()
        .await
        .unwrap();
    assert!(rows > 0);
    assert_eq!(
        listings.load(Ordering::SeqCst),
        0,
        "a data directory was listed"
    );
}

/// A scan reads several files at once: the store holds the first data reads until three
/// of them wait together, so a scan reading one file at a time would never finish.
#[tokio::test(flavor = "multi_thread")]
async fn a_scan_reads_files_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let written = common::write(&path, 0, 2000, &partitioned()).await;
    assert!(written.snapshot().files().count() >= 3);
    let store = Arc::new(CountingStore {
        data_readers_meet: Some((3, Arc::new(tokio::sync::Barrier::new(3)))),
        ..CountingStore::default()
    });
    let root = Path::from_absolute_path(dir.path().join("ds")).unwrap();
    let ds = Dataset::builder(&path)
        .with_store(store, root)
        .without_cache()
        .open()
        .await
        .unwrap();
    let rows = tokio::time::timeout(std::time::Duration::from_secs(60), ds.scan().count_rows())
        .await
        .expect("the scan read fewer than three files at once")
        .unwrap();
    assert_eq!(rows, 2000);
}

/// A store retries a conditional put whose reply was lost; the retry is refused because
/// the first attempt landed. The writer must see its own commit, not a rival's, and must
/// not commit the same rows again at the next version.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_whose_reply_was_lost_is_not_committed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    common::write(&path, 0, 100, &partitioned()).await;
    let lost = Arc::new(AtomicUsize::new(1));
    let store = Arc::new(CountingStore {
        lost_create_replies: lost.clone(),
        ..CountingStore::default()
    });
    let root = Path::from_absolute_path(dir.path().join("ds")).unwrap();
    let mut ds = Dataset::builder(&path)
        .with_store(store, root)
        .without_cache()
        .open()
        .await
        .unwrap();
    let result = ds
        .write(batches(100, 50, 50), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(lost.load(Ordering::SeqCst), 0, "no reply was lost");
    assert_eq!(result.version, Some(1));
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(reopened.version(), 1, "the rows were committed twice");
    assert_eq!(
        ids(&reopened.scan().collect().await.unwrap()),
        (0..150).collect::<Vec<_>>()
    );
}

/// The dataset `ds` in a temporary folder over a [`CountingStore`], read through a cache
/// that trusts a check for `revalidate_after`.
struct Counted {
    path: String,
    store: Arc<dyn ObjectStore>,
    root: Path,
    cache: Arc<dala_cache::Cache>,
    log_listings: Arc<AtomicUsize>,
    log_requests: Arc<AtomicUsize>,
}

impl Counted {
    fn new(dir: &tempfile::TempDir, revalidate_after: std::time::Duration) -> Self {
        let (log_listings, log_requests) = (Arc::default(), Arc::default());
        let store = Arc::new(CountingStore {
            log_listings: Arc::clone(&log_listings),
            log_requests: Arc::clone(&log_requests),
            ..CountingStore::default()
        });
        let options = dala_cache::CacheOptions {
            revalidate_after,
            ..Default::default()
        };
        Counted {
            path: location(dir, "ds"),
            store,
            root: Path::from_absolute_path(dir.path().join("ds")).unwrap(),
            cache: dala_cache::Cache::new(options).unwrap(),
            log_listings,
            log_requests,
        }
    }

    fn builder(&self) -> dala_dataset::DatasetBuilder {
        Dataset::builder(&self.path)
            .with_store(self.store.clone(), self.root.clone())
            .with_cache(self.cache.clone())
    }
}

/// Through a cache, opening a dataset again finds its latest version without listing the
/// log: the cache knows the commits it has read, and one request confirms that no newer
/// one exists. A commit made by another writer is seen all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_open_finds_the_latest_version_without_listing_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    ds.write(batches(100, 50, 50), &WriteOptions::default())
        .await
        .unwrap();
    // Every open checks for a newer commit: nothing is trusted for any time.
    let counted = Counted::new(&dir, std::time::Duration::ZERO);
    let log_listings = counted.log_listings.clone();
    let open = || counted.builder().open();
    let cold = open().await.unwrap();
    assert_eq!(cold.version(), 1);
    assert!(
        log_listings.load(Ordering::SeqCst) > 0,
        "a cold open lists the log"
    );

    log_listings.store(0, Ordering::SeqCst);
    let warm = open().await.unwrap();
    assert_eq!(warm.version(), 1);
    assert_eq!(warm.scan().count_rows().await.unwrap(), 150);
    assert_eq!(
        log_listings.load(Ordering::SeqCst),
        0,
        "a warm open listed the log"
    );

    // Another writer, not through this cache, commits twice.
    ds.write(batches(150, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    ds.write(batches(160, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    let after = open().await.unwrap();
    assert_eq!(after.version(), 3);
    assert_eq!(
        ids(&after.scan().collect().await.unwrap()),
        (0..170).collect::<Vec<_>>()
    );

    // With a checkpoint, a warm open starts from it, and still sees what follows it.
    let every_two = WriteOptions {
        properties: [("checkpoint.interval".to_string(), "2".to_string())].into(),
        ..WriteOptions::default()
    };
    ds.write(batches(170, 10, 10), &every_two).await.unwrap(); // version 4, checkpointed
    assert_eq!(open().await.unwrap().version(), 4);
    log_listings.store(0, Ordering::SeqCst);
    assert_eq!(open().await.unwrap().version(), 4);
    assert_eq!(
        log_listings.load(Ordering::SeqCst),
        0,
        "a warm open listed the log"
    );
    ds.write(batches(180, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    let last = open().await.unwrap();
    assert_eq!(last.version(), 5);
    assert_eq!(last.scan().count_rows().await.unwrap(), 190);
}

/// Within the cache's revalidation interval, an open trusts the last check that no newer
/// commit exists and asks the store nothing about the log; a commit by another process
/// shows from the next check (`reload` always checks), and a write through the cache at
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn within_the_revalidation_interval_an_open_asks_the_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut other = common::write(&path, 0, 100, &partitioned()).await;
    let counted = Counted::new(&dir, std::time::Duration::from_secs(600));
    let (log_requests, cache) = (counted.log_requests.clone(), counted.cache.clone());
    let open = || counted.builder().open();
    assert_eq!(open().await.unwrap().version(), 0);
    log_requests.store(0, Ordering::SeqCst);
    let mut warm = open().await.unwrap();
    assert_eq!(warm.version(), 0);
    assert_eq!(log_requests.load(Ordering::SeqCst), 0, "a warm open asked");
    // Nor is the snapshot built again: the one kept for the version serves.
    let hits = cache.stats().counts.metadata_hits;
    assert_eq!(open().await.unwrap().version(), 0);
    assert!(
        cache.stats().counts.metadata_hits > hits,
        "the snapshot was rebuilt"
    );

    // Another process commits: an open within the interval still reads version 0, a
    // reload asks and moves on, and so do the opens after it.
    other
        .write(batches(100, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(open().await.unwrap().version(), 0);
    assert!(warm.reload().await.unwrap());
    assert_eq!(warm.version(), 1);
    let seen = open().await.unwrap();
    assert_eq!(seen.version(), 1);
    assert_eq!(seen.scan().count_rows().await.unwrap(), 110);

    // A time-travel open past the version last seen asks, and finds it.
    other
        .write(batches(110, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    let at_two = counted.builder().with_version(2).open().await.unwrap();
    assert_eq!(at_two.scan().count_rows().await.unwrap(), 120);

    // A write through the cache is seen by the next open at once.
    let (written, _) = counted
        .builder()
        .write(batches(120, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(written.version(), 3);
    assert_eq!(open().await.unwrap().version(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn writers_racing_to_create_end_with_one_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            tokio::spawn(async move {
                Dataset::write_to(&path, batches(i * 100, 100, 100), &partitioned())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.version(), 3);
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..400).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_conflicts_with_a_concurrent_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut stale = common::write(&path, 0, 100, &partitioned()).await;
    let mut other = Dataset::open(&path).await.unwrap();
    other
        .write(batches(100, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    let overwrite = WriteOptions::default().with_mode(WriteMode::Overwrite);
    let err = stale
        .write(batches(500, 10, 10), &overwrite)
        .await
        .unwrap_err();
    assert!(
        matches!(err, dala_dataset::Error::CommitConflict { version: 1, .. }),
        "{err}"
    );
    // The appended rows survive; the failed overwrite left nothing behind.
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.version(), 1);
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..110).collect::<Vec<_>>()
    );
    // Two stale appends never conflict.
    stale
        .write(batches(200, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(stale.version(), 2);
}
