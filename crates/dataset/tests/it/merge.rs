//! Write modes that match rows by key (insert, update, upsert), delete, and partition
//! overwrite: what they count, what they rewrite, and what they leave alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use dala_dataset::{Dataset, Error, WriteMode, WriteOptions, col, lit};

use crate::common::{self, batch, ids, location, partitioned, rows};

/// `batch(first, n)` with `name` replaced by `f(id)`.
fn renamed(first: i64, n: usize, f: impl Fn(i64) -> Option<String>) -> RecordBatch {
    let b = batch(first, n);
    let ids = b
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .clone();
    let names: StringArray = ids.iter().map(|id| f(id.unwrap())).collect();
    with_column(&b, "name", Arc::new(names))
}

fn with_column(b: &RecordBatch, name: &str, array: ArrayRef) -> RecordBatch {
    let schema = b.schema();
    let index = schema.index_of(name).unwrap();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[index] = Field::new(name, array.data_type().clone(), fields[index].is_nullable());
    let mut columns = b.columns().to_vec();
    columns[index] = array;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn merge_options(mode: WriteMode) -> WriteOptions {
    WriteOptions {
        mode,
        ..partitioned()
    }
    .with_key(["id"])
}

fn paths(ds: &Dataset) -> BTreeSet<String> {
    ds.snapshot().files().map(|f| f.path.clone()).collect()
}

fn names_of(batches: &[RecordBatch], id: i64) -> Vec<String> {
    rows(batches, &["id", "name"])
        .into_iter()
        .filter(|r| r.starts_with(&format!("{id}|")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_counts_updates_inserts_and_unchanged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    // 90..95 change their name, 95..100 are sent as they are, 100..110 are new.
    let changed = renamed(90, 5, |id| Some(format!("changed-{id}")));
    let same = batch(95, 5);
    let new = batch(100, 10);
    let result = ds
        .write(
            [Ok(changed), Ok(same), Ok(new)],
            &merge_options(WriteMode::Upsert),
        )
        .await
        .unwrap();
    assert_eq!(result.version, Some(1));
    assert_eq!(
        (
            result.rows_inserted,
            result.rows_updated,
            result.rows_unchanged,
            result.rows_deleted
        ),
        (10, 5, 5, 0)
    );
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(ids(&got), (0..110).collect::<Vec<_>>());
    assert_eq!(names_of(&got, 92), vec!["92|changed-92".to_string()]);
    assert_eq!(names_of(&got, 96), vec!["96|name-046".to_string()]);
    assert_eq!(
        ds.history().await.unwrap()[0].operation.to_string(),
        "upsert"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn insert_adds_only_absent_keys_and_a_no_op_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    let before = paths(&ds);
    // Present keys with other values are left alone: insert never replaces.
    let present = renamed(10, 20, |_| Some("ignored".into()));
    let result = ds
        .write([Ok(present.clone())], &merge_options(WriteMode::Insert))
        .await
        .unwrap();
    assert_eq!(result.version, None);
    assert_eq!((result.rows_inserted, result.rows_unchanged), (0, 20));
    assert_eq!((result.files_added, result.files_removed), (0, 0));
    assert_eq!(ds.version(), 0);
    assert_eq!(paths(&ds), before);

    // Without a key, the key is the whole row: a changed name is a new row.
    let options = WriteOptions {
        mode: WriteMode::Insert,
        ..partitioned()
    };
    let result = ds
        .write([Ok(present), Ok(batch(0, 5))], &options)
        .await
        .unwrap();
    assert_eq!((result.rows_inserted, result.rows_unchanged), (20, 5));
    assert_eq!(ds.snapshot().rows(), 120);
    assert!(paths(&ds).is_superset(&before), "insert rewrote a file");
}

#[tokio::test(flavor = "multi_thread")]
async fn update_rewrites_only_files_holding_a_changed_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 1000, &partitioned()).await;
    let before = paths(&ds);
    // id 4 lives in year=2020/region=south: one file.
    let target = ds
        .snapshot()
        .files()
        .filter(|f| f.partition_dir() == "year=2020/region=south")
        .count();
    assert_eq!(target, 1);
    let update = renamed(4, 1, |_| Some("updated".into()));
    let unknown = batch(5000, 3);
    let result = ds
        .write([Ok(update), Ok(unknown)], &merge_options(WriteMode::Update))
        .await
        .unwrap();
    assert_eq!(
        (
            result.rows_updated,
            result.rows_inserted,
            result.files_removed
        ),
        (1, 0, 1)
    );
    let after = paths(&ds);
    assert_eq!(before.difference(&after).count(), 1);
    let removed = before.difference(&after).next().unwrap();
    assert!(removed.starts_with("year=2020/region=south/"), "{removed}");
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(ids(&got), (0..1000).collect::<Vec<_>>());
    assert_eq!(names_of(&got, 4), vec!["4|updated".to_string()]);

    // Updating with the same values changes nothing.
    let version = ds.version();
    let same = renamed(4, 1, |_| Some("updated".into()));
    let result = ds
        .write([Ok(same)], &merge_options(WriteMode::Update))
        .await
        .unwrap();
    assert_eq!((result.version, result.rows_unchanged), (None, 1));
    assert_eq!(ds.version(), version);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_composite_null_safe_and_the_last_input_row_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Utf8, true),
        Field::new("b", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let make = |a: Vec<Option<&str>>, b: Vec<Option<i64>>, v: Vec<i64>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(a)) as ArrayRef,
                Arc::new(Int64Array::from(b)),
                Arc::new(Int64Array::from(v)),
            ],
        )
        .unwrap()
    };
    let initial = make(
        vec![Some("x"), Some("x"), None, Some("ü")],
        vec![Some(1), Some(2), Some(1), None],
        vec![10, 20, 30, 40],
    );
    let (mut ds, _) = Dataset::builder(&path)
        .write([Ok(initial)], &WriteOptions::default())
        .await
        .unwrap();
    let options = WriteOptions {
        mode: WriteMode::Upsert,
        ..WriteOptions::default()
    }
    .with_key(["a", "b"]);
    // (null, 1) and ("ü", null) match by null-safe equality; ("x", 1) is sent twice and
    // the last one wins; ("x", 3) is new.
    let input = make(
        vec![None, Some("ü"), Some("x"), Some("x"), Some("x")],
        vec![Some(1), None, Some(1), Some(1), Some(3)],
        vec![31, 41, 11, 12, 50],
    );
    let result = ds.write([Ok(input)], &options).await.unwrap();
    assert_eq!((result.rows_updated, result.rows_inserted), (3, 1));
    let got = rows(&ds.scan().collect().await.unwrap(), &["a", "b", "v"]);
    assert_eq!(
        got,
        vec!["NULL|1|31", "x|1|12", "x|2|20", "x|3|50", "ü|NULL|41"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_whose_partition_changes_moves_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    // id 4 is in year 2020; send it with year 2023.
    let moved = with_column(&batch(4, 1), "year", Arc::new(Int32Array::from(vec![2023])));
    let result = ds
        .write([Ok(moved)], &merge_options(WriteMode::Upsert))
        .await
        .unwrap();
    assert_eq!((result.rows_updated, result.rows_inserted), (1, 0));
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(ids(&got), (0..100).collect::<Vec<_>>());
    let row4: Vec<String> = rows(&got, &["id", "year"])
        .into_iter()
        .filter(|r| r.starts_with("4|"))
        .collect();
    assert_eq!(row4, vec!["4|2023".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn input_columns_are_cast_to_the_dataset_types_when_lossless() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]));
    let initial = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            Arc::new(Int64Array::from(vec![10, 20])),
        ],
    )
    .unwrap();
    let (mut ds, _) = Dataset::builder(&path)
        .write([Ok(initial)], &WriteOptions::default())
        .await
        .unwrap();
    let narrow = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int32, true),
        Field::new("id", DataType::Int32, false),
    ]));
    let input = RecordBatch::try_new(
        narrow,
        vec![
            Arc::new(Int32Array::from(vec![21, 30])) as ArrayRef,
            Arc::new(Int32Array::from(vec![2, 3])),
        ],
    )
    .unwrap();
    let options = WriteOptions {
        mode: WriteMode::Upsert,
        ..WriteOptions::default()
    }
    .with_key(["id"]);
    ds.write([Ok(input)], &options).await.unwrap();
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(got[0].schema().field(1).data_type(), &DataType::Int64);
    assert_eq!(rows(&got, &["id", "v"]), vec!["1|10", "2|21", "3|30"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_drops_whole_files_unread_and_rewrites_partial_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 1000, &partitioned()).await;
    let files_2021 = ds
        .snapshot()
        .files()
        .filter(|f| f.partition_dir().starts_with("year=2021/"))
        .count() as u64;
    // Whole partitions: files dropped, nothing written.
    let result = ds.delete(col("year").eq(lit(2021))).await.unwrap();
    assert_eq!(result.rows_deleted, 250);
    assert_eq!((result.files_removed, result.files_added), (files_2021, 0));
    // Part of files: rewritten without the rows.
    let result = ds.delete(col("id").lt(lit(100_i64))).await.unwrap();
    assert_eq!(result.rows_deleted, 75);
    assert!(result.files_added > 0);
    // Nothing matches: nothing committed.
    let version = ds.version();
    let result = ds.delete(col("id").gt(lit(5000_i64))).await.unwrap();
    assert_eq!((result.version, result.rows_deleted), (None, 0));
    assert_eq!(ds.version(), version);

    let expected: Vec<i64> = (100..1000).filter(|i| i % 4 != 1).collect();
    assert_eq!(ids(&ds.scan().collect().await.unwrap()), expected);
    assert_eq!(ds.snapshot().rows(), expected.len() as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn floats_filter_and_delete_with_nan_and_negative_zero_as_sql_engines_do() {
    use arrow::array::Float64Array;
    // NaN is greater than every number, whatever its sign; -0.0 equals 0.0. Parquet's
    // statistics leave NaN out of the bounds (here [-0.0, 5.0]), so neither the scan nor a
    // delete may decide on the bounds alone what a NaN does.
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(Float64Array::from(vec![-0.0, 5.0, f64::NAN, -f64::NAN])),
        ],
    )
    .unwrap();
    let (mut ds, _) = Dataset::builder(&path)
        .write([Ok(batch)], &WriteOptions::default())
        .await
        .unwrap();
    let matching = |filter: &str| {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        async move { ids(&scan.collect().await.unwrap()) }
    };
    assert_eq!(matching("x > 100").await, [3, 4]);
    assert_eq!(matching("x = 0").await, [1]);
    assert_eq!(matching("x < 0").await, Vec::<i64>::new());
    assert_eq!(matching("x <= 5").await, [1, 2]);
    // Every bound is below 1000, but the NaNs are not: the file is rewritten, not dropped.
    let result = ds.delete(col("x").lt(lit(1000.0))).await.unwrap();
    assert_eq!(result.rows_deleted, 2);
    assert_eq!(ids(&ds.scan().collect().await.unwrap()), [3, 4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upsert_by_a_nan_key_updates_its_row_instead_of_adding_one() {
    use arrow::array::Float64Array;
    // The file's statistics bound its keys by [1.0, 2.0], leaving its NaN out.
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let rows_of = |x: Vec<f64>, v: Vec<i64>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(x)),
                Arc::new(Int64Array::from(v)),
            ],
        )
        .unwrap()
    };
    let (mut ds, _) = Dataset::builder(&path)
        .write(
            [Ok(rows_of(vec![1.0, 2.0, f64::NAN], vec![1, 2, 3]))],
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let options = WriteOptions {
        mode: WriteMode::Upsert,
        ..WriteOptions::default()
    }
    .with_key(["x"]);
    let input = rows_of(vec![f64::NAN], vec![30]);
    ds.write([Ok(input)], &options).await.unwrap();
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(rows(&got, &["x", "v"]), vec!["1.0|1", "2.0|2", "NaN|30"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_partitions_leaves_other_partitions_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 1000, &partitioned()).await;
    let untouched: BTreeSet<String> = ds
        .snapshot()
        .files()
        .filter(|f| !f.partition_dir().starts_with("year=2020/"))
        .map(|f| f.path.clone())
        .collect();
    // Rows of year 2020 only (ids divisible by 4).
    let input: Vec<_> = (0..50).map(|i| Ok(batch(10_000 + 4 * i, 1))).collect();
    let options = WriteOptions {
        mode: WriteMode::OverwritePartitions,
        ..partitioned()
    };
    let result = ds.write(input, &options).await.unwrap();
    assert_eq!(result.rows_inserted, 50);
    let after = paths(&ds);
    assert!(after.is_superset(&untouched));
    let got = ids(&ds.scan().collect().await.unwrap());
    // Year-2020 rows are those of the input, in the partitions it had rows for.
    let replaced: BTreeSet<String> = ds
        .snapshot()
        .files()
        .filter(|f| !untouched.contains(&f.path))
        .map(|f| f.partition_dir().to_string())
        .collect();
    assert!(replaced.iter().all(|d| d.starts_with("year=2020/")));
    assert!(got.iter().filter(|&&id| id >= 10_000).count() == 50);
    assert_eq!(
        ds.history().await.unwrap()[0].operation.to_string(),
        "overwrite-partitions"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_into_a_missing_dataset_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let input = [Ok(batch(0, 10)), Ok(batch(5, 10))];
    let result = Dataset::write_to(&path, input, &merge_options(WriteMode::Upsert))
        .await
        .unwrap();
    assert_eq!((result.version, result.rows_inserted), (Some(0), 15));
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..15).collect::<Vec<_>>()
    );

    let other = location(&dir, "none");
    // An update has nothing to change in a dataset that does not exist, and creates none.
    let result =
        Dataset::write_to(&other, [Ok(batch(0, 3))], &merge_options(WriteMode::Update)).await;
    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
    assert!(Dataset::open(&other).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_merges_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    let listing = || {
        let mut files: Vec<_> = walk(&dir.path().join("ds"));
        files.sort();
        files
    };
    let before = listing();

    let no_key = WriteOptions {
        mode: WriteMode::Upsert,
        ..partitioned()
    };
    assert!(matches!(
        ds.write([Ok(batch(0, 3))], &no_key).await,
        Err(Error::InvalidArgument(_))
    ));
    let bad_key = merge_options(WriteMode::Upsert).with_key(["nope"]);
    assert!(matches!(
        ds.write([Ok(batch(0, 3))], &bad_key).await,
        Err(Error::UnknownColumn { column, .. }) if column == "nope"
    ));
    let wrong_type = with_column(
        &batch(0, 3),
        "qty",
        Arc::new(Int64Array::from(vec![1_i64, 2, 3])),
    );
    assert!(matches!(
        ds.write([Ok(wrong_type)], &merge_options(WriteMode::Upsert)).await,
        Err(Error::SchemaMismatch { column, .. }) if column == "qty"
    ));
    assert!("merge".parse::<WriteMode>().is_err());
    assert_eq!(ds.version(), 0);
    assert_eq!(listing(), before);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn merges_conflict_only_when_their_keys_could_collide() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 1000, &partitioned()).await;
    // Two writers start from version 0.
    let mut first = Dataset::open(&path).await.unwrap();
    let mut second = ds.clone();
    // The first appends ids 2000..2010; the second upserts ids 2005..2006: they could
    // collide, so the second must fail rather than duplicate a key.
    first
        .write([Ok(batch(2000, 10))], &partitioned())
        .await
        .unwrap();
    let clash = second
        .write([Ok(batch(2005, 1))], &merge_options(WriteMode::Upsert))
        .await;
    assert!(
        matches!(clash, Err(Error::CommitConflict { .. })),
        "{clash:?}"
    );
    // An upsert of keys far from what was appended commits on top of it.
    let mut third = ds.clone();
    let done = third
        .write(
            [Ok(renamed(3, 1, |_| Some("x".into())))],
            &merge_options(WriteMode::Upsert),
        )
        .await
        .unwrap();
    assert_eq!(done.version, Some(2));
    let latest = Dataset::open(&path).await.unwrap();
    let got = ids(&latest.scan().collect().await.unwrap());
    let expected: Vec<i64> = (0..1000).chain(2000..2010).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn partition_overwrites_conflict_only_in_the_partitions_they_replace() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 1000, &partitioned()).await;
    let replace = WriteOptions {
        mode: WriteMode::OverwritePartitions,
        ..partitioned()
    };
    // id 4: year 2020, region south; id 5: year 2021, region south.
    let mut appender = ds.clone();
    appender
        .write([Ok(batch(4004, 1))], &partitioned())
        .await
        .unwrap();
    let mut same_partition = ds.clone();
    let clash = same_partition.write([Ok(batch(8004, 1))], &replace).await;
    assert!(
        matches!(clash, Err(Error::CommitConflict { .. })),
        "{clash:?}"
    );
    let mut other_partition = ds.clone();
    let done = other_partition
        .write([Ok(batch(8005, 1))], &replace)
        .await
        .unwrap();
    assert_eq!(done.version, Some(2));
}
