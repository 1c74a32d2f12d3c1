//! Datasets on `s3://`, against a real S3-protocol server on 127.0.0.1: writes, scans,
//! upserts, compaction and vacuum give the same rows as on a local disk, with and without
//! the cache; a server that stops mid-scan gives a clear error and leaves the cache whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::array_value_to_string;
use dala_cache::{Cache, CacheOptions, DiskOptions};
use dala_dataset::{Dataset, DatasetBuilder, WriteMode, WriteOptions};
use dala_optimize::{
    CompactOptions, VacuumOptions, execute_compaction, execute_vacuum, plan_compaction, plan_vacuum,
};
use dala_tests::S3Server;
use futures::StreamExt;

const REGIONS: [&str; 3] = ["eu", "us", "apac"];

/// Rows `ids` with a region, an amount and a name that depend on `round`.
fn batch(ids: impl Iterator<Item = i64>, round: i64) -> RecordBatch {
    let ids: Vec<i64> = ids.collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let region = StringArray::from_iter_values(
        ids.iter()
            .map(|id| REGIONS[((id + round) % 3) as usize].to_string()),
    );
    let amount = Int64Array::from_iter(
        ids.iter()
            .map(|id| (id % 17 != 0).then_some((id * 37 + round * 11) % 100)),
    );
    let name = StringArray::from_iter_values(ids.iter().map(|id| format!("n{id}-r{round}-ü")));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(region),
            Arc::new(amount),
            Arc::new(name),
        ],
    )
    .unwrap()
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut fields: Vec<(String, String)> = batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| (f.name().clone(), array_value_to_string(c, row).unwrap()))
                .collect();
            fields.sort();
            rows.push(format!("{fields:?}"));
        }
    }
    rows.sort();
    rows
}

/// What a run of the workload ends with.
#[derive(Debug, PartialEq)]
struct Outcome {
    all: Vec<String>,
    selected: Vec<String>,
    files: usize,
}

/// Write twice, upsert (moving some rows to another region), delete, write again, compact,
/// vacuum;
/// then read everything and a filtered part.
async fn workload(open: impl Fn() -> DatasetBuilder) -> Outcome {
    let write = |mode| WriteOptions {
        mode,
        partition_by: vec!["region".into()],
        key: vec!["id".into()],
        row_group_size: 200,
        ..WriteOptions::default()
    };
    // Replaced files are kept for time travel (and vacuum then deletes them).
    let create = WriteOptions {
        properties: [("retention.seconds".to_string(), "3600".to_string())].into(),
        ..write(WriteMode::Append)
    };
    let (mut dataset, _) = open()
        .write([Ok(batch(0..1500, 0))], &create)
        .await
        .unwrap();
    dataset
        .write([Ok(batch(1500..3000, 0))], &write(WriteMode::Append))
        .await
        .unwrap();
    let upsert = dataset
        .write(
            [Ok(batch((1000..2000).chain(3000..3300), 1))],
            &write(WriteMode::Upsert),
        )
        .await
        .unwrap();
    assert_eq!((upsert.rows_updated, upsert.rows_inserted), (1000, 300));
    let deleted = dataset
        .delete(dala_dataset::Expr::parse("amount < 5").unwrap())
        .await
        .unwrap();
    assert!(deleted.rows_deleted > 0);
    dataset
        .write([Ok(batch(3300..3600, 2))], &write(WriteMode::Append))
        .await
        .unwrap();
    let plan = plan_compaction(&dataset, &CompactOptions::default()).unwrap();
    assert!(!plan.is_empty());
    execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    dataset.reload().await.unwrap();
    let vacuum = VacuumOptions {
        retain: Some(Duration::ZERO),
        orphan_grace: Duration::ZERO,
    };
    let plan = plan_vacuum(&dataset, &vacuum).await.unwrap();
    assert!(plan.bytes() > 0, "{plan:?}");
    execute_vacuum(&dataset, &plan).await.unwrap();

    let dataset = open().open().await.unwrap();
    let all = rows(&dataset.scan().collect().await.unwrap());
    let selected = rows(
        &dataset
            .scan()
            .with_filter_str("region = 'eu' AND amount > 50")
            .unwrap()
            .with_columns(["id", "amount"])
            .collect()
            .await
            .unwrap(),
    );
    Outcome {
        all,
        selected,
        files: dataset.snapshot().files().len(),
    }
}

fn on_s3(server: &S3Server, bucket: &str) -> DatasetBuilder {
    let mut builder = Dataset::builder(format!("s3://{bucket}/lake/orders"));
    for (key, value) in server.storage_options() {
        builder = builder.with_storage_option(key, value);
    }
    builder
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_gives_the_local_answers_with_and_without_the_cache() {
    let server = S3Server::start().unwrap();
    let local = tempfile::tempdir().unwrap();
    let expected =
        workload(|| Dataset::builder(local.path().to_str().unwrap()).without_cache()).await;
    assert_eq!(expected.all.len(), 3600 - deleted_rows());
    assert!(!expected.selected.is_empty());

    server.create_bucket("plain").unwrap();
    let plain = workload(|| on_s3(&server, "plain").without_cache()).await;
    assert_eq!(plain, expected);

    server.create_bucket("memory").unwrap();
    let memory = Cache::new(CacheOptions::default()).unwrap();
    let cached = workload(|| on_s3(&server, "memory").with_cache(memory.clone())).await;
    assert_eq!(cached, expected);
    assert!(memory.stats().counts.memory_hits > 0);

    server.create_bucket("ssd").unwrap();
    let ssd_dir = tempfile::tempdir().unwrap();
    let ssd_options = CacheOptions {
        disk: Some(DiskOptions::new(ssd_dir.path())),
        ..CacheOptions::default()
    };
    let ssd = Cache::new(ssd_options.clone()).unwrap();
    let cached = workload(|| on_s3(&server, "ssd").with_cache(ssd.clone())).await;
    assert_eq!(cached, expected);

    // A scan repeated on one version reads nothing from the store the second time.
    let dataset = on_s3(&server, "ssd")
        .with_cache(ssd.clone())
        .open()
        .await
        .unwrap();
    let first = rows(&dataset.scan().collect().await.unwrap());
    let before = ssd.stats().counts;
    let second = rows(&dataset.scan().collect().await.unwrap());
    let after = ssd.stats().counts;
    assert_eq!(first, second);
    assert_eq!(after.store_requests, before.store_requests, "{after:?}");
    assert!(after.metadata_hits > before.metadata_hits);

    // A new process (a new cache on the same directory) reads the data files from the SSD.
    let restarted = Cache::new(ssd_options).unwrap();
    let dataset = on_s3(&server, "ssd")
        .with_cache(restarted.clone())
        .open()
        .await
        .unwrap();
    assert_eq!(rows(&dataset.scan().collect().await.unwrap()), expected.all);
    let counts = restarted.stats().counts;
    assert!(counts.disk_hits > 0, "{counts:?}");
}

/// Rows the delete removes: the final version of each id with an amount below 5.
fn deleted_rows() -> usize {
    (0..3300i64)
        .filter(|id| {
            let round = i64::from((1000..2000).contains(id) || *id >= 3000);
            id % 17 != 0 && (id * 37 + round * 11) % 100 < 5
        })
        .count()
}

/// DuckDB (whose prebuilt library cannot read S3) answers scans and SQL over an S3 dataset
/// from dala's reader, with the answers it gives for the same dataset on a local disk.
#[tokio::test(flavor = "multi_thread")]
async fn duckdb_answers_over_s3_as_over_a_local_disk() {
    use dala_dataset::ScanEngine;

    let server = S3Server::start().unwrap();
    server.create_bucket("engines").unwrap();
    let local = tempfile::tempdir().unwrap();
    let options = WriteOptions {
        partition_by: vec!["region".into()],
        ..WriteOptions::default()
    };
    let cache = Cache::new(CacheOptions::default()).unwrap();
    let (remote, _) = on_s3(&server, "engines")
        .with_cache(cache.clone())
        .write([Ok(batch(0..4000, 0))], &options)
        .await
        .unwrap();
    let (local, _) = Dataset::builder(local.path().to_str().unwrap())
        .write([Ok(batch(0..4000, 0))], &options)
        .await
        .unwrap();
    let engine = dala_duckdb::DuckdbEngine::new(&Default::default()).unwrap();
    let sql = "SELECT region, count(*) AS n, sum(amount) AS total FROM t \
               WHERE amount > ? GROUP BY region ORDER BY region";
    let params = [dala_dataset::Scalar::Int(40)];
    let answer = |dataset: &Dataset| {
        let request = dataset
            .scan()
            .with_filter_str("region <> 'us'")
            .unwrap()
            .request()
            .unwrap();
        engine
            .sql(vec![("t".into(), request)], sql, &params)
            .unwrap()
    };
    let from_s3: Vec<RecordBatch> = answer(&remote).map(Result::unwrap).collect().await;
    let from_disk: Vec<RecordBatch> = answer(&local).map(Result::unwrap).collect().await;
    assert_eq!(rows(&from_s3), rows(&from_disk));
    assert_eq!(rows(&from_s3).len(), 2);

    let scan = |dataset: &Dataset| {
        let request = dataset
            .scan()
            .with_filter_str("amount BETWEEN 10 AND 20")
            .unwrap()
            .with_columns(["id", "name", "region"])
            .request()
            .unwrap();
        engine.scan(request).unwrap()
    };
    let from_s3: Vec<RecordBatch> = scan(&remote).map(Result::unwrap).collect().await;
    let from_disk: Vec<RecordBatch> = scan(&local).map(Result::unwrap).collect().await;
    assert_eq!(from_s3[0].schema(), from_disk[0].schema());
    assert_eq!(rows(&from_s3), rows(&from_disk));
    assert!(cache.stats().counts.store_requests > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_stopped_mid_scan_fails_clearly_and_leaves_the_cache_whole() {
    let mut server = S3Server::start().unwrap();
    server.create_bucket("faults").unwrap();
    let options = WriteOptions {
        partition_by: vec!["region".into()],
        max_rows_per_file: Some(500),
        ..WriteOptions::default()
    };
    on_s3(&server, "faults")
        .without_cache()
        .write([Ok(batch(0..6000, 0))], &options)
        .await
        .unwrap();
    let ssd_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(CacheOptions {
        disk: Some(DiskOptions::new(ssd_dir.path())),
        ..CacheOptions::default()
    })
    .unwrap();
    let dataset = on_s3(&server, "faults")
        .with_cache(cache.clone())
        .open()
        .await
        .unwrap();
    assert!(dataset.snapshot().files().len() >= 12);
    let mut stream = dataset
        .scan()
        .with_concurrency(1)
        .with_batch_size(100)
        .stream()
        .unwrap();
    stream.next().await.unwrap().unwrap();
    server.stop();
    let mut error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            error = Some(e);
            break;
        }
    }
    let error = error
        .expect("a scan of a stopped server must fail")
        .to_string();
    assert!(
        error.contains("127.0.0.1") || error.contains(".parquet"),
        "the error names neither the endpoint nor the file: {error}"
    );
    let (whole, broken) = dala_cache::verify_disk(ssd_dir.path());
    assert!(whole > 0, "the blocks read before the stop are kept");
    assert_eq!(broken, 0);
}

/// dala commits a version by creating its log entry with a conditional put; of writers
/// racing for one entry, exactly one may win, as on S3. This holds the test server to it.
#[tokio::test(flavor = "multi_thread")]
async fn racing_conditional_creates_have_one_winner() {
    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};

    let server = S3Server::start().unwrap();
    server.create_bucket("race").unwrap();
    let mut builder = AmazonS3Builder::new().with_bucket_name("race");
    for (key, value) in server.storage_options() {
        // The others (retries, timeouts) are the client's, not the store's.
        if let Ok(key) = key.parse() {
            builder = builder.with_config(key, value);
        }
    }
    let store = Arc::new(builder.build().unwrap());
    for entry in 0..40 {
        let path = Path::from(format!("_log/{entry:020}.json"));
        let tasks: Vec<_> = (0..16)
            .map(|writer| {
                let store = store.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    let options = PutOptions {
                        mode: PutMode::Create,
                        ..Default::default()
                    };
                    match store
                        .put_opts(&path, format!("writer {writer}").into(), options)
                        .await
                    {
                        Ok(_) => Some(writer),
                        Err(object_store::Error::AlreadyExists { .. }) => None,
                        Err(e) => panic!("writer {writer}: {e}"),
                    }
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "entry {entry}: winners {winners:?}");
        let stored = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored, format!("writer {}", winners[0]).as_bytes());
    }
}
