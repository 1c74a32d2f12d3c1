//! Repartitioning: every row written again under new partition columns, in one commit.

use dala_dataset::{Dataset, Error, Operation, RewriteOptions, WriteOptions, col, lit};

use crate::common::{location, partitioned, rows, write};

const ALL: [&str; 7] = ["id", "name", "qty", "price", "day", "year", "region"];

#[tokio::test(flavor = "multi_thread")]
async fn repartitioning_keeps_every_row_and_prunes_by_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = write(&path, 0, 2000, &partitioned()).await;
    let before = rows(&ds.scan().collect().await.unwrap(), &ALL);
    // Keep replaced files, so that the old version stays readable.
    let keep = [("retention.seconds".to_string(), "3600".to_string())];
    ds.set_properties(keep.into_iter().collect()).await.unwrap();
    let old_version = ds.version();

    // By a derived month of `day`, and the region: year leaves the paths for the files.
    let options = RewriteOptions {
        write: WriteOptions {
            timestamp_column: Some("day".into()),
            ..WriteOptions::default()
        },
        ..RewriteOptions::default()
    };
    let result = ds
        .repartition(&["month".into(), "region".into()], &options)
        .await
        .unwrap();
    assert_eq!(result.rows_unchanged, 2000);
    ds.reload().await.unwrap();
    let names: Vec<&str> = ds
        .snapshot()
        .partitioning()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["month", "region"]);
    assert!(ds.schema().field_with_name("year").is_ok());
    assert!(ds.snapshot().files().all(|f| f.path.starts_with("month=")));
    assert_eq!(rows(&ds.scan().collect().await.unwrap(), &ALL), before);
    assert_eq!(
        ds.history().await.unwrap()[0].operation,
        Operation::Repartition
    );

    // The new columns prune; the old one is a data column now.
    let scan = ds.scan().with_filter(col("month").eq(lit(3)));
    let explain = scan.explain().await.unwrap();
    assert!(explain.files_pruned_by_partition > 0, "{explain:?}");
    let march = scan.count_rows().await.unwrap();
    assert!(march > 0);
    let in_2021 = ds.scan().with_filter(col("year").eq(lit(2021)));
    assert_eq!(in_2021.count_rows().await.unwrap(), 500);

    // The old version reads as it was; a reopened handle sees the new layout, and later
    // writes derive the month themselves.
    let old = Dataset::open_at(&path, old_version).await.unwrap();
    assert_eq!(rows(&old.scan().collect().await.unwrap(), &ALL), before);
    let mut reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(reopened.snapshot().partitioning().len(), 2);
    let more = crate::common::batch(5000, 10);
    reopened
        .write([Ok(more)], &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(reopened.scan().count_rows().await.unwrap(), 2010);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_write_or_a_bad_column_leaves_the_dataset_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = write(&path, 0, 500, &partitioned()).await;
    let unknown = ds
        .repartition(&["nope".into()], &RewriteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(&unknown, Error::UnknownColumn { column, .. } if column == "nope"));
    let same = ds
        .repartition(
            &["year".into(), "region".into()],
            &RewriteOptions::default(),
        )
        .await;
    assert!(same.is_err());

    let mut other = Dataset::open(&path).await.unwrap();
    other
        .write(
            [Ok(crate::common::batch(9000, 5))],
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let error = ds
        .repartition(&["region".into()], &RewriteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CommitConflict { .. }), "{error}");
    let latest = Dataset::open(&path).await.unwrap();
    assert_eq!(latest.version(), other.version());
    assert_eq!(latest.snapshot().partitioning().len(), 2);
    assert_eq!(latest.scan().count_rows().await.unwrap(), 505);
    // The new files of the failed attempt are gone: the folder holds the index's files.
    let mut on_disk = 0;
    for entry in walk(dir.path().join("ds")) {
        if entry.extension().is_some_and(|e| e == "parquet") {
            on_disk += 1;
        }
    }
    assert_eq!(on_disk, latest.snapshot().files().len());
}

fn walk(root: std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "_dala") {
                    stack.push(path);
                }
            } else {
                out.push(path);
            }
        }
    }
    out
}
