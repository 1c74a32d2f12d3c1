//! Compaction, vacuum and stats on real datasets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use dala_dataset::{Dataset, SortColumn, WriteMode, WriteOptions, col, lit};
use dala_optimize::{
    CompactOptions, DeleteReason, VacuumOptions, execute_compaction, execute_vacuum,
    plan_compaction, plan_vacuum, stats,
};
use proptest::prelude::*;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, true),
    ]))
}

/// Rows `ids`, in regions "north"/"south" by parity, amount = id * 3 (null every 7th).
fn rows(ids: impl IntoIterator<Item = i64>) -> RecordBatch {
    let ids: Vec<i64> = ids.into_iter().collect();
    let regions: Vec<&str> = ids
        .iter()
        .map(|i| if i % 2 == 0 { "north" } else { "south" })
        .collect();
    let amounts: Vec<Option<i64>> = ids.iter().map(|i| (i % 7 != 0).then_some(i * 3)).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(regions)),
            Arc::new(Int64Array::from(amounts)),
        ],
    )
    .unwrap()
}

fn by_region() -> WriteOptions {
    WriteOptions::default().with_partition_by(["region"])
}

/// Sorted ids and the sum of amounts.
async fn contents(dataset: &Dataset) -> (Vec<i64>, i64) {
    let batches = dataset.scan().collect().await.unwrap();
    let mut ids = Vec::new();
    let mut sum = 0;
    for batch in &batches {
        let schema = batch.schema();
        let id = batch.column(schema.index_of("id").unwrap());
        ids.extend(id.as_primitive::<Int64Type>().values().iter().copied());
        let amount = batch.column(schema.index_of("amount").unwrap());
        sum += arrow::compute::sum(amount.as_primitive::<Int64Type>()).unwrap_or(0);
    }
    ids.sort_unstable();
    (ids, sum)
}

/// A dataset of `appends` small appends of 10 rows each, partitioned by region.
async fn fragmented(dir: &tempfile::TempDir, appends: i64) -> Dataset {
    let location = dir.path().join("events").display().to_string();
    for i in 0..appends {
        Dataset::write_to(&location, [Ok(rows(i * 10..i * 10 + 10))], &by_region())
            .await
            .unwrap();
    }
    Dataset::open(&location).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_keeps_every_row_and_leaves_big_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut dataset = fragmented(&dir, 12).await;
    // One big file in the north partition, near the target: it stays as it is.
    let big = rows((10_000..60_000).map(|i| i * 2));
    dataset.write(vec![Ok(big)], &by_region()).await.unwrap();
    let before = contents(&dataset).await;
    let big_file = dataset
        .snapshot()
        .files()
        .max_by_key(|f| f.size)
        .unwrap()
        .clone();
    let options = CompactOptions {
        target_file_size: big_file.size + big_file.size / 10,
        ..CompactOptions::default()
    };

    // The plan (the dry run) reads no data and changes nothing.
    let plan = plan_compaction(&dataset, &options).unwrap();
    assert_eq!(plan.groups.len(), 2, "{plan}");
    assert_eq!(plan.files_rewritten(), 24);
    assert!(!plan.groups.iter().any(|g| g.files.contains(&big_file.path)));
    assert!(
        plan.to_string().contains("region=north: 12 files"),
        "{plan}"
    );
    assert_eq!(
        Dataset::open(dataset.url()).await.unwrap().version(),
        dataset.version()
    );

    let seen = std::sync::Mutex::new(0);
    let report = execute_compaction(&dataset, &plan, &|_| *seen.lock().unwrap() += 1)
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), 2);
    assert_eq!(
        (report.files_removed, report.files_added, report.skipped),
        (24, 2, 0)
    );
    dataset.reload().await.unwrap();
    assert_eq!(dataset.snapshot().files().len(), 3);
    assert!(dataset.snapshot().file(&big_file.path).is_some());
    assert!(
        dataset
            .snapshot()
            .files()
            .all(|f| f.size <= options.target_file_size)
    );
    assert_eq!(contents(&dataset).await, before);
    // Two commits, one per partition, recorded as optimize.
    let history = dataset.history().await.unwrap();
    assert!(
        history[..2]
            .iter()
            .all(|c| c.operation.to_string() == "optimize")
    );
    // The removed files are gone from disk (no retention set), the new ones readable.
    assert_eq!(parquet_files(dir.path()), 3);

    // Nothing left to do.
    assert!(plan_compaction(&dataset, &options).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_sorts_files_and_drops_duplicates_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("events").display().to_string();
    // Descending ids, each batch written twice: every row has a duplicate.
    for i in (0..6).rev() {
        let batch = rows((i * 10..i * 10 + 10).rev());
        Dataset::write_to(&location, [Ok(batch.clone())], &by_region())
            .await
            .unwrap();
        Dataset::write_to(&location, [Ok(batch)], &by_region())
            .await
            .unwrap();
    }
    let mut dataset = Dataset::open(&location).await.unwrap();
    let options = CompactOptions {
        sort_by: vec!["id".parse().unwrap()],
        unique: Some(Vec::new()),
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    let report = execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    assert_eq!(report.rows_dropped, 60);
    dataset.reload().await.unwrap();
    let (ids, _) = contents(&dataset).await;
    assert_eq!(ids, (0..60).collect::<Vec<_>>());
    for file in dataset.snapshot().files() {
        let path = dir.path().join("events").join(&file.path);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let mut ids = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            ids.extend(
                batch
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec(),
            );
        }
        assert!(ids.is_sorted(), "{}: {ids:?}", file.path);
    }
    // Sorting asks for a rewrite even of one file per partition; descending works too.
    let options = CompactOptions {
        sort_by: vec![SortColumn {
            column: "id".into(),
            descending: true,
        }],
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    assert_eq!(plan.files_rewritten(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_whose_files_changed_meanwhile_is_skipped_and_the_rest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = fragmented(&dir, 6).await;
    let plan = plan_compaction(&dataset, &CompactOptions::default()).unwrap();
    assert_eq!(plan.groups.len(), 2);
    // Another writer deletes a row in the north partition after the plan was made.
    let mut other = Dataset::open(dataset.url()).await.unwrap();
    other.delete(col("id").eq(lit(4i64))).await.unwrap();
    let report = execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    assert_eq!(report.skipped, 1);
    let skipped = report.groups.iter().find(|g| g.skipped.is_some()).unwrap();
    assert_eq!(skipped.partitions, vec!["region=north".to_string()]);
    other.reload().await.unwrap();
    let (ids, _) = contents(&other).await;
    assert_eq!(ids, (0..60).filter(|i| *i != 4).collect::<Vec<_>>());
    // North kept its files (5 after the delete's rewrite); south was compacted to one.
    let south = other
        .snapshot()
        .files()
        .filter(|f| f.partition_dir() == "region=south")
        .count();
    assert_eq!(south, 1);
}

/// One group at a time: the second group starts from the version the first committed,
/// which already holds the other writer's change to its files.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_group_whose_files_changed_before_it_began_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = fragmented(&dir, 6).await;
    let options = CompactOptions {
        concurrency: 1,
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    assert_eq!(plan.groups[1].partitions, vec!["region=south".to_string()]);
    let mut other = Dataset::open(dataset.url()).await.unwrap();
    other.delete(col("id").eq(lit(5i64))).await.unwrap();
    let report = execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    assert_eq!(report.skipped, 1);
    assert!(report.groups[0].skipped.is_none());
    assert!(report.groups[1].skipped.is_some(), "{:?}", report.groups[1]);
    other.reload().await.unwrap();
    assert_eq!(Some(other.version()), report.version);
    let (ids, _) = contents(&other).await;
    assert_eq!(ids, (0..60).filter(|i| *i != 5).collect::<Vec<_>>());
    let north = other
        .snapshot()
        .files()
        .filter(|f| f.partition_dir() == "region=north")
        .count();
    assert_eq!(north, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn vacuum_deletes_old_removed_files_and_old_orphans_only() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("events").display().to_string();
    let keep = WriteOptions {
        properties: [("retention.seconds".to_string(), "3600".to_string())].into(),
        ..by_region()
    };
    Dataset::write_to(&location, [Ok(rows(0..10))], &keep)
        .await
        .unwrap();
    let mut dataset = Dataset::open(&location).await.unwrap();
    let overwrite = by_region().with_mode(WriteMode::Overwrite);
    dataset
        .write(vec![Ok(rows(10..20))], &overwrite)
        .await
        .unwrap();
    // The overwritten files stay for time travel (retention is set).
    assert_eq!(parquet_files(dir.path()), 4);
    // An orphan, as a crashed writer leaves: a data file no commit names.
    let orphan = dir.path().join("events/region=north/orphan.parquet");
    std::fs::copy(
        dir.path()
            .join("events")
            .join(&dataset.snapshot().files().next().unwrap().path),
        &orphan,
    )
    .unwrap();

    // Within the retention and the grace period, nothing goes.
    let plan = plan_vacuum(&dataset, &VacuumOptions::default())
        .await
        .unwrap();
    assert!(plan.delete.is_empty(), "{plan}");
    assert_eq!(plan.kept, 5);

    // With no retention, the overwritten files go; the young orphan stays.
    let no_retention = VacuumOptions {
        retain: Some(Duration::ZERO),
        ..VacuumOptions::default()
    };
    let plan = plan_vacuum(&dataset, &no_retention).await.unwrap();
    assert_eq!(plan.delete.len(), 2, "{plan}");
    assert!(
        plan.delete
            .iter()
            .all(|c| c.reason == DeleteReason::Removed(1))
    );
    assert_eq!(parquet_files(dir.path()), 5, "planning deleted something");
    let report = execute_vacuum(&dataset, &plan).await.unwrap();
    assert_eq!(report.files_deleted, 2);
    assert_eq!(parquet_files(dir.path()), 3);

    // Past its grace period, the orphan goes too; the live files never.
    let everything = VacuumOptions {
        retain: Some(Duration::ZERO),
        orphan_grace: Duration::ZERO,
    };
    let plan = plan_vacuum(&dataset, &everything).await.unwrap();
    assert_eq!(plan.delete.len(), 1);
    assert_eq!(plan.delete[0].path, "region=north/orphan.parquet");
    assert_eq!(plan.delete[0].reason, DeleteReason::Orphan);
    execute_vacuum(&dataset, &plan).await.unwrap();
    assert!(!orphan.exists());
    assert_eq!(contents(&dataset).await.0, (10..20).collect::<Vec<_>>());
    // The log is never touched.
    assert!(
        dir.path()
            .join("events/_dala/00000000000000000001.json")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_report_small_files_coverage_and_reclaimable_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = fragmented(&dir, 4).await;
    let report = stats(&dataset, 128 * 1024 * 1024).await.unwrap();
    assert_eq!((report.files, report.partitions, report.rows), (8, 2, 40));
    assert_eq!(report.small_files, 8);
    assert!((report.small_file_share - 1.0).abs() < 1e-9);
    let amount = report
        .columns
        .iter()
        .find(|c| c.column == "amount")
        .unwrap();
    assert_eq!(amount.files_with_min_max, 8);
    assert_eq!(amount.nulls, 6); // ids 0, 7, 14, 21, 28, 35
    assert_eq!(report.bytes_reclaimable, 0);
    assert!(report.to_string().contains("small files:  8 (100%"));
}

fn parquet_files(dir: &std::path::Path) -> usize {
    fn walk(dir: &std::path::Path, n: &mut usize) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    Append(i64),
    Overwrite(i64),
    Delete(i64),
    Compact,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1i64..40).prop_map(Step::Append),
        1 => (1i64..40).prop_map(Step::Overwrite),
        1 => (0i64..200).prop_map(Step::Delete),
        1 => Just(Step::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the history and the retention, vacuum never deletes a file a kept
    /// version references: every kept version reads back whole after it.
    #[test]
    fn vacuum_never_removes_a_live_file(steps in prop::collection::vec(step(), 1..10), keep in 0usize..4) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let location = dir.path().join("t").display().to_string();
            let options = WriteOptions {
                properties: [("retention.seconds".to_string(), "86400".to_string())].into(),
                ..by_region()
            };
            Dataset::write_to(&location, [Ok(rows(0..5))], &options).await.unwrap();
            let mut dataset = Dataset::open(&location).await.unwrap();
            let mut next = 5;
            for step in &steps {
                match step {
                    Step::Append(n) => {
                        dataset.write(vec![Ok(rows(next..next + n))], &by_region()).await.unwrap();
                        next += n;
                    }
                    Step::Overwrite(n) => {
                        let mode = by_region().with_mode(WriteMode::Overwrite);
                        dataset.write(vec![Ok(rows(next..next + n))], &mode).await.unwrap();
                        next += n;
                    }
                    Step::Delete(id) => {
                        dataset.delete(col("id").lt(lit(*id))).await.unwrap();
                    }
                    Step::Compact => {
                        let plan = plan_compaction(&dataset, &CompactOptions::default()).unwrap();
                        execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
                        dataset.reload().await.unwrap();
                    }
                }
            }
            // Every version's contents, before the vacuum.
            let latest = dataset.version();
            let mut expected = Vec::new();
            for v in 0..=latest {
                let old = Dataset::open_at(&location, v).await.unwrap();
                expected.push(contents(&old).await);
            }
            // Keep the newest `keep` versions readable: a retention reaching back to
            // the commit time of version latest - keep.
            let history = dataset.history().await.unwrap();
            let oldest = latest.saturating_sub(keep as u64);
            let at = history.iter().find(|c| c.version == oldest).unwrap().timestamp;
            let age = (chrono::Utc::now().timestamp_millis() - at).max(0) as u64 + 1;
            let plan = plan_vacuum(&dataset, &VacuumOptions {
                retain: Some(Duration::from_millis(age)),
                orphan_grace: Duration::ZERO,
            }).await.unwrap();
            prop_assert!(plan.oldest_kept_version <= latest, "{plan}");
            execute_vacuum(&dataset, &plan).await.unwrap();
            for v in plan.oldest_kept_version..=latest {
                let old = Dataset::open_at(&location, v).await.unwrap();
                prop_assert_eq!(&contents(&old).await, &expected[v as usize], "version {}", v);
            }
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_that_loses_many_races_ends_with_the_true_index() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("events").display().to_string();
    let by_id = WriteOptions::default().with_partition_by(["id"]);
    for _ in 0..3 {
        Dataset::write_to(&location, [Ok(rows(0..30))], &by_id)
            .await
            .unwrap();
    }
    // A handle left behind while thirty compaction commits (four at a time) land.
    let mut behind = Dataset::open(&location).await.unwrap();
    let dataset = Dataset::open(&location).await.unwrap();
    let options = CompactOptions {
        concurrency: 4,
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    assert_eq!(plan.groups.len(), 30);
    let report = execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    assert_eq!((report.files_removed, report.files_added), (90, 30));
    // Its append walks past all of them; the index it ends with is the log's.
    behind.write(vec![Ok(rows(30..33))], &by_id).await.unwrap();
    let fresh = Dataset::open(&location).await.unwrap();
    let paths = |d: &Dataset| {
        let mut p: Vec<String> = d.snapshot().files().map(|f| f.path.clone()).collect();
        p.sort();
        p
    };
    assert_eq!(behind.version(), fresh.version());
    assert_eq!(paths(&behind), paths(&fresh));
    assert_eq!(paths(&fresh).len(), 33);
    assert_eq!(contents(&behind).await, contents(&fresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_by_period_never_mixes_months_in_a_file() {
    use arrow::array::Date32Array;
    use dala_optimize::Period;
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("daily").display().to_string();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("day", DataType::Date32, false),
    ]));
    // One small file per day from 2024-01-01 (day 19 723) for 75 days: January, February,
    // and half of March.
    for day in 0..75 {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![day * 2, day * 2 + 1])),
                Arc::new(Date32Array::from(vec![19_723 + day as i32; 2])),
            ],
        )
        .unwrap();
        Dataset::write_to(&location, [Ok(batch)], &WriteOptions::default())
            .await
            .unwrap();
    }
    let mut dataset = Dataset::open(&location).await.unwrap();
    let options = CompactOptions {
        by_period: Some(Period::Month),
        timestamp_column: Some("day".into()),
        partitions_per_commit: 10,
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options).unwrap();
    assert_eq!(plan.groups.len(), 3, "{plan}");
    assert!(plan.to_string().contains("(2024-02)"), "{plan}");
    execute_compaction(&dataset, &plan, &|_| {}).await.unwrap();
    dataset.reload().await.unwrap();
    assert_eq!(dataset.snapshot().files().len(), 3);
    assert_eq!(dataset.scan().count_rows().await.unwrap(), 150);
    let month = |days: i32| {
        chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .unwrap()
            .format("%Y-%m")
            .to_string()
    };
    for file in dataset.snapshot().files() {
        let stats = file.stats[1].as_ref().unwrap();
        let (Some(dala_dataset::Scalar::Date(lo)), Some(dala_dataset::Scalar::Date(hi))) =
            (&stats.min, &stats.max)
        else {
            panic!("no day statistics in {}", file.path);
        };
        assert_eq!(month(*lo), month(*hi), "{} mixes months", file.path);
    }
    // Without a timestamp column there is no period to group by.
    let options = CompactOptions {
        by_period: Some(Period::Week),
        ..CompactOptions::default()
    };
    assert!(plan_compaction(&dataset, &options).is_err());
}
