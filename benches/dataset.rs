//! Criterion benchmarks of the dataset core: planning over 100 000 files, writing
//! TPC-H lineitem partitioned by month, and a selective scan. See `benches/README.md`.
// Benchmark code: a failure ends the run with its message.
#![allow(clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dala_benches::{
    lineitem_dataset, lineitem_input, lineitem_parquet, many_files_dataset, scale_factor,
};
use dala_dataset::{Dataset, WriteOptions, col, lit};
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

criterion_group!(benches, planning, write, scan);
criterion_main!(benches);
