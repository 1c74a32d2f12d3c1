//! Test data and helpers shared by the integration tests.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dala_dataset::{Dataset, WriteOptions};

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("qty", DataType::Int32, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("day", DataType::Date32, false),
        Field::new("year", DataType::Int32, false),
        Field::new("region", DataType::Utf8, true),
    ]))
}

/// `n` rows with ids starting at `first_id`; values cycle so that every partition,
/// null and range appears.
pub fn batch(first_id: i64, n: usize) -> RecordBatch {
    let ids: Vec<i64> = (0..n as i64).map(|i| first_id + i).collect();
    let names = StringArray::from(
        ids.iter()
            .map(|i| (i % 7 != 0).then(|| format!("name-{:03}", i % 50)))
            .collect::<Vec<_>>(),
    );
    let qty = Int32Array::from(
        ids.iter()
            .map(|i| (i % 11 != 0).then_some((i % 40) as i32))
            .collect::<Vec<_>>(),
    );
    let price = Decimal128Array::from(
        ids.iter()
            .map(|i| (i % 13 != 0).then_some(((i * 37) % 100_000) as i128))
            .collect::<Vec<_>>(),
    )
    .with_precision_and_scale(10, 2)
    .unwrap();
    let day = Date32Array::from(
        ids.iter()
            .map(|i| 19_000 + (i % 730) as i32)
            .collect::<Vec<_>>(),
    );
    let year = Int32Array::from(
        ids.iter()
            .map(|i| 2020 + (i % 4) as i32)
            .collect::<Vec<_>>(),
    );
    let regions = ["north", "south", "east/west", "a=b%c"];
    let region = StringArray::from(
        ids.iter()
            .map(|i| (i % 9 != 0).then(|| regions[(*i as usize / 4) % regions.len()]))
            .collect::<Vec<_>>(),
    );
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(names),
        Arc::new(qty),
        Arc::new(price),
        Arc::new(day),
        Arc::new(year),
        Arc::new(region),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

pub fn batches(first_id: i64, n: usize, per_batch: usize) -> Vec<Result<RecordBatch, ArrowError>> {
    (0..n)
        .step_by(per_batch)
        .map(|start| Ok(batch(first_id + start as i64, per_batch.min(n - start))))
        .collect()
}

pub fn partitioned() -> WriteOptions {
    WriteOptions::default().with_partition_by(["year", "region"])
}

pub fn location(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

/// Every row of the batches as text, columns in the order given, sorted.
pub fn rows(batches: &[RecordBatch], columns: &[&str]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = columns
            .iter()
            .map(|c| {
                let array = batch
                    .column_by_name(c)
                    .unwrap_or_else(|| panic!("no column {c}"));
                ArrayFormatter::try_new(array.as_ref(), &options).unwrap()
            })
            .collect();
        for row in 0..batch.num_rows() {
            let fields: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            out.push(fields.join("|"));
        }
    }
    out.sort();
    out
}

pub fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
        })
        .collect();
    ids.sort_unstable();
    ids
}

pub async fn write(location: &str, first_id: i64, n: usize, options: &WriteOptions) -> Dataset {
    Dataset::builder(location)
        .write(batches(first_id, n, 1000), options)
        .await
        .unwrap()
        .0
}

/// The paths of the files under `root`, relative to it, with `/` between folders.
pub fn walk(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found
}
