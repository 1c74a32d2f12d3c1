//! The compression and row-group advisor on real datasets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use dala_dataset::{Dataset, PROP_WRITE_DEFAULTS, WriteDefaults, WriteOptions};
use dala_optimize::{
    AccessPattern, CompactOptions, CompressionOptions, execute_compression, plan_compression,
};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("comment", DataType::Utf8, false),
        Field::new("day", DataType::Int64, false),
    ]))
}

fn rows(from: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..from + n).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.iter()
                    .map(|i| ["open", "shipped", "closed"][(i % 3) as usize]),
            )),
            Arc::new(StringArray::from_iter_values(ids.iter().map(|i| {
                format!("order {i} was placed by customer {}", i * 7919 % 1000)
            }))),
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 2))),
        ],
    )
    .unwrap()
}

/// Row count and the sum of ids.
async fn contents(dataset: &Dataset) -> (u64, i64) {
    let mut count = 0;
    let mut sum = 0;
    for batch in dataset.scan().collect().await.unwrap() {
        count += batch.num_rows() as u64;
        let id = batch.column_by_name("id").unwrap();
        sum += arrow::compute::sum(id.as_primitive::<Int64Type>()).unwrap_or(0);
    }
    (count, sum)
}

#[tokio::test(flavor = "multi_thread")]
async fn advice_is_measured_stored_as_write_defaults_and_applied_to_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("orders").display().to_string();
    let snappy = WriteOptions {
        compression: "snappy".parse().unwrap(),
        ..WriteOptions::default().with_partition_by(["day"])
    };
    for start in [0, 20_000] {
        Dataset::write_to(&location, [Ok(rows(start, 20_000))], &snappy)
            .await
            .unwrap();
    }
    let mut dataset = Dataset::open(&location).await.unwrap();
    let before = contents(&dataset).await;

    let options = CompressionOptions {
        sample_rows: 10_000,
        codecs: ["snappy", "zstd:3", "lz4"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect(),
        filter_columns: vec!["id".into(), "status".into()],
        access: AccessPattern::FullScan,
        rewrite: CompactOptions {
            rewrite_all: true,
            ..CompactOptions::default()
        },
        ..CompressionOptions::default()
    };
    let plan = plan_compression(&dataset, &options).await.unwrap();
    assert_eq!(plan.sample_rows, 10_000);
    assert_eq!(
        plan.columns.len(),
        3,
        "partition columns are not advised on"
    );
    for column in &plan.columns {
        assert_eq!(column.trials.len(), 6, "{plan}");
        let fastest = column.trials.iter().map(|t| t.decode).min().unwrap();
        let choice = column.choice();
        assert!(choice.decode <= fastest.mul_f64(1.25) + std::time::Duration::from_micros(200));
        assert!(column.trials.iter().all(|t| t.bytes > 0));
    }
    let advice = |name: &str| plan.columns.iter().find(|c| c.column == name).unwrap();
    assert!(advice("id").bloom_filter, "unique ids get a bloom filter");
    assert!(!advice("status").bloom_filter, "three values do not");
    assert!(!advice("comment").bloom_filter, "not a filter column");
    assert!(advice("status").distinct_share < 0.01);
    assert!(plan.row_group_size >= 1 << 17, "{plan}");
    assert!(plan.to_string().contains("comment"), "{plan}");

    let report = execute_compression(&mut dataset, &plan, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.rewrite.files_removed, 4, "{report}");
    assert!(report.scan_before.is_some() && report.scan_after.is_some());
    assert_eq!(contents(&dataset).await, before);

    // The advice is the dataset's write defaults, and later writes follow it.
    let stored = dataset
        .snapshot()
        .properties()
        .get(PROP_WRITE_DEFAULTS)
        .unwrap();
    assert_eq!(WriteDefaults::parse(stored).unwrap(), plan.defaults());
    dataset
        .write([Ok(rows(90_000, 100))], &WriteOptions::default())
        .await
        .unwrap();
    let newest = dataset
        .snapshot()
        .files()
        .find(|f| f.added_version == dataset.version())
        .unwrap()
        .clone();
    let footer = dataset.file_metadata(&newest).await.unwrap();
    let chunk = footer
        .row_group(0)
        .columns()
        .iter()
        .find(|c| c.column_path().string() == "comment")
        .unwrap();
    // Footers name the codec, not its level.
    assert_eq!(
        std::mem::discriminant(&chunk.compression()),
        std::mem::discriminant(&advice("comment").choice().compression.to_parquet().unwrap())
    );
    assert!(
        footer.row_group(0).columns()[0]
            .bloom_filter_offset()
            .is_some(),
        "id has a bloom filter"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_columns_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("orders").display().to_string();
    Dataset::write_to(&location, [Ok(rows(0, 100))], &WriteOptions::default())
        .await
        .unwrap();
    let dataset = Dataset::open(&location).await.unwrap();
    let options = CompressionOptions {
        filter_columns: vec!["nope".into()],
        ..CompressionOptions::default()
    };
    let error = plan_compression(&dataset, &options).await.unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
    let options = CompressionOptions {
        max_decode_slowdown: 0.5,
        ..CompressionOptions::default()
    };
    assert!(plan_compression(&dataset, &options).await.is_err());
}
