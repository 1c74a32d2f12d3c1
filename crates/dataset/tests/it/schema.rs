//! Schema modes: strict writes cast losslessly or refuse, naming the column; merging
//! writes add columns and widen types without rewriting old files.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use dala_dataset::{Dataset, Error, SchemaMode, WriteMode, WriteOptions, col, lit};

use crate::common::{location, rows};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

fn ints(values: &[i32]) -> ArrayRef {
    Arc::new(Int32Array::from(values.to_vec()))
}

fn longs(values: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

fn strings(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

async fn create(path: &str) -> Dataset {
    let first = batch(vec![
        ("id", longs(&[1, 2])),
        ("qty", ints(&[10, 20])),
        ("p", ints(&[0, 1])),
    ]);
    let options = WriteOptions::default().with_partition_by(["p"]);
    Dataset::builder(path)
        .write([Ok(first)], &options)
        .await
        .unwrap()
        .0
}

fn merge() -> WriteOptions {
    WriteOptions::default().with_schema_mode(SchemaMode::Merge)
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_writes_cast_losslessly_and_name_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = create(&path).await;
    // Int32 ids fit the Int64 column.
    let narrow = batch(vec![
        ("id", ints(&[3])),
        ("qty", ints(&[30])),
        ("p", ints(&[0])),
    ]);
    ds.write([Ok(narrow)], &WriteOptions::default())
        .await
        .unwrap();

    let extra = batch(vec![
        ("id", longs(&[4])),
        ("qty", ints(&[40])),
        ("p", ints(&[0])),
        ("note", strings(&["x"])),
    ]);
    let error = ds
        .write([Ok(extra)], &WriteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::SchemaMismatch { column, .. } if column == "note"),
        "{error}"
    );
    let wide = batch(vec![
        ("id", longs(&[4])),
        ("qty", longs(&[40])),
        ("p", ints(&[0])),
    ]);
    let error = ds
        .write([Ok(wide)], &WriteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::SchemaMismatch { column, expected, found }
            if column == "qty" && expected == "Int32" && found == "Int64"),
        "{error}"
    );
    let missing = batch(vec![("id", longs(&[4])), ("p", ints(&[0]))]);
    assert!(matches!(
        ds.write([Ok(missing)], &WriteOptions::default()).await,
        Err(Error::SchemaMismatch { column, .. }) if column == "qty"
    ));
    assert_eq!(ds.version(), 1);
    assert_eq!(ds.snapshot().rows(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn merging_adds_columns_and_widens_types_without_rewriting_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = create(&path).await;
    let files_before: Vec<String> = ds.snapshot().files().map(|f| f.path.clone()).collect();

    // A new column, and qty widened from Int32 to Int64.
    let wider = batch(vec![
        ("id", longs(&[3])),
        ("qty", longs(&[5_000_000_000])),
        ("note", strings(&["new"])),
        ("p", ints(&[1])),
    ]);
    let result = ds.write([Ok(wider)], &merge()).await.unwrap();
    assert_eq!(result.files_removed, 0);
    for f in &files_before {
        assert!(ds.snapshot().file(f).is_some(), "{f} was rewritten");
    }
    let schema = ds.schema();
    assert_eq!(
        schema.field_with_name("qty").unwrap().data_type(),
        &DataType::Int64
    );
    assert!(schema.field_with_name("note").unwrap().is_nullable());
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(
        rows(&got, &["id", "qty", "note"]),
        vec!["1|10|NULL", "2|20|NULL", "3|5000000000|new"]
    );
    // Filters on the new column see nulls in the old files.
    let scan = ds.scan().with_filter(col("note").is_null());
    assert_eq!(scan.count_rows().await.unwrap(), 2);
    let scan = ds.scan().with_filter(col("note").eq(lit("new")));
    assert_eq!(scan.count_rows().await.unwrap(), 1);

    // A later input without `note` gets nulls; it reopens with the new schema.
    let older = batch(vec![
        ("id", longs(&[4])),
        ("qty", ints(&[40])),
        ("p", ints(&[0])),
    ]);
    ds.write([Ok(older)], &merge()).await.unwrap();
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(reopened.schema(), ds.schema());
    assert_eq!(reopened.snapshot().rows(), 4);

    // Incompatible and narrowing changes are refused, naming the column.
    let text = batch(vec![
        ("id", longs(&[5])),
        ("qty", strings(&["many"])),
        ("p", ints(&[0])),
    ]);
    let error = ds.write([Ok(text)], &merge()).await.unwrap_err();
    assert!(
        matches!(&error, Error::SchemaMismatch { column, .. } if column == "qty"),
        "{error}"
    );
    let float = batch(vec![
        ("id", longs(&[5])),
        ("qty", Arc::new(Float32Array::from(vec![1.5])) as ArrayRef),
        ("p", ints(&[0])),
    ]);
    assert!(matches!(
        ds.write([Ok(float)], &merge()).await,
        Err(Error::SchemaMismatch { column, .. }) if column == "qty"
    ));
    assert_eq!(Dataset::open(&path).await.unwrap().version(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upsert_can_bring_a_new_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = create(&path).await;
    let changes = batch(vec![
        ("id", longs(&[2, 3])),
        ("qty", ints(&[21, 30])),
        ("note", strings(&["changed", "new"])),
        ("p", ints(&[1, 1])),
    ]);
    let options = WriteOptions {
        mode: WriteMode::Upsert,
        ..merge()
    }
    .with_key(["id"]);
    let result = ds.write([Ok(changes)], &options).await.unwrap();
    assert_eq!((result.rows_updated, result.rows_inserted), (1, 1));
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(
        rows(&got, &["id", "qty", "note"]),
        vec!["1|10|NULL", "2|21|changed", "3|30|new"]
    );
}

/// Whether a scan's files all hold the current schema, so that an engine may read them
/// without unifying schemas.
fn files_match(ds: &Dataset, filter: &str) -> bool {
    ds.scan()
        .with_filter_str(filter)
        .unwrap()
        .request()
        .unwrap()
        .files_match_schema()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_index_knows_which_files_hold_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = create(&path).await;
    assert_eq!(ds.snapshot().schema_since(), Some(0));
    assert!(files_match(&ds, "TRUE"));

    // A merging write that adds a column: the files before it lack the column.
    let extra = batch(vec![
        ("id", longs(&[3])),
        ("qty", ints(&[30])),
        ("p", ints(&[2])),
        ("note", strings(&["x"])),
    ]);
    ds.write([Ok(extra)], &merge()).await.unwrap();
    assert_eq!(ds.snapshot().schema_since(), Some(1));
    assert!(!files_match(&ds, "TRUE"));
    assert!(files_match(&ds, "p = 2"), "only the new file is scanned");

    // Writes under the same schema keep it; a checkpoint carries it.
    let more = batch(vec![
        ("id", longs(&[4])),
        ("qty", ints(&[40])),
        ("p", ints(&[3])),
        ("note", strings(&["y"])),
    ]);
    ds.write([Ok(more)], &WriteOptions::default())
        .await
        .unwrap();
    ds.checkpoint().await.unwrap();
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.snapshot().schema_since(), Some(1));
    assert!(files_match(&ds, "p >= 2"));
    assert!(!files_match(&ds, "p <= 2"));
    // Time travel to before the change: every file then held that version's schema.
    let before = Dataset::open_at(&path, 0).await.unwrap();
    assert!(files_match(&before, "TRUE"));
}
