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

/// P9's input for the lineitem dataset at `location`: 5 000 rows of three months with a
/// new `l_comment` (updates) and 5 000 copies of other rows of those months with keys beyond
/// every order (inserts).
pub async fn upsert_changes(location: &str) -> dala_dataset::Result<RecordBatch> {
    use arrow::array::{ArrayRef, StringArray};
    use arrow::compute::concat_batches;

    let dataset = Dataset::open(location).await?;
    let mut updates = Vec::new();
    let mut inserts = Vec::new();
    for (year, month) in [(1995, 3), (1996, 7), (1997, 11)] {
        let filter = format!("year = {year} AND month = {month}");
        let rows = dataset
            .scan()
            .with_filter_str(&filter)?
            .with_limit(3334)
            .collect()
            .await?;
        let rows = concat_batches(&dataset.schema(), &rows)?;
        let half = rows.num_rows() / 2;
        updates.push(rows.slice(0, half.min(1667)));
        inserts.push(rows.slice(half, (rows.num_rows() - half).min(1667)));
    }
    let schema = dataset.schema();
    let mut updates = concat_batches(&schema, &updates)?;
    let mut inserts = concat_batches(&schema, &inserts)?;
    let comment = schema.index_of("l_comment")?;
    let mut columns = updates.columns().to_vec();
    columns[comment] =
        Arc::new(StringArray::from(vec!["updated by P9"; updates.num_rows()])) as ArrayRef;
    updates = RecordBatch::try_new(schema.clone(), columns)?;
    let key = schema.index_of("l_orderkey")?;
    let mut columns = inserts.columns().to_vec();
    let keys = inserts
        .column(key)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|k| {
            k.iter()
                .map(|v| v.map(|v| v + 1_000_000_000))
                .collect::<Int64Array>()
        })
        .ok_or_else(|| dala_dataset::Error::InvalidArgument("l_orderkey is not Int64".into()))?;
    columns[key] = Arc::new(keys);
    inserts = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(concat_batches(&schema, &[updates, inserts])?)
}

/// Copies a directory tree (a dataset) to `to`.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
