//! Criterion benchmarks of the dataset core: planning over 100 000 files, writing
//! TPC-H lineitem partitioned by month, a selective scan, and an upsert against a full
//! rewrite. See `benches/README.md`.
// Benchmark code: a failure ends the run with its message.
#![allow(clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dala_benches::{
    copy_tree, lineitem_dataset, lineitem_input, lineitem_parquet, many_files_dataset,
    scale_factor, upsert_changes,
};
use dala_dataset::{Dataset, WriteMode, WriteOptions, col, lit};
use futures::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn planning(c: &mut Criterion) {
    let rt = runtime();
    let files: usize = std::env::var("DALA_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let location = rt.block_on(many_files_dataset(files));
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    group.bench_function(format!("open_and_plan_point_query_{files}_files"), |b| {
        b.to_async(&rt).iter(|| async {
            let dataset = Dataset::open(&location).await.expect("open");
            let plan = dataset
                .scan()
                .with_filter(col("id").eq(lit(4242i64)))
                .plan()
                .expect("plan");
            assert_eq!(plan.files.len(), 1);
        })
    });
    group.finish();
}

fn write(c: &mut Criterion) {
    let rt = runtime();
    let input = lineitem_parquet();
    let mut group = c.benchmark_group("write");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60));
    group.bench_function(
        format!("lineitem_sf{}_by_year_month", scale_factor()),
        |b| {
            b.to_async(&rt).iter(|| async {
                let dir = tempfile::tempdir_in(dala_benches::data_dir()).expect("tempdir");
                let location = dir.path().join("ds").display().to_string();
                let options = WriteOptions::default().with_partition_by(["year", "month"]);
                Dataset::write_to(&location, lineitem_input(&input), &options)
                    .await
                    .expect("write")
            })
        },
    );
    group.finish();
}

async fn scan_one_month(location: &str) {
    let dataset = Dataset::open(location).await.expect("open");
    let scan = dataset
        .scan()
        .with_filter_str("year = 1995 AND month = 3 AND l_quantity < 10")
        .expect("filter")
        .with_columns(["l_extendedprice"]);
    let mut stream = scan.stream().expect("stream");
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch.expect("batch").num_rows();
    }
    assert!(rows > 0);
}

fn scan(c: &mut Criterion) {
    let rt = runtime();
    let location = rt.block_on(lineitem_dataset());
    let mut group = c.benchmark_group("scan");
    group.bench_function("one_month_quantity_lt_10_warm", |b| {
        b.to_async(&rt).iter(|| scan_one_month(&location))
    });
    group.sample_size(20);
    group.bench_function("one_month_quantity_lt_10_cold", |b| {
        b.to_async(&rt).iter_batched(
            || evict_page_cache(Path::new(&location)),
            |()| scan_one_month(&location),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Drops the dataset's files from the page cache: all caches where the kernel allows it,
/// else file by file with `dd iflag=nocache`.
fn evict_page_cache(dir: &Path) {
    let _ = std::process::Command::new("sync").status();
    if std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok() {
        return;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let _ = std::process::Command::new("dd")
                    .arg(format!("if={}", path.display()))
                    .args(["iflag=nocache", "count=0", "status=none"])
                    .status();
            }
        }
    }
}

/// P9: upsert 10 000 rows (half updates over three months, half new) into the lineitem
/// dataset, against rewriting the whole dataset with the same rows.
fn merge(c: &mut Criterion) {
    let rt = runtime();
    let location = rt.block_on(lineitem_dataset());
    let changes = rt.block_on(upsert_changes(&location)).expect("changes");
    let mut group = c.benchmark_group("merge");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    let fresh_copy = || {
        let dir = tempfile::tempdir_in(dala_benches::data_dir()).expect("tempdir");
        copy_tree(Path::new(&location), &dir.path().join("ds")).expect("copy dataset");
        dir
    };
    group.bench_function("upsert_10k_rows_by_key", |b| {
        b.iter_batched(
            fresh_copy,
            |dir| {
                rt.block_on(async {
                    let mut ds = Dataset::open(dir.path().join("ds").display().to_string())
                        .await
                        .expect("open");
                    let options = WriteOptions::default()
                        .with_mode(WriteMode::Upsert)
                        .with_key(["l_orderkey", "l_linenumber"]);
                    ds.write([Ok(changes.clone())], &options)
                        .await
                        .expect("upsert");
                });
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("full_rewrite_with_the_same_rows", |b| {
        b.iter_batched(
            fresh_copy,
            |dir| {
                rt.block_on(async {
                    let location = dir.path().join("ds").display().to_string();
                    let mut ds = Dataset::open(&location).await.expect("open");
                    // What a full rewrite does: every row but the changed keys, then the
                    // changes, written over the dataset.
                    let keys: std::collections::HashSet<(i64, i32)> = key_pairs(&changes);
                    let old = ds.scan().collect().await.expect("scan");
                    let kept = old.into_iter().map(|batch| {
                        let pairs = key_pair_list(&batch);
                        let keep: arrow::array::BooleanArray =
                            pairs.iter().map(|p| Some(!keys.contains(p))).collect();
                        arrow::compute::filter_record_batch(&batch, &keep)
                    });
                    let all: Vec<_> = kept.chain(std::iter::once(Ok(changes.clone()))).collect();
                    let options = WriteOptions::default().with_mode(WriteMode::Overwrite);
                    ds.write(all, &options).await.expect("rewrite");
                });
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn key_pair_list(batch: &arrow::array::RecordBatch) -> Vec<(i64, i32)> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, Int64Type};
    let orders = batch
        .column_by_name("l_orderkey")
        .expect("l_orderkey")
        .as_primitive::<Int64Type>();
    let lines = batch
        .column_by_name("l_linenumber")
        .expect("l_linenumber")
        .as_primitive::<Int32Type>();
    orders
        .values()
        .iter()
        .copied()
        .zip(lines.values().iter().copied())
        .collect()
}

fn key_pairs(batch: &arrow::array::RecordBatch) -> std::collections::HashSet<(i64, i32)> {
    key_pair_list(batch).into_iter().collect()
}

criterion_group!(benches, planning, write, scan, merge);
criterion_main!(benches);
