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
            .join("ds/_dala/00000000000000000200.checkpoint.parquet")
            .exists()
    );
}
