//! Concurrent writers: every committed row exactly once.

use dala_dataset::{Dataset, WriteOptions};

use crate::common::{self, batches, ids, location, partitioned};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_append_two_hundred_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    common::write(&path, 0, 8, &partitioned()).await;
    let writers: Vec<_> = (0..8i64)
        .map(|w| {
            let path = path.clone();
            tokio::spawn(async move {
                // Each writer keeps its own, increasingly stale, view of the dataset.
                let mut ds = Dataset::open(&path).await.unwrap();
                for i in 0..25i64 {
                    let first = 1000 + (w * 25 + i) * 10;
                    ds.write(batches(first, 10, 10), &WriteOptions::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.version(), 200);
    let mut expected: Vec<i64> = (0..8).collect();
    expected.extend(1000..1000 + 200 * 10);
    assert_eq!(ids(&ds.scan().collect().await.unwrap()), expected);
    let history = ds.history().await.unwrap();
    assert_eq!(history.len(), 201);
    assert!(
        dir.path()
            .join("ds/_dala/00000000000000000200.checkpoint")
            .exists()
    );
}

/// A merge whose files a concurrent commit removed (and, with no retention, deleted)
/// while it read them fails with a conflict that changes nothing, not with a missing file.
#[tokio::test(flavor = "multi_thread")]
async fn a_merge_whose_files_were_removed_under_it_is_a_conflict() {
    use dala_dataset::{Error, WriteMode};

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    common::write(&path, 0, 100, &partitioned()).await;
    let mut stale = Dataset::open(&path).await.unwrap();
    let mut other = Dataset::open(&path).await.unwrap();
    let overwrite = WriteOptions {
        mode: WriteMode::Overwrite,
        ..WriteOptions::default()
    };
    other.write(batches(0, 50, 50), &overwrite).await.unwrap();
    let upsert = WriteOptions {
        mode: WriteMode::Upsert,
        ..WriteOptions::default()
    }
    .with_key(["id"]);
    let err = stale.write(batches(10, 5, 5), &upsert).await.unwrap_err();
    assert!(
        matches!(err, Error::CommitConflict { version: 1, .. }),
        "{err}"
    );
    let err = stale
        .delete(dala_dataset::col("id").lt(dala_dataset::lit(5i64)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CommitConflict { .. }), "{err}");
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.version(), 1);
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..50).collect::<Vec<_>>()
    );
}
