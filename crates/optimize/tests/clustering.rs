//! Compaction that orders rows across files: sort columns and Z-order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use dala_dataset::{Clustering, Dataset, Expr, RewriteOptions, WriteOptions, col, lit};
use dala_optimize::{CompactOptions, Error, execute_compaction, plan_compaction};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Int64, false),
        Field::new("y", DataType::Int64, false),
    ]))
}

/// A small deterministic generator, so that every run has the same data.
fn scrambled(i: i64, salt: i64) -> i64 {
    let mut v = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (salt as u64);
    v ^= v >> 29;
    v = v.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v ^= v >> 32;
    (v % 1000) as i64
}

fn rows(from: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..from + n)
        .map(|i| scrambled(i, 7) * 1_000_000 + i)
        .collect();
    let x: Vec<i64> = (from..from + n).map(|i| scrambled(i, 1)).collect();
    let y: Vec<i64> = (from..from + n).map(|i| scrambled(i, 2)).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Int64Array::from(x)),
            Arc::new(Int64Array::from(y)),
        ],
    )
    .unwrap()
}

/// `appends` files of `per_file` rows, each spread over the whole range of x and y.
async fn scattered(dir: &tempfile::TempDir, appends: i64, per_file: i64) -> Dataset {
    let location = dir.path().join("points").display().to_string();
    for i in 0..appends {
        Dataset::write_to(
            &location,
            [Ok(rows(i * per_file, per_file))],
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    Dataset::open(&location).await.unwrap()
}

/// Sorted ids and the sums of x and y.
async fn contents(dataset: &Dataset) -> (Vec<i64>, i64, i64) {
    let mut ids = Vec::new();
    let (mut x, mut y) = (0, 0);
    for batch in dataset.scan().collect().await.unwrap() {
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        ids.extend(column("id").as_primitive::<Int64Type>().values().iter());
        x += arrow::compute::sum(column("x").as_primitive::<Int64Type>()).unwrap();
        y += arrow::compute::sum(column("y").as_primitive::<Int64Type>()).unwrap();
    }
    ids.sort_unstable();
    (ids, x, y)
}

async fn files_kept(dataset: &Dataset, filter: Expr) -> usize {
    let explain = dataset.scan().with_filter(filter).explain().await.unwrap();
    explain.files_kept
}

/// The ids of each file, in the order the file holds them, files ordered by first id.
fn ids_per_file(dir: &tempfile::TempDir, dataset: &Dataset) -> Vec<Vec<i64>> {
    let mut files: Vec<Vec<i64>> = dataset
        .snapshot()
        .files()
        .map(|file| {
            let path = dir.path().join("points").join(&file.path);
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(path).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
            reader
                .flat_map(|b| {
                    b.unwrap()
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .to_vec()
                })
                .collect()
        })
        .collect();
    files.sort_by_key(|ids| ids.first().copied());
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn sorting_orders_rows_within_and_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut dataset = scattered(&dir, 10, 6000).await;
    let before = contents(&dataset).await;
    let options = CompactOptions {
        sort_by: vec!["id".parse().unwrap()],
        max_rows_per_file: Some(7000),
        concurrency: 1,
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    assert_eq!(plan.groups.len(), 1);
    execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    dataset.reload().await.unwrap();
    assert_eq!(contents(&dataset).await, before);
    assert_sorted_across_files(&ids_per_file(&dir, &dataset), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_beyond_the_writers_memory_are_sorted_in_spilled_runs() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = scattered(&dir, 10, 6000).await;
    let before = contents(&dataset).await;
    // 64 KiB of writer memory sorts 32 KiB of rows at a time: the 60 000 rows (1.4 MB)
    // are spilled in runs and merged.
    let options = RewriteOptions {
        write: WriteOptions {
            max_rows_per_file: Some(7000),
            max_buffered_bytes: 64 << 10,
            ..WriteOptions::default()
        },
        cluster: Some(Clustering::Sort(vec!["id".parse().unwrap()])),
        ..RewriteOptions::default()
    };
    let paths: Vec<String> = dataset.snapshot().files().map(|f| f.path.clone()).collect();
    let (dataset, _) = dataset.rewrite_files(&paths, &options).await.unwrap();
    assert_eq!(contents(&dataset).await, before);
    assert_sorted_across_files(&ids_per_file(&dir, &dataset), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_below_the_index_and_one_group_is_refused_with_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = scattered(&dir, 10, 600).await;
    let options = CompactOptions {
        memory_budget: 1 << 20,
        ..CompactOptions::default()
    };
    let error = plan_compaction(&dataset, &options).unwrap_err();
    let Error::MemoryBudget { budget, needed, .. } = error else {
        panic!("expected a memory budget error, got {error}");
    };
    assert_eq!(budget, 1 << 20);
    assert!(needed > budget);
    assert!(error.to_string().contains("1 MiB"), "{error}");

    let reopened = Dataset::open(dir.path().join("points").display().to_string())
        .await
        .unwrap();
    assert_eq!(reopened.version(), dataset.version());

    // The least budget it names is enough.
    let options = CompactOptions {
        memory_budget: needed,
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
}

/// Each file sorted, files in order and not overlapping, `count` of them.
fn assert_sorted_across_files(files: &[Vec<i64>], count: usize) {
    assert_eq!(files.len(), count, "60 000 rows in files of at most 7 000");
    for ids in files {
        assert!(ids.is_sorted(), "a file is not sorted");
    }
    for pair in files.windows(2) {
        assert!(
            pair[0].last() < pair[1].first(),
            "files overlap: {:?} then {:?}",
            pair[0].last(),
            pair[1].first()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn z_order_lets_filters_on_either_column_prune_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut dataset = scattered(&dir, 16, 2500).await;
    let before = contents(&dataset).await;
    let x_band = || col("x").gt_eq(lit(100i64)).and(col("x").lt(lit(200i64)));
    let y_band = || col("y").gt_eq(lit(300i64)).and(col("y").lt(lit(400i64)));
    let box_filter = || x_band().and(y_band());
    let total = dataset.snapshot().files().len();
    assert_eq!(files_kept(&dataset, box_filter()).await, total);
    let box_rows = dataset
        .scan()
        .with_filter(box_filter())
        .count_rows()
        .await
        .unwrap();

    let options = CompactOptions {
        zorder: vec!["x".into(), "y".into()],
        max_rows_per_file: Some(1250),
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    dataset.reload().await.unwrap();
    assert_eq!(contents(&dataset).await, before);
    let after = dataset.snapshot().files().len();
    assert_eq!(after, 32);
    let kept = files_kept(&dataset, box_filter()).await;
    let kept_x = files_kept(&dataset, x_band()).await;
    let kept_y = files_kept(&dataset, y_band()).await;
    println!("files kept of {after}: box {kept}, x band {kept_x}, y band {kept_y}");
    assert!(
        kept <= after / 4,
        "the box query keeps {kept} of {after} files"
    );
    assert!(
        kept_x < after / 2,
        "an x filter keeps {kept_x} of {after} files"
    );
    assert!(
        kept_y < after / 2,
        "a y filter keeps {kept_y} of {after} files"
    );
    let rows = dataset
        .scan()
        .with_filter(box_filter())
        .count_rows()
        .await
        .unwrap();
    assert_eq!(rows, box_rows);

    // A partition column or a single column cannot be a Z-order.
    let one = CompactOptions {
        zorder: vec!["x".into()],
        ..CompactOptions::default()
    };
    assert!(plan_compaction(&dataset, &one).is_err());
}
