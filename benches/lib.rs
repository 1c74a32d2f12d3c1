//! Shared setup of dala's benchmarks: generated datasets, built once under `benches/data/`.
// Benchmark setup: a failure ends the run with its message.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use dala_datagen::{GenOptions, Table, batches, with_ship_year_month};
use dala_dataset::{Dataset, WriteOptions};

/// Where generated benchmark data lives (ignored by git).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The TPC-H scale factor of the write and scan benchmarks (`DALA_BENCH_SF`, default 1).
pub fn scale_factor() -> f64 {
    std::env::var("DALA_BENCH_SF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

/// TPC-H lineitem at the benchmark scale, as one Parquet file (generated once).
pub fn lineitem_parquet() -> PathBuf {
    let sf = scale_factor();
    let path = data_dir().join(format!("lineitem_sf{sf}.parquet"));
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(data_dir()).expect("create benches/data");
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).expect("create input file");
    let schema = dala_datagen::schema(Table::Lineitem);
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    let options = GenOptions {
        scale_factor: sf,
        ..GenOptions::default()
    };
    for batch in batches(Table::Lineitem, &options) {
        writer.write(&batch).expect("write input");
    }
    writer.close().expect("close input");
    std::fs::rename(&tmp, &path).expect("rename input");
    path
}

/// Reads the lineitem input file with the derived partition columns.
pub fn lineitem_input(
    path: &Path,
) -> impl Iterator<Item = Result<RecordBatch, ArrowError>> + Send + use<> {
    let file = std::fs::File::open(path).expect("open input");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("read input")
        .with_batch_size(65_536)
        .build()
        .expect("reader")
        .map(|b| b.and_then(with_ship_year_month))
}

/// The lineitem dataset partitioned by ship year and month (written once).
pub async fn lineitem_dataset() -> String {
    let path = data_dir().join(format!("lineitem_sf{}_by_month", scale_factor()));
    let location = path.display().to_string();
    if path.join("_dala").exists() {
        return location;
    }
    let input = lineitem_input(&lineitem_parquet());
    let options = WriteOptions::default().with_partition_by(["year", "month"]);
    Dataset::write_to(&location, input, &options)
        .await
        .expect("write lineitem dataset");
    location
}

/// A dataset of `files` one-row files in 1000 partitions, checkpointed (written once).
pub async fn many_files_dataset(files: usize) -> String {
    let path = data_dir().join(format!("many_files_{files}"));
    let location = path.display().to_string();
    if !path.join("_dala").exists() {
        write_many_files(&location, files)
            .await
            .expect("write many files");
    }
    location
}

/// Writes `files` one-row files (`id`, partition `part` = id % 1000) at `location`, and a
/// checkpoint, so that opening reads one file.
pub async fn write_many_files(location: &str, files: usize) -> dala_dataset::Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("part", DataType::Int32, false),
    ]));
    let chunk = 10_000usize;
    let input = (0..files).step_by(chunk).map(move |start| {
        let ids: Vec<i64> = (start as i64..(start + chunk).min(files) as i64).collect();
        let parts: Vec<i32> = ids.iter().map(|i| (i % 1000) as i32).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int32Array::from(parts)),
            ],
        )
    });
    let options = WriteOptions {
        partition_by: vec!["part".into()],
        max_rows_per_file: Some(1),
        max_open_files: 1024,
        ..WriteOptions::default()
    };
    let (dataset, _) = Dataset::builder(location).write(input, &options).await?;
    dataset.checkpoint().await
}
