//! Dtype optimization on real datasets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use dala_dataset::{Dataset, PROP_WRITE_DEFAULTS, WriteDefaults, WriteOptions};
use dala_optimize::{DtypeOptions, Evidence, execute_dtypes, plan_dtypes};

fn utc_nanos() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("small", DataType::Int64, false),
        Field::new("signed", DataType::Int64, true),
        Field::new("big", DataType::Int64, false),
        Field::new("half", DataType::Float64, false),
        Field::new("price", DataType::Float64, false),
        Field::new("at", utc_nanos(), false),
        Field::new("city", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// `n` rows starting at `from`.
fn rows(from: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..from + n).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            ids.iter()
                .map(|i| if i % 2 == 0 { "north" } else { "south" }),
        )),
        Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| 1 + i % 2))),
        Arc::new(Int64Array::from_iter(
            ids.iter().map(|i| (i % 5 != 0).then_some(i % 100 - 50)),
        )),
        Arc::new(Int64Array::from_iter_values(
            ids.iter().map(|i| 100_000 + i * 7),
        )),
        Arc::new(Float64Array::from_iter_values(
            ids.iter().map(|i| *i as f64 / 4.0),
        )),
        Arc::new(Float64Array::from_iter_values(
            ids.iter().map(|i| *i as f64 / 10.0 + 0.01),
        )),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(
                ids.iter().map(|i| (1_700_000_000 + i * 60) * 1_000_000_000),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            ids.iter()
                .map(|i| ["Oslo", "Lima", "Rome"][(*i % 3) as usize]),
        )),
        Arc::new(StringArray::from(vec![None::<&str>; ids.len()])),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

async fn dataset(dir: &tempfile::TempDir) -> Dataset {
    let location = dir.path().join("wide").display().to_string();
    let options = WriteOptions::default().with_partition_by(["region"]);
    for start in [0, 1000, 2000] {
        Dataset::write_to(&location, [Ok(rows(start, 1000))], &options)
            .await
            .unwrap();
    }
    Dataset::open(&location).await.unwrap()
}

/// Every row, sorted by `big`, each column cast back to `schema()`'s type.
async fn contents(dataset: &Dataset) -> RecordBatch {
    let batches = dataset.scan().collect().await.unwrap();
    let schema = schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let parts: Vec<ArrayRef> = batches
                .iter()
                .map(|b| cast(b.column_by_name(f.name()).unwrap(), f.data_type()).unwrap())
                .collect();
            let parts: Vec<&dyn arrow::array::Array> = parts.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&parts).unwrap()
        })
        .collect();
    let all = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let order = arrow::compute::sort_to_indices(all.column(3), None, None).unwrap();
    let all = arrow::compute::take_record_batch(&all, &order).unwrap();
    concat_batches(&schema, [&all]).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn columns_narrow_to_the_smallest_lossless_types_and_keep_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut dataset = dataset(&dir).await;
    let before = contents(&dataset).await;

    let plan = plan_dtypes(&dataset, &DtypeOptions::default())
        .await
        .unwrap();
    let column = |name: &str| plan.columns.iter().find(|c| c.column == name).unwrap();
    assert_eq!(column("small").after, DataType::UInt8, "{plan}");
    assert_eq!(column("small").evidence, Evidence::Index);
    assert_eq!(column("signed").after, DataType::Int8);
    assert_eq!(column("big").after, DataType::UInt32);
    assert_eq!(column("half").after, DataType::Float32);
    // 0.01 does not come back from a float32: the column stays as it is.
    assert_eq!(column("price").after, DataType::Float64);
    assert_eq!(
        column("at").after,
        DataType::Timestamp(TimeUnit::Second, Some("UTC".into()))
    );
    assert!(column("city").dictionary);
    assert_eq!(column("city").distinct, Some(3));
    assert!(column("note").all_null);
    assert_eq!(column("note").after, DataType::Utf8);
    assert!(
        plan.columns.iter().all(|c| c.column != "region"),
        "partition columns are not planned"
    );
    assert!(column("big").bytes > 0);
    assert!(plan.to_string().contains("UInt32"), "{plan}");

    let report = execute_dtypes(&dataset, &plan).await.unwrap();
    let version = report.version.unwrap();
    assert_eq!(report.files_removed, 6);
    dataset.reload().await.unwrap();
    assert_eq!(dataset.version(), version);
    let schema = dataset.schema();
    assert_eq!(
        schema.field_with_name("small").unwrap().data_type(),
        &DataType::UInt8
    );
    assert_eq!(
        schema.field_with_name("region").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(contents(&dataset).await, before, "values changed");
    let big = report.columns.iter().find(|c| c.column == "big").unwrap();
    assert!(big.bytes_after > 0, "{report}");

    // Later writes keep the city column dictionary-encoded.
    let defaults = WriteDefaults::parse(
        dataset
            .snapshot()
            .properties()
            .get(PROP_WRITE_DEFAULTS)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(defaults.columns["city"].dictionary, Some(true));

    // A second plan finds nothing more to do.
    let again = plan_dtypes(&dataset, &DtypeOptions::default())
        .await
        .unwrap();
    assert!(
        again.changed().all(|c| c.dictionary && c.before == c.after),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_that_a_value_does_not_fit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dataset(&dir).await;
    let files: Vec<String> = dataset.snapshot().files().map(|f| f.path.clone()).collect();
    let options = DtypeOptions {
        types: BTreeMap::from([("big".to_string(), DataType::UInt16)]),
        ..DtypeOptions::default()
    };
    let error = plan_dtypes(&dataset, &options).await.unwrap_err();
    assert!(
        error.to_string().contains("`big`") && error.to_string().contains("UInt16"),
        "{error}"
    );
    let reopened = Dataset::open(dataset.url()).await.unwrap();
    assert_eq!(reopened.version(), dataset.version());
    let after: Vec<String> = reopened
        .snapshot()
        .files()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(after, files);

    // Partition columns cannot be retyped.
    let options = DtypeOptions {
        include: vec!["region".into()],
        ..DtypeOptions::default()
    };
    assert!(plan_dtypes(&dataset, &options).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_write_between_plan_and_commit_is_a_conflict_with_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dataset(&dir).await;
    let options = DtypeOptions {
        include: vec!["big".into()],
        ..DtypeOptions::default()
    };
    let plan = plan_dtypes(&dataset, &options).await.unwrap();
    assert_eq!(plan.changed().count(), 1);
    // Another writer appends a value the new type would not hold.
    let mut other = Dataset::open(dataset.url()).await.unwrap();
    let mut huge = rows(5000, 1);
    let big: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX]));
    let mut columns = huge.columns().to_vec();
    columns[3] = big;
    huge = RecordBatch::try_new(schema(), columns).unwrap();
    other
        .write([Ok(huge)], &WriteOptions::default())
        .await
        .unwrap();

    let error = execute_dtypes(&dataset, &plan).await.unwrap_err();
    assert!(error.to_string().contains("conflict"), "{error}");
    let latest = Dataset::open(dataset.url()).await.unwrap();
    assert_eq!(latest.version(), other.version());
    assert_eq!(
        latest.schema().field_with_name("big").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(latest.scan().count_rows().await.unwrap(), 3001);
    // No file of the failed rewrite is left behind.
    let listed = std::fs::read_dir(dir.path().join("wide/region=north"))
        .unwrap()
        .count();
    let indexed = latest
        .snapshot()
        .files()
        .filter(|f| f.path.starts_with("region=north/"))
        .count();
    assert_eq!(listed, indexed);
}
