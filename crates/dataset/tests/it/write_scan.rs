//! Writes and scans: every row exactly once, typed partitions, pruning at three levels.

use arrow::datatypes::DataType;
use dala_dataset::{Dataset, Error, SortColumn, WriteMode, WriteOptions, col, lit};

use crate::common::{self, batches, ids, location, partitioned, rows};

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_write_scans_back_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 5000, &partitioned()).await;
    assert_eq!(ds.version(), 0);
    assert_eq!(ds.snapshot().rows(), 5000);
    let got = ds.scan().collect().await.unwrap();
    assert_eq!(ids(&got), (0..5000).collect::<Vec<_>>());

    let schema = ds.schema();
    assert_eq!(
        schema.field_with_name("year").unwrap().data_type(),
        &DataType::Int32
    );
    assert_eq!(
        schema.field_with_name("region").unwrap().data_type(),
        &DataType::Utf8
    );
    // Partition directories are hive paths; values are escaped; null is the default partition.
    let dirs: Vec<String> = ds.snapshot().partitions().into_keys().collect();
    assert!(
        dirs.contains(&"year=2020/region=north".to_string()),
        "{dirs:?}"
    );
    assert!(
        dirs.iter().any(|d| d.ends_with("region=east%2Fwest")),
        "{dirs:?}"
    );
    assert!(
        dirs.iter().any(|d| d.ends_with("region=a%3Db%25c")),
        "{dirs:?}"
    );
    assert!(
        dirs.iter()
            .any(|d| d.ends_with("region=__HIVE_DEFAULT_PARTITION__"))
    );
    // The rows come back with the same values, partition columns included.
    let expected = common::batch(0, 5000);
    let columns = ["id", "name", "qty", "price", "day", "year", "region"];
    assert_eq!(rows(&got, &columns), rows(&[expected], &columns));
}

#[tokio::test(flavor = "multi_thread")]
async fn projection_limit_and_filters_on_partition_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 2000, &partitioned()).await;
    let got = ds
        .scan()
        .with_columns(["region", "id"])
        .with_filter_str("year = 2021 AND region = 'east/west'")
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(got[0].schema().fields().len(), 2);
    assert_eq!(got[0].schema().field(0).name(), "region");
    let expected: Vec<i64> = (0..2000)
        .filter(|i| i % 4 == 1 && i % 9 != 0 && (i / 4) % 4 == 2)
        .collect();
    assert_eq!(ids(&got), expected);

    let limited = ds.scan().with_limit(7).collect().await.unwrap();
    assert_eq!(limited.iter().map(|b| b.num_rows()).sum::<usize>(), 7);

    let nulls = ds
        .scan()
        .with_filter(col("region").is_null())
        .count_rows()
        .await
        .unwrap();
    assert_eq!(nulls, (0..2000).filter(|i| i % 9 == 0).count() as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn prunes_partitions_files_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions {
        partition_by: vec!["year".into()],
        row_group_size: 100,
        sort_by: vec![SortColumn {
            column: "id".into(),
            descending: false,
        }],
        ..WriteOptions::default()
    };
    let mut ds = common::write(&path, 0, 4000, &options).await;
    // A second append: new files whose ids are all above 4000.
    ds.write(batches(10_000, 4000, 4000), &options)
        .await
        .unwrap();

    let scan = ds.scan().with_filter_str("year = 2022").unwrap();
    let explain = scan.explain().await.unwrap();
    assert_eq!(explain.files_total, 8);
    assert_eq!(explain.files_pruned_by_partition, 6);
    assert_eq!(explain.files_kept, 2);
    assert_eq!(scan.count_rows().await.unwrap(), 2000);

    // Statistics: only the second append's files hold ids >= 10_000.
    let scan = ds.scan().with_filter(col("id").gt_eq(lit(10_000i64)));
    let explain = scan.explain().await.unwrap();
    assert_eq!(explain.files_pruned_by_stats, 4, "{explain}");
    assert_eq!(scan.count_rows().await.unwrap(), 4000);

    // Row groups: a narrow id range reads one row group of one file.
    let scan = ds
        .scan()
        .with_filter_str("id BETWEEN 1000 AND 1010 AND year = 2020")
        .unwrap();
    let explain = scan.explain().await.unwrap();
    assert_eq!(explain.files_kept, 1, "{explain}");
    assert_eq!(explain.row_groups_kept, 1, "{explain}");
    assert!(explain.row_groups_total >= 10, "{explain}");
    let got = scan.collect().await.unwrap();
    assert_eq!(ids(&got), vec![1000, 1004, 1008]);
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_must_match_schema_and_partitioning() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 100, &partitioned()).await;

    // Another partitioning is refused; naming none uses the dataset's.
    let other = WriteOptions::default().with_partition_by(["year"]);
    let err = ds.write(batches(0, 10, 10), &other).await.unwrap_err();
    assert!(matches!(err, Error::PartitioningMismatch { .. }), "{err}");
    ds.write(batches(100, 10, 10), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(ds.snapshot().rows(), 110);

    // A column of another type is refused, naming the column and both types.
    let batch = common::batch(0, 10);
    let qty = arrow::compute::cast(batch.column(2), &DataType::Int64).unwrap();
    let mut fields: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[2] = arrow::datatypes::Field::new("qty", DataType::Int64, true);
    let mut columns = batch.columns().to_vec();
    columns[2] = qty;
    let changed = arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )
    .unwrap();
    let err = ds
        .write([Ok(changed)], &WriteOptions::default())
        .await
        .unwrap_err();
    match err {
        Error::SchemaMismatch {
            column,
            expected,
            found,
        } => {
            assert_eq!(column, "qty");
            assert_eq!(expected, "Int32");
            assert_eq!(found, "Int64");
        }
        other => panic!("unexpected {other}"),
    }
    // Nothing changed.
    let reopened = Dataset::open(&path).await.unwrap();
    assert_eq!(reopened.version(), 1);
    assert_eq!(reopened.snapshot().rows(), 110);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_input_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 10, &partitioned()).await;
    let result = ds
        .write(Vec::new(), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(result.version, None);
    let empty = common::batch(0, 0);
    let result = ds
        .write([Ok(empty)], &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(result.version, None);
    assert_eq!(Dataset::open(&path).await.unwrap().version(), 0);
    // Overwriting with no rows leaves no rows.
    let overwrite = WriteOptions::default().with_mode(WriteMode::Overwrite);
    let result = ds.write(Vec::new(), &overwrite).await.unwrap();
    assert_eq!((result.version, result.rows_deleted), (Some(1), 10));
    assert_eq!(ds.scan().count_rows().await.unwrap(), 0);
    assert_eq!(ds.snapshot().files().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_replaces_rows_and_deletes_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let mut ds = common::write(&path, 0, 1000, &partitioned()).await;
    let old_files: Vec<String> = ds.snapshot().files().map(|f| f.path.clone()).collect();
    let options = WriteOptions::default().with_mode(WriteMode::Overwrite);
    let result = ds.write(batches(5000, 100, 100), &options).await.unwrap();
    assert_eq!(result.rows_deleted, 1000);
    assert_eq!(result.rows_inserted, 100);
    assert_eq!(ds.snapshot().rows(), 100);
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (5000..5100).collect::<Vec<_>>()
    );
    for file in old_files {
        assert!(
            !dir.path().join("ds").join(&file).exists(),
            "{file} still on disk"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn files_split_by_rows_and_bounded_open_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions {
        partition_by: vec!["year".into(), "region".into()],
        max_rows_per_file: Some(50),
        max_open_files: 2,
        max_buffered_bytes: 16 * 1024,
        row_group_size: 20,
        ..WriteOptions::default()
    };
    let ds = common::write(&path, 0, 3000, &options).await;
    assert!(ds.snapshot().files().all(|f| f.rows <= 50));
    assert_eq!(ds.snapshot().rows(), 3000);
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..3000).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_partition_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("id", DataType::Int64, false),
        arrow::datatypes::Field::new("p", DataType::Utf8, false),
    ]));
    let batch = arrow::array::RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["ok", "../../etc"])),
        ],
    )
    .unwrap();
    let options = WriteOptions::default().with_partition_by(["p"]);
    let err = Dataset::write_to(&path, [Ok(batch)], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidPartition { ref column, .. } if column == "p"),
        "{err}"
    );
    assert!(
        Dataset::open(&path).await.is_err(),
        "nothing may be committed"
    );
    // And nothing was written outside the dataset root.
    assert!(!dir.path().join("etc").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn page_index_skips_pages_inside_a_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions {
        row_group_size: 1_000_000,
        sort_by: vec![SortColumn {
            column: "id".into(),
            descending: false,
        }],
        ..WriteOptions::default()
    };
    // One file, one row group of 100 000 rows sorted by id: pages of 20 000 rows each.
    let ds = common::write(&path, 0, 100_000, &options).await;
    let scan = ds
        .scan()
        .with_filter_str("id BETWEEN 41000 AND 41010")
        .unwrap();
    let explain = scan.explain().await.unwrap();
    assert_eq!(explain.row_groups_kept, 1, "{explain}");
    assert_eq!(explain.rows_kept, 100_000, "{explain}");
    assert!(explain.rows_selected < 25_000, "{explain}");
    assert_eq!(
        ids(&scan.collect().await.unwrap()),
        (41_000..=41_010).collect::<Vec<_>>()
    );
    // A filter on a column whose pages all may match selects everything.
    let scan = ds.scan().with_filter_str("qty < 100").unwrap();
    assert_eq!(scan.explain().await.unwrap().rows_selected, 100_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn dictionary_encodes_only_repetitive_columns() {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 10_000, &WriteOptions::default()).await;
    let file = ds.snapshot().files().next().unwrap().path.clone();
    let reader =
        SerializedFileReader::new(std::fs::File::open(dir.path().join("ds").join(file)).unwrap())
            .unwrap();
    let row_group = reader.metadata().row_group(0);
    let encodings = |name: &str| {
        let column = (0..row_group.num_columns())
            .map(|i| row_group.column(i))
            .find(|c| c.column_path().string() == name)
            .unwrap();
        column.encodings().collect::<Vec<_>>()
    };
    // 50 names and 730 days in 10 000 rows: dictionaries pay.
    assert!(encodings("name").contains(&Encoding::RLE_DICTIONARY));
    assert!(encodings("day").contains(&Encoding::RLE_DICTIONARY));
    // Every id is distinct: a dictionary would only be abandoned.
    assert!(!encodings("id").contains(&Encoding::RLE_DICTIONARY));

    // Off means off.
    let path = location(&dir, "plain");
    let options = WriteOptions {
        dictionary: false,
        ..WriteOptions::default()
    };
    let ds = common::write(&path, 0, 1000, &options).await;
    let file = ds.snapshot().files().next().unwrap().path.clone();
    let reader = SerializedFileReader::new(
        std::fs::File::open(dir.path().join("plain").join(file)).unwrap(),
    )
    .unwrap();
    let row_group = reader.metadata().row_group(0);
    for i in 0..row_group.num_columns() {
        let encodings: Vec<_> = row_group.column(i).encodings().collect();
        assert!(
            !encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn row_groups_fill_to_the_target_when_memory_allows() {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions {
        row_group_size: 1000,
        ..partitioned()
    };
    // Batches of 100 rows spread over 20 partitions: rows wait in memory until a
    // partition has a whole row group.
    let input = batches(0, 40_000, 100);
    Dataset::write_to(&path, input, &options).await.unwrap();
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ds.snapshot().rows(), 40_000);
    for file in ds.snapshot().files() {
        let reader = SerializedFileReader::new(
            std::fs::File::open(dir.path().join("ds").join(&file.path)).unwrap(),
        )
        .unwrap();
        let sizes: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows())
            .collect();
        let (last, full) = sizes.split_last().unwrap();
        assert!(full.iter().all(|&n| n == 1000), "{}: {sizes:?}", file.path);
        assert!(*last <= 1000);
    }
    assert_eq!(
        ids(&ds.scan().collect().await.unwrap()),
        (0..40_000).collect::<Vec<_>>()
    );
}

/// The `id` column of a data file, in file order.
fn file_ids(path: &std::path::Path) -> Vec<i64> {
    use arrow::array::{AsArray, RecordBatchReader};
    use arrow::datatypes::Int64Type;
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let index = reader.schema().index_of("id").unwrap();
    reader
        .flat_map(|b| {
            let b = b.unwrap();
            b.column(index)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sort_by_orders_every_file_across_its_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions {
        row_group_size: 300,
        sort_by: vec![SortColumn {
            column: "id".into(),
            descending: true,
        }],
        ..partitioned()
    };
    let ds = common::write(&path, 0, 20_000, &options).await;
    assert_eq!(ds.snapshot().rows(), 20_000);
    let mut spanning = 0;
    for file in ds.snapshot().files() {
        let got = file_ids(&dir.path().join("ds").join(&file.path));
        let mut sorted = got.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(got, sorted, "{} is not sorted", file.path);
        spanning += usize::from(got.len() > 300);
    }
    assert!(spanning > 0, "no file has more than one row group");
}

#[tokio::test(flavor = "multi_thread")]
async fn unique_drops_repeated_rows_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    // ids 0..100 three times over, in batches of 30.
    let input: Vec<_> = (0..3).flat_map(|_| batches(0, 100, 30)).collect();
    let options = WriteOptions {
        unique: Some(Vec::new()),
        ..partitioned()
    };
    let result = Dataset::write_to(&path, input, &options).await.unwrap();
    assert_eq!(result.rows_inserted, 100);
    // On named columns: one row per year.
    let path = location(&dir, "by_year");
    let options = WriteOptions {
        unique: Some(vec!["year".into()]),
        ..WriteOptions::default()
    };
    let result = Dataset::write_to(&path, batches(0, 100, 30), &options)
        .await
        .unwrap();
    assert_eq!(result.rows_inserted, 4);
    let ds = Dataset::open(&path).await.unwrap();
    assert_eq!(ids(&ds.scan().collect().await.unwrap()), vec![0, 1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_derived_from_a_timestamp_column() {
    use arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ts_type = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ts", ts_type, false),
    ]));
    let make = |ids: Vec<i64>, ts: Vec<i64>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
            ],
        )
        .unwrap()
    };
    // 2024-03-01T10:00Z, 2024-03-31T23:00Z, 2024-04-01T00:30Z
    let first = make(
        vec![1, 2, 3],
        vec![1_709_287_200_000, 1_711_926_000_000, 1_711_931_400_000],
    );
    let options = WriteOptions {
        timestamp_column: Some("ts".into()),
        ..WriteOptions::default().with_partition_by(["year", "month"])
    };
    let (mut ds, _) = Dataset::builder(&path)
        .write([Ok(first)], &options)
        .await
        .unwrap();
    let dirs: Vec<String> = ds.snapshot().partitions().into_keys().collect();
    assert_eq!(dirs, vec!["year=2024/month=3", "year=2024/month=4"]);
    assert_eq!(
        ds.schema().field_with_name("month").unwrap().data_type(),
        &DataType::Int32
    );
    // A later write derives them too, without being told.
    let later = make(vec![4], vec![1_717_200_000_000]); // 2024-06-01
    ds.write([Ok(later)], &WriteOptions::default())
        .await
        .unwrap();
    let scan = ds.scan().with_filter_str("month = 6").unwrap();
    assert_eq!(scan.explain().await.unwrap().files_kept, 1);
    assert_eq!(ids(&scan.collect().await.unwrap()), vec![4]);
    assert!(dir.path().join("ds/year=2024/month=6").is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_columns_round_trip() {
    use arrow::array::{
        Array, ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    };
    use arrow::datatypes::{Field, Int32Type, Schema};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None, Some(3)]),
        None,
        Some(vec![]),
    ]);
    let point = StructArray::from(vec![
        (
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("label", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec!["a", "b", "ü"])) as ArrayRef,
        ),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("tags", list.data_type().clone(), true),
        Field::new("point", point.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(list),
            Arc::new(point),
        ],
    )
    .unwrap();
    Dataset::write_to(&path, [Ok(batch.clone())], &WriteOptions::default())
        .await
        .unwrap();
    let got = Dataset::open(&path)
        .await
        .unwrap()
        .scan()
        .collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0], batch);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_files_read_by_range_and_small_files_read_whole_agree() {
    // The same rows as one file of several MiB, read by ranges (footer, then the column
    // chunks or pages kept), and as many small files, each read whole. Uncompressed and
    // zstd chunks are decoded by dala, snappy ones by the parquet crate's reader.
    for (compression, count) in [("none", 300_000), ("zstd", 1_500_000), ("snappy", 600_000)] {
        let dir = tempfile::tempdir().unwrap();
        let plain = WriteOptions {
            compression: compression.parse().unwrap(),
            ..WriteOptions::default()
        };
        let one = common::write(&location(&dir, "one"), 0, count, &plain).await;
        let large = one.snapshot().files().next().unwrap().size;
        assert!(
            large > 1 << 20,
            "{compression}: the file is only {large} bytes"
        );
        let small = plain.with_max_rows_per_file(count / 150);
        let many = common::write(&location(&dir, "many"), 0, count, &small).await;
        assert!(many.snapshot().files().all(|f| f.size < 1 << 20));
        let filter = || {
            col("qty")
                .lt(lit(5))
                .and(col("id").gt_eq(lit(count as i64 / 2)))
                .and(col("region").eq(lit("north")))
        };
        let columns = ["id", "qty", "region", "name"];
        let read = |ds: &Dataset| ds.scan().with_filter(filter()).with_columns(columns);
        let from_one = read(&one).collect().await.unwrap();
        let from_many = read(&many).collect().await.unwrap();
        assert!(!from_one.is_empty());
        assert_eq!(
            rows(&from_one, &columns),
            rows(&from_many, &columns),
            "{compression}"
        );
        let explain = read(&one).explain().await.unwrap();
        assert!(
            explain.row_groups_kept < explain.row_groups_total,
            "{compression}: {explain:?}"
        );
        // A limit without a filter stops within the first row group.
        let limited = one
            .scan()
            .with_columns(["id"])
            .with_limit(1234)
            .collect()
            .await
            .unwrap();
        assert_eq!(
            ids(&limited),
            (0..1234).collect::<Vec<_>>(),
            "{compression}"
        );
    }
}

/// A selective scan through the cache fetches, and keeps, the byte ranges it reads: the
/// footer, and the pages of the columns it needs in the row group its filter keeps, not the
/// rest of the file.
#[tokio::test(flavor = "multi_thread")]
async fn a_selective_scan_caches_only_what_it_reads() {
    use std::sync::Arc;

    use object_store::local::LocalFileSystem;
    use object_store::path::Path;

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let options = WriteOptions {
        row_group_size: 50_000,
        ..WriteOptions::default()
    };
    let written = common::write(&path, 0, 1_000_000, &options).await;
    let size = written.snapshot().files().next().unwrap().size;
    assert!(size > 1 << 20, "the file is only {size} bytes");
    let cache = dala_cache::Cache::new(dala_cache::CacheOptions {
        block_size: 16 * 1024,
        memory_bytes: 1 << 30,
        ..dala_cache::CacheOptions::default()
    })
    .unwrap();
    let root = Path::from_absolute_path(dir.path().join("ds")).unwrap();
    let ds = Dataset::builder(&path)
        .with_store(Arc::new(LocalFileSystem::new()), root)
        .with_cache(cache.clone())
        .open()
        .await
        .unwrap();
    let opened = cache.stats().memory_bytes;
    let scan = || {
        ds.scan()
            .with_filter_str("id BETWEEN 612000 AND 612010")
            .unwrap()
            .with_columns(["id", "qty"])
    };
    let explain = scan().explain().await.unwrap();
    assert_eq!(explain.row_groups_kept, 1, "{explain}");
    let got = scan().collect().await.unwrap();
    assert_eq!(ids(&got), (612_000..=612_010).collect::<Vec<_>>());
    let cached = cache.stats().memory_bytes - opened;
    assert!(cached > 0);
    assert!(
        cached < size / 10,
        "the scan cached {cached} bytes of a file of {size}"
    );
}

/// A float statistic read back from the log must be the value written, to the last bit:
/// a minimum read one step too high would prune the file that holds it (found by fuzzing
/// the log entry parser: without exact float parsing, this minimum reads back as
/// 2.6843566666666676e72).
#[tokio::test(flavor = "multi_thread")]
async fn float_statistics_survive_the_log_exactly() {
    use std::sync::Arc;

    use arrow::array::{Float64Array, RecordBatch};
    use arrow::datatypes::{Field, Schema};

    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let smallest = 2.684_356_666_666_667_2e72_f64;
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Float64Array::from(vec![3.0e72, smallest]))],
    )
    .unwrap();
    Dataset::builder(&path)
        .write(vec![Ok(batch)], &WriteOptions::default())
        .await
        .unwrap();
    let ds = Dataset::open(&path).await.unwrap();
    let count = |filter: &str| {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        async move { scan.count_rows().await.unwrap() }
    };
    assert_eq!(count(&format!("x = {smallest:?}")).await, 1);
    assert_eq!(count(&format!("x <= {smallest:?}")).await, 1);
}

/// A small file is read into batches with room for its rows, not for a whole batch: a scan
/// of many small files (a compaction reads thousands) holds memory in proportion to the
/// data it read.
#[tokio::test(flavor = "multi_thread")]
async fn small_files_are_read_into_batches_of_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 10, &WriteOptions::default()).await;
    let batches = ds.scan().with_batch_size(65_536).collect().await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    assert!(bytes < 64 * 1024, "{bytes} bytes held for 10 rows");
}

/// The filter an engine is asked to apply to a scan's files.
fn engine_filter(ds: &Dataset, filter: &str) -> Option<String> {
    let request = ds
        .scan()
        .with_filter_str(filter)
        .unwrap()
        .request()
        .unwrap();
    request.filter.map(|f| f.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn engines_are_not_asked_for_conditions_the_partitions_decide() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 400, &partitioned()).await;
    let qty = engine_filter(&ds, "qty < 10").unwrap();

    // Every file left holds year 2021 and region 'north': only `qty < 10` is left.
    assert_eq!(
        engine_filter(&ds, "year = 2021 AND region = 'north' AND qty < 10").as_deref(),
        Some(qty.as_str())
    );
    // Every file left is from 2021 on, whatever its region.
    assert_eq!(
        engine_filter(&ds, "qty < 10 AND year >= 2021").as_deref(),
        Some(qty.as_str())
    );
    assert_eq!(engine_filter(&ds, "year IN (2020, 2023)"), None);
    // Conditions the partition values do not decide for every file left stay.
    let kept = engine_filter(&ds, "year = 2021 OR qty < 10").unwrap();
    assert!(kept.contains("year"), "{kept}");
    let kept = engine_filter(&ds, "region IS NULL OR region = 'south'").unwrap();
    assert!(kept.contains("region"), "{kept}");
    // A condition on a data column is the engine's, even when the statistics decide it.
    assert!(engine_filter(&ds, "id >= 0").is_some());
}
