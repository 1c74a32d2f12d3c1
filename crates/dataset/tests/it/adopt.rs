//! Adopting hive trees written by other tools, and `refresh` for files added later.

use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use dala_dataset::{Dataset, Error, Operation, WriteOptions};
use parquet::arrow::ArrowWriter;

use crate::common::{self, ids};

/// Writes `batch` less the partition columns to `dir/name`, as pyarrow or Spark would.
fn write_plain(dir: &Path, name: &str, batch: &RecordBatch) {
    std::fs::create_dir_all(dir).unwrap();
    let keep: Vec<usize> = (0..5).collect(); // id, name, qty, price, day
    let batch = batch.project(&keep).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(dir.join(name)).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn adopts_a_foreign_hive_tree_and_syncs_new_files_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("foreign");
    for year in 2020..2023 {
        let part = root.join(format!("year={year}")).join("country=N%2FA");
        let batch = common::batch((year as i64 - 2020) * 100, 100);
        write_plain(&part, "part-0.parquet", &batch);
    }
    // Sidecars and markers are not data.
    std::fs::write(root.join("_SUCCESS"), b"").unwrap();
    std::fs::write(root.join("_metadata"), b"not parquet").unwrap();
    std::fs::write(root.join("year=2020").join("_file_metadata"), b"x").unwrap();

    let path = root.display().to_string();
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.version(), 0);
    let partitioning = ds.snapshot().partitioning();
    assert_eq!(partitioning.len(), 2);
    assert_eq!(partitioning[0].name, "year");
    assert_eq!(partitioning[0].data_type, DataType::Int32);
    assert_eq!(partitioning[1].data_type, DataType::Utf8);
    assert_eq!(ds.history().await.unwrap()[0].operation, Operation::Adopt);
    // Files dala did not write are not taken to hold its schema exactly.
    assert_eq!(ds.snapshot().schema_since(), Some(1));
    assert!(!ds.scan().request().unwrap().files_match_schema());
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..300).collect::<Vec<_>>()
    );
    let got = ds
        .scan()
        .with_filter_str("country = 'N/A' AND year = 2021")
        .unwrap()
        .count_rows()
        .await
        .unwrap();
    assert_eq!(got, 100);

    // A file added behind dala's back stays invisible until refresh.
    write_plain(
        &root.join("year=2023").join("country=N%2FA"),
        "late.parquet",
        &common::batch(300, 50),
    );
    let mut ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.snapshot().rows(), 300);
    let result = ds.refresh().await.unwrap();
    assert_eq!(result.version, Some(1));
    assert_eq!(result.files_added, 1);
    assert_eq!(ds.snapshot().schema_since(), Some(2));
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..350).collect::<Vec<_>>()
    );
    assert_eq!(ds.refresh().await.unwrap().version, None, "nothing new");
}

#[tokio::test(flavor = "multi_thread")]
async fn adoption_refuses_files_with_another_schema() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mixed");
    write_plain(&root.join("k=1"), "a.parquet", &common::batch(0, 10));
    let other = common::batch(0, 10).project(&[0, 1]).unwrap();
    std::fs::create_dir_all(root.join("k=2")).unwrap();
    let mut writer = ArrowWriter::try_new(
        File::create(root.join("k=2/b.parquet")).unwrap(),
        other.schema(),
        None,
    )
    .unwrap();
    writer.write(&other).unwrap();
    writer.close().unwrap();
    let err = Dataset::open(root.display().to_string()).await.unwrap_err();
    assert!(
        matches!(err, dala_dataset::Error::SchemaMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("b.parquet") || err.to_string().contains("a.parquet"),
        "{err}"
    );
    assert!(!root.join("_dala").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn files_of_a_dala_writer_creating_the_dataset_are_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("creating");
    write_plain(&root.join("k=1"), "a.parquet", &common::batch(0, 10));
    // A writer creating a dataset announces itself in `_dala/` before its data files.
    std::fs::create_dir_all(root.join("_dala/_creating")).unwrap();
    std::fs::write(root.join("_dala/_creating/0193"), b"{}").unwrap();
    let err = Dataset::open(root.display().to_string()).await.unwrap_err();
    assert!(matches!(err, dala_dataset::Error::NotFound { .. }), "{err}");
    // A write creates the dataset with its own rows only.
    let path = root.display().to_string();
    let result = Dataset::write_to(
        &path,
        crate::common::batches(100, 5, 5),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(result.version, Some(0));
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (100..105).collect::<Vec<_>>()
    );
}

/// Every file under `root`, relative to it, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut files = common::walk(root);
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_indexed_in_memory_is_left_as_it_was_and_takes_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("foreign");
    for year in 2020..2022 {
        let batch = common::batch((year as i64 - 2020) * 100, 100);
        write_plain(&root.join(format!("year={year}")), "part-0.parquet", &batch);
    }
    let before = tree(&root);
    let path = root.display().to_string();

    let ds = Dataset::builder(&path)
        .adopt_in_memory()
        .open()
        .await
        .unwrap();
    assert!(!ds.snapshot().is_committed());
    assert_eq!(ds.version(), 0);
    assert_eq!(ds.snapshot().partitioning()[0].name, "year");
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..200).collect::<Vec<_>>()
    );
    assert_eq!(tree(&root), before, "indexing in memory wrote something");

    // A write on it would start a log without version 0: refused, nothing written.
    let mut ds = ds;
    // Rows of the folder's columns (the partition column included), else the write would
    // stop at the schema.
    let rows = common::batch(500, 10).project(&[0, 1, 2, 3, 4, 5]).unwrap();
    let refused = ds.write([Ok(rows)], &WriteOptions::default()).await;
    match refused {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("no dala log"), "{message}")
        }
        other => panic!("expected the write to be refused, got {other:?}"),
    }
    assert_eq!(tree(&root), before);

    // Opening it as usual adopts it; on a folder with a log the option changes nothing.
    let adopted = Dataset::open(&path).await.unwrap();
    assert!(adopted.snapshot().is_committed());
    assert_eq!(
        adopted.history().await.unwrap()[0].operation,
        Operation::Adopt
    );
    let again = Dataset::builder(&path)
        .adopt_in_memory()
        .open()
        .await
        .unwrap();
    assert!(again.snapshot().is_committed());
    assert_eq!(again.snapshot().rows(), 200);
}
