//! One behavioural suite on every engine: Arrow (dala's own reader), DuckDB and Polars give
//! the same rows, with the same Arrow types, for the same scans: filters of every kind,
//! projections, limits, partition-only and statistics-only filters, nulls, dates, timestamps
//! with time zones, decimals, unicode, empty results.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use dala_dataset::{ArrowEngine, Dataset, Error, ScanBuilder, ScanEngine, WriteOptions};
use dala_duckdb::{DuckdbEngine, DuckdbOptions, register_view};
use dala_polars::{PolarsEngine, to_data_frame, to_record_batches};
use futures::{StreamExt, TryStreamExt};

fn batch(first: i64, n: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n as i64).collect();
    let names = ["ápfel", "Zoë", "naïve", "plain", "日本"];
    let regions = ["north", "south", "east/west", "a=b%c"];
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("qty", DataType::Int32, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("score", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("year", DataType::Int32, false),
        Field::new("region", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from(
            ids.iter()
                .map(|i| (i % 7 != 0).then(|| format!("{}-{:02}", names[*i as usize % 5], i % 30)))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            ids.iter()
                .map(|i| (i % 11 != 0).then_some((i % 40) as i32))
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from(
                ids.iter()
                    .map(|i| (i % 13 != 0).then_some(((i * 37) % 100_000) as i128))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(10, 2)
            .unwrap(),
        ),
        Arc::new(Date32Array::from(
            ids.iter()
                .map(|i| (i % 17 != 0).then_some(19_000 + (i % 730) as i32))
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(
                ids.iter()
                    .map(|i| (i % 19 != 0).then_some(1_700_000_000_000_000 + i * 3_600_000_000))
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Float64Array::from(
            ids.iter()
                .map(|i| (i % 23 != 0).then_some(*i as f64 / 8.0))
                .collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(
            ids.iter()
                .map(|i| (i % 29 != 0).then_some(i % 3 == 0))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            ids.iter()
                .map(|i| 2020 + (i % 4) as i32)
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            ids.iter()
                .map(|i| (i % 9 != 0).then(|| regions[(*i as usize / 4) % 4]))
                .collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

async fn dataset(dir: &tempfile::TempDir) -> Dataset {
    let path = dir.path().join("ds").display().to_string();
    let options = WriteOptions {
        row_group_size: 500,
        ..WriteOptions::default().with_partition_by(["year", "region"])
    };
    let input: Vec<_> = (0..4).map(|i| Ok(batch(i * 1000, 1000))).collect();
    Dataset::builder(&path)
        .write(input, &options)
        .await
        .unwrap()
        .0
}

/// A dataset at `path` of two batches of `rows` rows, partitioned by `columns`.
async fn dataset_by(path: &str, columns: &[&str], rows: usize) -> Dataset {
    let options = WriteOptions::default().with_partition_by(columns.iter().copied());
    let input: Vec<_> = (0..2).map(|i| Ok(batch(i * rows as i64, rows))).collect();
    Dataset::builder(path)
        .write(input, &options)
        .await
        .unwrap()
        .0
}

/// A dataset at `path` holding `batch`, partitioned by `column`.
async fn written(path: &str, batch: RecordBatch, column: &str) -> Dataset {
    let options = WriteOptions::default().with_partition_by([column]);
    let (ds, _) = Dataset::builder(path)
        .write([Ok(batch)], &options)
        .await
        .unwrap();
    ds
}

/// Every row as text, sorted.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    dala_tests::rows_as_text(batches, false)
}

/// Runs `scan` on every engine and asserts that DuckDB and Polars give the Arrow engine's
/// rows with its types; returns how many rows.
async fn assert_engines_agree(scan: &ScanBuilder, duckdb: &DuckdbEngine, label: &str) -> usize {
    let (schema, expected) = run(scan, &ArrowEngine).await;
    let expected = rows(&expected);
    for engine in [duckdb as &dyn ScanEngine, &PolarsEngine] {
        let (_, got) = run(scan, engine).await;
        for batch in &got {
            assert_eq!(
                batch.schema(),
                schema,
                "{}: {label}: types differ",
                engine.kind()
            );
        }
        assert_eq!(rows(&got), expected, "{}: {label}", engine.kind());
    }
    expected.len()
}

/// The rows of `query` over `ds` registered as `t`, on `engine`, as text.
async fn sql_rows(engine: &dyn ScanEngine, ds: &Dataset, query: &str) -> Vec<String> {
    let batches: Vec<RecordBatch> = engine
        .sql(vec![("t".into(), ds.scan().request().unwrap())], query, &[])
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    rows(&batches)
}

async fn run(scan: &ScanBuilder, engine: &dyn ScanEngine) -> (Arc<Schema>, Vec<RecordBatch>) {
    let batches: Vec<RecordBatch> = scan
        .stream_on(engine)
        .unwrap()
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", engine.kind()));
    (scan.output_schema().unwrap(), batches)
}

const FILTERS: [&str; 40] = [
    "TRUE",
    "FALSE",
    "year = 2021",
    "year IN (2020, 2023)",
    "year <> 2022 AND region = 'north'",
    "region = 'east/west'",
    "region = 'a=b%c' OR region IS NULL",
    "region IS NOT NULL AND region NOT IN ('north', 'south')",
    "id = 1234",
    "id < 100 OR id > 3950",
    "id BETWEEN 500 AND 520",
    "id NOT BETWEEN 10 AND 3990",
    "qty < 10",
    "qty IS NULL",
    "qty >= 35 AND year = 2020",
    "NOT (qty > 5)",
    "name LIKE 'Zoë%'",
    "name LIKE '%-1_'",
    "name NOT LIKE 'plain%'",
    "name ILIKE 'ÁPFEL%'",
    "name = '日本-03'",
    "name IS NULL AND qty IS NOT NULL",
    "price > 250.5",
    "price <= 12",
    "price IS NULL OR price = 100.01",
    "day >= DATE '2022-01-01' AND day < DATE '2022-02-01'",
    "day IS NULL",
    "at >= TIMESTAMP '2023-12-01 00:00:00' AND at < TIMESTAMP '2023-12-03 00:00:00'",
    "score > 400.5 AND score < 401",
    "flag",
    "NOT flag OR flag IS NULL",
    "year = 2023 AND id > 3000 AND qty < 5",
    "id > 100000",
    "(year = 2021 OR year = 2022) AND (region = 'south' OR name LIKE 'naïve%')",
    // Values the column's type does not hold exactly (a fraction on integers, more decimal
    // places than the column's, beyond its range), and lists with a null.
    "qty < 10.5 AND qty > 8.5",
    "price > 250.505",
    "qty < 3000000000 AND id < 50",
    "qty NOT IN (1, 2, 3)",
    "qty IN (4, NULL)",
    "qty NOT IN (4, NULL)",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_engine_gives_the_same_rows_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions {
        threads: Some(2),
        ..DuckdbOptions::default()
    })
    .unwrap();
    let mut checked = 0;
    let projections: [Option<&[&str]>; 3] = [
        None,
        Some(&["id", "price", "region"]),
        Some(&["year", "name", "at"]),
    ];
    for filter in FILTERS {
        for columns in projections {
            let mut scan = ds.scan().with_filter_str(filter).unwrap();
            if let Some(columns) = columns {
                scan = scan.with_columns(columns.iter().copied());
            }
            assert_engines_agree(&scan, &duckdb, &format!("{filter} {columns:?}")).await;
            checked += 1;
        }
    }
    // Limits: as many rows, each one the filter's.
    for (filter, limit) in [
        ("TRUE", 7),
        ("qty < 10", 25),
        ("year = 2022", 1000),
        ("id > 100000", 3),
    ] {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        let all = rows(&run(&scan, &ArrowEngine).await.1);
        let limited = scan.with_limit(limit);
        let a = rows(&run(&limited, &ArrowEngine).await.1);
        assert_eq!(a.len(), limit.min(all.len()), "{filter} limit {limit}");
        for engine in [&duckdb as &dyn ScanEngine, &PolarsEngine] {
            let got = rows(&run(&limited, engine).await.1);
            assert_eq!(
                got.len(),
                a.len(),
                "{}: {filter} limit {limit}",
                engine.kind()
            );
            assert!(
                got.iter().all(|r| all.binary_search(r).is_ok()),
                "{}: {filter}",
                engine.kind()
            );
        }
        checked += 1;
    }
    assert!(checked >= 40);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_over_registered_datasets_on_duckdb_and_polars() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let request = ds.scan().request().unwrap();
    let batches: Vec<RecordBatch> = duckdb
        .sql(
            vec![("sales.items".into(), request.clone())],
            "SELECT year, count(*) AS n, sum(qty) AS q FROM \"sales.items\" \
             WHERE region IS NOT NULL GROUP BY year ORDER BY year",
            &[],
        )
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let got = rows(&batches);
    // The same numbers from the Arrow engine.
    let all = ds
        .scan()
        .with_filter_str("region IS NOT NULL")
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut expected = Vec::new();
    for year in 2020..2024 {
        let mut n = 0i64;
        let mut q = 0i64;
        for b in &all {
            let years = b
                .column_by_name("year")
                .unwrap()
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            let qty = b
                .column_by_name("qty")
                .unwrap()
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            for i in 0..b.num_rows() {
                if years.value(i) == year {
                    n += 1;
                    q += if qty.is_null(i) {
                        0
                    } else {
                        i64::from(qty.value(i))
                    };
                }
            }
        }
        expected.push(format!("{year}|{n}|{q}"));
    }
    assert_eq!(got, expected);
    let polars: Vec<RecordBatch> = PolarsEngine
        .sql(
            vec![("items".into(), request.clone())],
            "SELECT year, count(*) AS n, sum(qty) AS q FROM items \
             WHERE region IS NOT NULL GROUP BY year ORDER BY year",
            &[],
        )
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows(&polars), expected);

    // The native handle: a view on the caller's own connection.
    let conn = duckdb.connection().unwrap();
    register_view(&conn, "items", &request).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM items WHERE year = 2021", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(count, 1000);

    // The Arrow engine has no SQL, and says which engines do.
    let error = ArrowEngine.sql(Vec::new(), "SELECT 1", &[]).err().unwrap();
    assert!(
        matches!(&error, Error::Unsupported(m) if m.contains("duckdb")),
        "{error}"
    );
}

/// The engines, as the suite runs them.
fn engines(duckdb: &DuckdbEngine) -> [&dyn ScanEngine; 3] {
    [&ArrowEngine, duckdb, &PolarsEngine]
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_typed_errors_that_name_it_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for engine in engines(&duckdb) {
        // An unknown column, projected or filtered on: dala's planning names it.
        let projected = ds.scan().with_columns(["id", "colour"]).stream_on(engine);
        let filtered = ds
            .scan()
            .with_filter_str("colour = 'red'")
            .and_then(|scan| scan.stream_on(engine));
        for result in [projected, filtered] {
            let error = result.err().unwrap();
            assert!(
                error.to_string().contains("colour"),
                "{}: {error}",
                engine.kind()
            );
        }
    }
    let request = ds.scan().request().unwrap();
    let sql_engines: [&dyn ScanEngine; 2] = [&duckdb, &PolarsEngine];
    for engine in sql_engines {
        let name = engine.kind().to_string();
        let tables = || vec![("items".to_string(), request.clone())];
        for (query, needle) in [
            ("SELECT count(*) FROM stock", "stock"),
            ("SELECT colour FROM items", "colour"),
            ("SELEC id FROM items", "SELEC"),
        ] {
            let error = match engine.sql(tables(), query, &[]) {
                Err(e) => e,
                Ok(stream) => stream.try_collect::<Vec<_>>().await.err().unwrap(),
            };
            assert!(
                matches!(&error, Error::Engine { engine, message } if *engine == name && message.contains(needle)),
                "{name}: {query}: {error}"
            );
        }
    }
    // An engine that cannot do the operation says so.
    let error = ArrowEngine.sql(Vec::new(), "SELECT 1", &[]).err().unwrap();
    assert!(matches!(error, Error::Unsupported(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_tables_carry_the_scans_filter_projection_and_emptiness() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let expected = ds
        .scan()
        .with_filter_str("year = 2021 AND qty < 5")
        .unwrap()
        .count_rows()
        .await
        .unwrap();
    assert!(expected > 0);
    let filtered = ds
        .scan()
        .with_filter_str("year = 2021 AND qty < 5")
        .unwrap()
        .with_columns(["id", "qty"])
        .request()
        .unwrap();
    // Every file pruned away: the table has the columns and no rows.
    let empty = ds
        .scan()
        .with_filter_str("year = 1999")
        .unwrap()
        .request()
        .unwrap();
    assert!(empty.files.is_empty());
    let sql_engines: [&dyn ScanEngine; 2] = [&duckdb, &PolarsEngine];
    for engine in sql_engines {
        let batches: Vec<RecordBatch> = engine
            .sql(
                vec![
                    ("small".to_string(), filtered.clone()),
                    ("none".to_string(), empty.clone()),
                ],
                "SELECT s.n, e.m, s.top FROM \
                 (SELECT count(*) AS n, max(qty) AS top FROM small) AS s \
                 CROSS JOIN (SELECT count(*) AS m FROM none) AS e",
                &[],
            )
            .unwrap()
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", engine.kind()));
        // Year 2021 holds the ids 1 mod 4, whose qty (id mod 40) is 1 mod 4: below 5, only 1.
        assert_eq!(
            rows(&batches),
            vec![format!("{expected}|0|1")],
            "{}",
            engine.kind()
        );
        // The projection is the table's columns.
        let error = match engine.sql(
            vec![("small".to_string(), filtered.clone())],
            "SELECT name FROM small",
            &[],
        ) {
            Err(e) => e,
            Ok(stream) => stream.try_collect::<Vec<_>>().await.err().unwrap(),
        };
        assert!(error.to_string().contains("name"), "{error}");
    }
}

/// Waits up to ten seconds for the engine's connections to be released.
async fn released(duckdb: &DuckdbEngine) -> bool {
    for _ in 0..1000 {
        if duckdb.connections_in_use() == 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_or_failing_stream_releases_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir).await;
    // One thread: with several, DuckDB may report a failure mid-stream as "Interrupted!"
    // (the other workers' interruption) instead of the error that stopped them. A small
    // streaming buffer (DuckDB's own default), so that the failing query hands over some
    // batches before its workers reach the failing row.
    let duckdb = DuckdbEngine::new(&DuckdbOptions {
        threads: Some(1),
        streaming_buffer_size: Some("1MB".into()),
        ..DuckdbOptions::default()
    })
    .unwrap();
    let request = ds.scan().request().unwrap();

    // Cancelled: the consumer reads one batch of a large result and drops the stream.
    let mut stream = duckdb
        .sql(
            vec![("items".to_string(), request.clone())],
            "SELECT a.id, b.id FROM items a, items b",
            &[],
        )
        .unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(first.num_rows() > 0);
    assert_eq!(duckdb.connections_in_use(), 1);
    drop(stream);
    assert!(
        released(&duckdb).await,
        "a dropped stream kept its connection"
    );

    // Failing mid-stream: some batches, then the engine's error, then the release.
    let stream = duckdb
        .sql(
            vec![("items".to_string(), request.clone())],
            "SELECT a.id, CASE WHEN a.id * 10000 + b.id > 39000000 \
             THEN error('boom at ' || a.id) ELSE b.id END AS x \
             FROM items a, items b",
            &[],
        )
        .unwrap();
    let results: Vec<_> = stream.collect().await;
    assert!(results.len() > 1 && results[0].is_ok());
    let error = results.last().unwrap().as_ref().err().unwrap();
    assert!(error.to_string().contains("boom at"), "{error}");
    assert!(
        released(&duckdb).await,
        "a failed stream kept its connection"
    );

    // The engine still answers.
    let count: Vec<RecordBatch> = duckdb
        .sql(
            vec![("items".to_string(), request)],
            "SELECT count(*) FROM items",
            &[],
        )
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows(&count), vec!["4000".to_string()]);
    assert!(released(&duckdb).await);
}

#[test]
fn arrow_batches_cross_to_polars_and_back() {
    let input = vec![batch(0, 100), batch(100, 50)];
    let frame = to_data_frame(&input[0].schema(), &input).unwrap();
    assert_eq!(frame.height(), 150);
    let back = to_record_batches(frame).unwrap();
    assert_eq!(rows(&back), rows(&input));
    let empty = to_data_frame(&input[0].schema(), &[]).unwrap();
    assert_eq!((empty.height(), empty.width()), (0, 10));
    // A zone Polars cannot hold is an error that names the column, not a panic.
    let zone = "+05:30";
    let schema = Arc::new(Schema::new(vec![Field::new(
        "at",
        DataType::Timestamp(TimeUnit::Microsecond, Some(zone.into())),
        true,
    )]));
    let at = TimestampMicrosecondArray::from(vec![0]).with_timezone(zone);
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(at)]).unwrap();
    let error = to_data_frame(&schema, &[batch]).unwrap_err();
    assert!(
        matches!(&error, Error::Engine { message, .. } if message.contains("`at`")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plainly_named_partitions_give_the_same_rows() {
    // Partition values that need no escaping are read from the folder names by DuckDB;
    // the rows and types must not change.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by_year").display().to_string();
    let ds = dataset_by(&path, &["year"], 1000).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for filter in ["TRUE", "year = 2021", "year IN (2020, 2023) AND qty < 5"] {
        let scan = ds
            .scan()
            .with_filter_str(filter)
            .unwrap()
            .with_columns(["id", "year", "region"]);
        let (schema, expected) = run(&scan, &ArrowEngine).await;
        let (_, got) = run(&scan, &duckdb).await;
        assert!(got.iter().all(|b| b.schema() == schema), "{filter}");
        assert_eq!(rows(&got), rows(&expected), "{filter}");
    }
    assert_eq!(
        sql_rows(
            &duckdb,
            &ds,
            "SELECT year, count(*) FROM t GROUP BY year ORDER BY year"
        )
        .await,
        vec!["2020|500", "2021|500", "2022|500", "2023|500"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_under_older_schemas_give_the_same_rows_on_every_engine() {
    // Files written before a merging write lack its new column and hold a narrower type;
    // every engine reads them as the dataset's schema, the new column null in old rows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evolved").display().to_string();
    let by_year = WriteOptions::default().with_partition_by(["year"]);
    let old = batch(0, 400).project(&[0, 2, 8]).unwrap(); // id, qty (Int32), year
    let mut ds = Dataset::builder(&path)
        .write([Ok(old)], &by_year)
        .await
        .unwrap()
        .0;
    let new = batch(400, 400);
    let widened = Arc::new(Schema::new(
        new.schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "qty" => Field::new("qty", DataType::Int64, true),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ));
    let columns = new
        .columns()
        .iter()
        .zip(widened.fields())
        .map(|(c, f)| arrow::compute::cast(c, f.data_type()).unwrap())
        .collect();
    let new = RecordBatch::try_new(widened, columns).unwrap();
    let merge = by_year
        .clone()
        .with_schema_mode(dala_dataset::SchemaMode::Merge);
    ds.write([Ok(new)], &merge).await.unwrap();
    assert!(!ds.scan().request().unwrap().files_match_schema());

    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let projections: [Option<&[&str]>; 3] = [None, Some(&["id", "name"]), Some(&["qty", "year"])];
    for filter in [
        "TRUE",
        "name IS NULL",
        "qty > 30 AND year = 2021",
        "id >= 400",
    ] {
        for columns in projections {
            let mut scan = ds.scan().with_filter_str(filter).unwrap();
            if let Some(columns) = columns {
                scan = scan.with_columns(columns.iter().copied());
            }
            let label = format!("{filter} {columns:?}");
            assert!(
                assert_engines_agree(&scan, &duckdb, &label).await > 0,
                "{label}"
            );
        }
    }
    // SQL sees the old rows' new columns as nulls too.
    for engine in [&duckdb as &dyn ScanEngine, &PolarsEngine] {
        let nulls_in_new = (400..800).filter(|i| i % 7 == 0).count();
        assert_eq!(
            sql_rows(
                engine,
                &ds,
                "SELECT count(*) AS n FROM t WHERE name IS NULL"
            )
            .await,
            vec![(400 + nulls_in_new).to_string()],
            "{}",
            engine.kind()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_root_folder_named_like_a_partition_gives_the_same_rows() {
    // Folders above the dataset are not partitions, whatever their names.
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("region=eu")
        .join("year=1999")
        .join("ds")
        .display()
        .to_string();
    let ds = dataset_by(&path, &["year", "day"], 500).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for filter in ["TRUE", "year = 2021", "day < DATE '2022-06-01' AND qty < 9"] {
        let scan = ds
            .scan()
            .with_filter_str(filter)
            .unwrap()
            .with_columns(["id", "year", "day", "region"]);
        assert!(
            assert_engines_agree(&scan, &duckdb, filter).await > 0,
            "{filter}"
        );
    }
}

#[tokio::test]
async fn engines_run_inside_a_current_thread_runtime() {
    // Polars blocks on its own runtime while it plans, which tokio refuses on a
    // current-thread runtime (it panicked there); every engine must work on one.
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let scan = ds
        .scan()
        .with_filter_str("year = 2021 AND qty < 10")
        .unwrap();
    let rows = assert_engines_agree(&scan, &duckdb, "current thread").await;
    assert!(rows > 0);
    for engine in [&duckdb as &dyn ScanEngine, &PolarsEngine] {
        assert_eq!(
            sql_rows(engine, &ds, "SELECT count(*) FROM t WHERE year = 2021").await,
            vec!["1000"],
            "{}",
            engine.kind()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scans_larger_than_one_hand_off_give_the_same_rows() {
    // Polars runs scans of at most 131 072 rows in memory and larger ones on its
    // streaming engine; DuckDB hands its results over in groups. Both paths must agree.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large").display().to_string();
    let ds = dataset_by(&path, &["year"], 80_000).await;
    assert!(ds.snapshot().rows() > 131_072);
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for filter in ["TRUE", "qty < 10 AND year >= 2021"] {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        let rows = assert_engines_agree(&scan, &duckdb, filter).await;
        assert!(rows > 20_000, "{filter}: {rows}");
    }
    assert_eq!(
        sql_rows(&PolarsEngine, &ds, "SELECT count(*) FROM t").await,
        vec!["160000"]
    );
}

/// Half-hourly readings (`id`, `at` in Europe/Berlin, `day`, `note`) across the night
/// Berlin moved to summer time (2023-03-26, 01:00 UTC), from 2023-03-25 00:00 UTC (reading
/// `id` at `id` half hours later; every 11th has no time), partitioned by day.
async fn berlin_readings(path: &str) -> Dataset {
    let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Berlin".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("at", zoned, true),
        Field::new("day", DataType::Int32, false),
        Field::new("note", DataType::Utf8, true),
    ]));
    let start = 1_679_702_400_000_000i64; // 2023-03-25 00:00:00 UTC
    let ids: Vec<i64> = (0..144).collect();
    let at: Vec<Option<i64>> = (ids.iter())
        .map(|i| (i % 11 != 0).then_some(start + i * 1_800_000_000))
        .collect();
    let day: Vec<i32> = ids.iter().map(|i| 25 + (*i / 48) as i32).collect();
    let note: Vec<Option<String>> = (ids.iter())
        .map(|i| (i % 5 != 0).then(|| ["ok", "odd", "late"][*i as usize % 3].to_string()))
        .collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(TimestampMicrosecondArray::from(at).with_timezone("Europe/Berlin")),
            Arc::new(Int32Array::from(day)),
            Arc::new(StringArray::from(note)),
        ],
    )
    .unwrap();
    written(path, batch, "day").await
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_in_a_zone_other_than_utc_filter_alike_on_every_engine() {
    // A literal without an offset is UTC, as dala reads it.
    let dir = tempfile::tempdir().unwrap();
    let ds = berlin_readings(&dir.path().join("readings").display().to_string()).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for filter in [
        "at >= TIMESTAMP '2023-03-26 01:30:00'",
        "at < TIMESTAMP '2023-03-26 00:59:59' OR at > TIMESTAMP '2023-03-26 03:00:00'",
        "at BETWEEN TIMESTAMP '2023-03-26 00:00:00' AND TIMESTAMP '2023-03-26 02:00:00'",
        "at NOT BETWEEN TIMESTAMP '2023-03-25 12:00:00' AND TIMESTAMP '2023-03-27 12:00:00'",
        "at >= TIMESTAMP '2023-03-26 03:30:00+02:00' AND day = 26",
        "at = TIMESTAMP '2023-03-26 01:00:00'",
        "at <> TIMESTAMP '2023-03-26 01:00:00' AND id < 60",
        "at IS NULL OR at < TIMESTAMP '2023-03-25 03:00:00'",
        // A date is its midnight in UTC.
        "at >= DATE '2023-03-26'",
        "at < DATE '2023-03-26' AND note LIKE 'o%'",
        // With a condition that Polars reads through its SQL parser.
        "at >= TIMESTAMP '2023-03-26 01:30:00' AND note LIKE 'o%'",
        "note LIKE '%d%' OR at BETWEEN TIMESTAMP '2023-03-26 00:00:00' AND TIMESTAMP '2023-03-26 02:00:00'",
    ] {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        let found = assert_engines_agree(&scan, &duckdb, filter).await;
        assert!(found > 0, "{filter}: no rows");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duckdb_sql_reads_times_in_utc_whatever_the_machines_zone() {
    // This suite runs a second time under New York time; the answers must not change.
    let dir = tempfile::tempdir().unwrap();
    let ds = berlin_readings(&dir.path().join("readings").display().to_string()).await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let timed = (0..144i64).filter(|i| i % 11 != 0);
    // A TIMESTAMP without an offset, or a string, compared with the zoned column is UTC.
    let after: Vec<String> = timed
        .clone()
        .filter(|i| *i >= 51)
        .map(|i| i.to_string())
        .collect();
    for query in [
        "SELECT id FROM t WHERE \"at\" >= TIMESTAMP '2023-03-26 01:30:00'",
        "SELECT id FROM t WHERE \"at\" >= '2023-03-26 01:30:00'",
    ] {
        let mut got = sql_rows(&duckdb, &ds, query).await;
        got.sort_by_key(|id| id.parse::<i64>().unwrap());
        assert_eq!(got, after, "{query}");
    }
    // A cast to a date falls on the UTC day.
    let days: Vec<String> = (25..28)
        .map(|day| {
            let n = timed.clone().filter(|i| 25 + i / 48 == day).count();
            format!("2023-03-{day}|{n}")
        })
        .collect();
    let query = "SELECT CAST(\"at\" AS DATE) AS d, count(*) AS n FROM t \
                 WHERE \"at\" IS NOT NULL GROUP BY d";
    assert_eq!(sql_rows(&duckdb, &ds, query).await, days);
    // The column comes back as instants in UTC, DuckDB's zone for the query.
    let batches: Vec<RecordBatch> = duckdb
        .sql(
            vec![("t".into(), ds.scan().request().unwrap())],
            "SELECT \"at\" FROM t LIMIT 1",
            &[],
        )
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        batches[0].schema().field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn times_finer_than_a_column_or_than_a_microsecond_filter_alike_on_every_engine() {
    // A time is compared as it is written, not cut to the column's unit: nanoseconds on a
    // column of nanoseconds, half milliseconds on a column of milliseconds in a zone.
    use arrow::array::{TimestampMillisecondArray, TimestampNanosecondArray};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fine").display().to_string();
    let berlin = DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Berlin".into()));
    let utc_ns = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ns", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("ms", berlin, true),
        Field::new("ns_utc", utc_ns, true),
        Field::new("day", DataType::Int32, false),
    ]));
    let start_ns = 1_679_702_400_000_000_000i64; // 2023-03-25 00:00:00 UTC
    let ids: Vec<i64> = (0..100).collect();
    // Row i: `ns` is i × 1 001 ns after the start, `ms` i ms after it; each null now and then.
    let ns: Vec<Option<i64>> = (ids.iter())
        .map(|i| (i % 11 != 0).then_some(start_ns + i * 1_001))
        .collect();
    let ms: Vec<Option<i64>> = (ids.iter())
        .map(|i| (i % 13 != 0).then_some(start_ns / 1_000_000 + i))
        .collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(TimestampNanosecondArray::from(ns.clone())),
            Arc::new(TimestampMillisecondArray::from(ms.clone()).with_timezone("Europe/Berlin")),
            Arc::new(TimestampNanosecondArray::from(ns.clone()).with_timezone("UTC")),
            Arc::new(Int32Array::from(
                ids.iter().map(|i| (*i / 50) as i32).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let ds = written(&path, batch, "day").await;
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let in_ns = |i: usize, limit: i64| ns[i].is_some_and(|v| v - start_ns >= limit);
    // Each filter, and which rows it keeps.
    type Keeps<'a> = Box<dyn Fn(usize) -> bool + 'a>;
    let cases: [(&str, Keeps); 8] = [
        (
            "ns = TIMESTAMP '2023-03-25 00:00:00.000010010'",
            Box::new(|i| i == 10),
        ),
        (
            "ns > TIMESTAMP '2023-03-25 00:00:00.000010010'",
            Box::new(|i| in_ns(i, 10_011)),
        ),
        (
            "ns >= TIMESTAMP '2023-03-25 00:00:00.000010011'",
            Box::new(|i| in_ns(i, 10_011)),
        ),
        (
            "ns BETWEEN TIMESTAMP '2023-03-25 00:00:00.000002002' \
             AND TIMESTAMP '2023-03-25 00:00:00.000005005'",
            Box::new(|i| (2..=5).contains(&i)),
        ),
        (
            "ns < '2023-03-25 00:00:00.000003003'",
            Box::new(|i| (1..3).contains(&i)),
        ),
        (
            "ms >= TIMESTAMP '2023-03-25 00:00:00.0105'",
            Box::new(|i| i >= 11 && ms[i].is_some()),
        ),
        (
            "ms = TIMESTAMP '2023-03-25 00:00:00.0105'",
            Box::new(|_| false),
        ),
        (
            "ms < '2023-03-25 01:00:00.0105+01:00'",
            Box::new(|i| i <= 10 && ms[i].is_some()),
        ),
    ];
    for (filter, expected) in cases {
        let scan = ds
            .scan()
            .with_filter_str(filter)
            .unwrap()
            .with_columns(["id", "ns", "ms", "day"]);
        assert_engines_agree(&scan, &duckdb, filter).await;
        let (_, batches) = run(&scan, &ArrowEngine).await;
        let mut found: Vec<i64> = (batches.iter())
            .flat_map(|b| {
                let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                ids.values().to_vec()
            })
            .collect();
        found.sort_unstable();
        let wanted: Vec<i64> = (0..100)
            .filter(|i| expected(*i))
            .map(|i| i as i64)
            .collect();
        assert_eq!(found, wanted, "{filter}");
    }

    // DuckDB holds times with a zone to the microsecond: it refuses to return or filter on
    // a column of them in nanoseconds, or to compare one with a finer time, rather than cut
    // the nanoseconds off. Arrow and Polars return them whole.
    for (filter, columns) in [
        ("TRUE", &["id", "ns_utc"][..]),
        ("ns_utc > TIMESTAMP '2023-03-25 00:00:00'", &["id"][..]),
        (
            "ms > TIMESTAMP '2023-03-25 00:00:00.000000001'",
            &["id"][..],
        ),
    ] {
        let scan = ds
            .scan()
            .with_filter_str(filter)
            .unwrap()
            .with_columns(columns.iter().copied());
        match scan.stream_on(&duckdb) {
            Err(Error::Unsupported(message)) => {
                assert!(message.contains("microsecond"), "{filter}: {message}")
            }
            Err(other) => panic!("{filter}: {other}"),
            Ok(_) => panic!("{filter}: DuckDB should refuse it"),
        }
        // SQL over the scan sees the columns as DuckDB reads them, but the scan's own
        // filter must hold as written.
        let request = scan.request().unwrap();
        let sql = duckdb.sql(vec![("t".into(), request)], "SELECT id FROM t", &[]);
        match (filter, sql) {
            ("TRUE", Ok(_)) => {}
            (_, Err(Error::Unsupported(message))) => {
                assert!(message.contains("the filter"), "{filter}: {message}")
            }
            (_, Err(other)) => panic!("{filter}: {other}"),
            (_, Ok(_)) => panic!("{filter}: DuckDB's SQL should refuse it"),
        }
    }
    let scan = ds
        .scan()
        .with_filter_str("ns_utc = TIMESTAMP '2023-03-25 00:00:00.000010010'")
        .unwrap()
        .with_columns(["id", "ns_utc"]);
    for engine in [&ArrowEngine as &dyn ScanEngine, &PolarsEngine] {
        let (_, batches) = run(&scan, engine).await;
        assert_eq!(
            rows(&batches),
            ["10|2023-03-25T00:00:00.000010010Z"],
            "{}",
            engine.kind()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn values_duckdb_reads_its_own_way_filter_alike_on_every_engine() {
    use arrow::array::{BinaryArray, Float32Array};
    let dir = tempfile::tempdir().unwrap();
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    // Floats DuckDB would read as decimals, bytes it would read as escapes, and partition
    // folders it would read as null.
    let schema = Arc::new(Schema::new(vec![
        Field::new("f", DataType::Float32, true),
        Field::new("d", DataType::Float64, true),
        Field::new("b", DataType::Binary, true),
        Field::new("k", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Float32Array::from(vec![0.1f32, 0.2, 0.3, 0.4, -0.0])),
            Arc::new(Float64Array::from(vec![
                1.9085281153046527,
                0.5,
                f64::NAN,
                2.0,
                -f64::NAN,
            ])),
            Arc::new(BinaryArray::from(vec![
                &b"a\\x41"[..],
                b"aA",
                b"z",
                b"\xff",
                b"",
            ])),
            Arc::new(StringArray::from(vec![
                Some("NULL"),
                Some("x"),
                Some("null"),
                None,
                Some("x"),
            ])),
        ],
    )
    .unwrap();
    let ds = written(&dir.path().join("values").display().to_string(), batch, "k").await;
    for (filter, expected) in [
        ("f > 0.1", 4), // 0.1 as a FLOAT is a little more than 0.1
        ("f = 0.1", 0),
        ("d = 1.9085281153046527", 1),
        // As SQL engines compare floats: NaN (whatever its sign) is greater than every
        // number, and -0.0 equals 0.0.
        ("d > 0.4", 5),
        ("d > 1000", 2),
        ("f = 0", 1),
        ("f < 0", 0),
        ("f IN (0, 0.5)", 1),
        // Conditions on values alone, which engines would each read by rules of their own
        // (DuckDB casts '1' to 1, Polars TRUE to 1): decided as dala's reader decides them.
        ("'1' = 1", 0),
        ("'1' = 1 OR f = 0", 1),
        ("TRUE = 1", 0),
        ("2 IN (1, 2)", 5),
        ("NOT ('a' = 'b') AND f = 0", 1),
        ("5 BETWEEN 1 AND 10 AND f > 0.3", 2), // 0.3 as a FLOAT is more than 0.3
        ("b = 'a\\x41'", 1),
        ("b = 'aA'", 1),
        ("k = 'null'", 1),
        ("k = 'NULL' OR k = 'x'", 3),
        ("k IS NULL", 1),
        ("k IS NOT NULL", 4),
    ] {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        assert_eq!(
            assert_engines_agree(&scan, &duckdb, filter).await,
            expected,
            "{filter}"
        );
    }

    // Files whose names DuckDB would read as patterns: `data?.parquet` matches
    // `data1.parquet` too.
    let adopted = dir.path().join("adopted");
    std::fs::create_dir_all(&adopted).unwrap();
    for (name, first) in [
        ("data?.parquet", 1i64),
        ("data1.parquet", 10),
        ("*.parquet", 20),
    ] {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let ids = Int64Array::from(vec![first, first + 1]);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids)]).unwrap();
        let file = std::fs::File::create(adopted.join(name)).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
    let ds = Dataset::open(adopted.display().to_string()).await.unwrap();
    assert_eq!(
        assert_engines_agree(&ds.scan(), &duckdb, "patterns").await,
        6
    );
    let query = "SELECT id FROM t";
    assert_eq!(
        sql_rows(&duckdb, &ds, query).await,
        ["1", "10", "11", "2", "20", "21"]
    );
    let conn = duckdb.connection().unwrap();
    let error = register_view(&conn, "t", &ds.scan().request().unwrap()).unwrap_err();
    assert!(
        matches!(&error, Error::Unsupported(m) if m.contains("read as a pattern")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dictionary_columns_filter_alike_and_keep_their_columns_when_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("c", dictionary, true),
    ]));
    let c: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
        vec!["x", "y"].into_iter().collect();
    let ids = Int64Array::from(vec![1, 2]);
    let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(c)]).unwrap();
    let path = dir.path().join("dict").display().to_string();
    let (ds, _) = Dataset::builder(&path)
        .write([Ok(batch)], &WriteOptions::default())
        .await
        .unwrap();
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for engine in [&duckdb as &dyn ScanEngine, &PolarsEngine] {
        for (filter, expected) in [("id > 5", 0), ("id > 0", 2)] {
            let request = ds
                .scan()
                .with_filter_str(filter)
                .unwrap()
                .request()
                .unwrap();
            let query = "SELECT count(*) AS n, max(c) AS top FROM t";
            let batches: Vec<RecordBatch> = (engine.sql(vec![("t".into(), request)], query, &[]))
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let n = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
            let n = n.as_any().downcast_ref::<Int64Array>().unwrap().value(0);
            assert_eq!(n, expected, "{} {filter}", engine.kind());
        }
    }
    for (filter, expected) in [("c LIKE 'x%'", 1), ("c = 'y'", 1), ("c IN ('x', 'z')", 1)] {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        assert_eq!(
            assert_engines_agree(&scan, &duckdb, filter).await,
            expected,
            "{filter}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn comparisons_run_in_dalas_types_on_every_engine() {
    use arrow::array::{TimestampMillisecondArray, UInt64Array};
    // Values where an engine comparing in a type of its own would answer otherwise: a
    // coarser time unit cuts 1.5 ms to 1 ms, floats make 2^53 + 1 equal 2^53, and a decimal
    // type too narrow for both sides overflows into nulls.
    let decimal = |values: Vec<i128>, precision, scale| {
        Decimal128Array::from(values)
            .with_precision_and_scale(precision, scale)
            .unwrap()
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ms", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("us", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("i", DataType::Int64, true),
        Field::new("u", DataType::UInt64, true),
        Field::new("wide", DataType::Decimal128(20, 2), true),
        Field::new("fine", DataType::Decimal128(10, 8), true),
        Field::new("exact", DataType::Decimal128(38, 20), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![0, 1])),
            Arc::new(TimestampMillisecondArray::from(vec![1, 2])),
            Arc::new(TimestampMicrosecondArray::from(vec![1_500, 1_500])),
            Arc::new(Int64Array::from(vec![(1 << 53) + 1, i64::MAX - 10])),
            Arc::new(UInt64Array::from(vec![1 << 53, 0])),
            Arc::new(decimal(vec![10i128.pow(15), 0], 20, 2)), // 1e13, 0
            Arc::new(decimal(vec![10i128.pow(8), 2 * 10i128.pow(8)], 10, 8)), // 1, 2
            Arc::new(decimal(vec![10i128.pow(20), 10i128.pow(20)], 38, 20)), // 1, 1
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compare").display().to_string();
    let (ds, _) = Dataset::builder(&path)
        .write([Ok(batch)], &WriteOptions::default())
        .await
        .unwrap();
    let duckdb = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    for (filter, expected) in [
        ("ms < us", 1),
        ("ms = us", 0),
        ("i = u", 0),
        ("i > u", 2),
        ("wide > fine", 1),
        ("i >= 9223372036854775808", 0),
        ("i BETWEEN 0 AND 9223372036854775808", 2),
    ] {
        let scan = ds.scan().with_filter_str(filter).unwrap();
        assert_eq!(
            assert_engines_agree(&scan, &duckdb, filter).await,
            expected,
            "{filter}"
        );
    }
    // An integer with more digits than a decimal column holds: dala and Polars compare in
    // floats; DuckDB casts the value to the column's type and refuses it.
    let scan = ds
        .scan()
        .with_filter_str("exact < 1000000000000000000")
        .unwrap();
    let (_, arrow) = run(&scan, &ArrowEngine).await;
    let (_, polars) = run(&scan, &PolarsEngine).await;
    assert_eq!((rows(&polars), rows(&arrow).len()), (rows(&arrow), 2));
}
