//! Bad input and faults: typed errors that name the file or column, and no change.

use dala_dataset::{Dataset, Error, WriteOptions};

use crate::common::{self, batches, location, partitioned};

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_and_missing_data_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 500, &partitioned()).await;
    let files: Vec<String> = ds.snapshot().files().map(|f| f.path.clone()).collect();

    let corrupt = dir.path().join("ds").join(&files[0]);
    let size = std::fs::metadata(&corrupt).unwrap().len() as usize;
    std::fs::write(&corrupt, vec![7u8; size]).unwrap();
    let err = ds.scan().collect().await.unwrap_err();
    assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
    assert!(err.to_string().contains(&files[0]), "{err}");

    std::fs::remove_file(dir.path().join("ds").join(&files[1])).unwrap();
    let scan = ds.scan().with_filter_str(&format!(
        "year = {} AND region {}",
        files[1]
            .split('/')
            .next()
            .unwrap()
            .trim_start_matches("year="),
        match files[1]
            .split('/')
            .nth(1)
            .unwrap()
            .trim_start_matches("region=")
        {
            "__HIVE_DEFAULT_PARTITION__" => "IS NULL".to_string(),
            _ => format!(
                "= '{}'",
                ds.snapshot().file(&files[1]).unwrap().partition_values[1]
            ),
        }
    ));
    let err = scan.unwrap().collect().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&files[1]), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_log_entries_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;
    ds.write(batches(100, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    let log = dir.path().join("ds/_dala");
    let entry = log.join("00000000000000000001.json");
    let good = std::fs::read_to_string(&entry).unwrap();

    std::fs::write(&entry, &good[..good.len() / 2]).unwrap();
    let err = Dataset::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::CorruptLog { .. }), "{err}");
    assert!(
        err.to_string().contains("00000000000000000001.json"),
        "{err}"
    );

    let foreign = good.replacen("{", "{\"surprise\":1,", 1);
    std::fs::write(&entry, foreign).unwrap();
    let err = Dataset::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::CorruptLog { .. }), "{err}");
    assert!(err.to_string().contains("surprise"), "{err}");

    // A gap: version 2 exists but 1 does not.
    std::fs::write(&entry, &good).unwrap();
    ds.write(batches(200, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    std::fs::remove_file(&entry).unwrap();
    let err = Dataset::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::CorruptLog { .. }), "{err}");
    assert!(
        err.to_string().contains("gap") || err.to_string().contains("missing"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_errors_name_the_column_or_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 10, &partitioned()).await;
    let err = ds
        .scan()
        .with_filter_str("nope = 1")
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownColumn { ref column, .. } if column == "nope"),
        "{err}"
    );
    let err = ds.scan().with_filter_str("id = = 1").unwrap_err();
    assert!(
        matches!(err, Error::InvalidFilter { position: 5, .. }),
        "{err}"
    );
    let err = ds
        .scan()
        .with_columns(["id", "missing"])
        .collect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownColumn { ref column, .. } if column == "missing"),
        "{err}"
    );
    let err = Dataset::open(location(&dir, "absent")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}
