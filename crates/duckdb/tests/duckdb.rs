//! DuckDB specifics on a small dataset: the database settings, and a dataset registered as
//! a view on a caller's own connection. (The behavioural suite that runs on every engine is
//! `tests/engines` in the workspace.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use dala_dataset::{Dataset, WriteOptions};
use dala_duckdb::{DuckdbEngine, DuckdbOptions, register_view};

#[tokio::test(flavor = "multi_thread")]
async fn settings_apply_and_views_register_on_a_callers_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds").display().to_string();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("year", DataType::Int32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Int32Array::from(vec![2023, 2024, 2024])),
        ],
    )
    .unwrap();
    let options = WriteOptions::default().with_partition_by(["year"]);
    let (ds, _) = Dataset::builder(&path)
        .write([Ok(batch)], &options)
        .await
        .unwrap();

    let engine = DuckdbEngine::new(&DuckdbOptions {
        threads: Some(1),
        memory_limit: Some("512MB".into()),
        temp_directory: Some(dir.path().join("spill")),
        ..DuckdbOptions::default()
    })
    .unwrap();
    let conn = engine.connection().unwrap();
    let (threads, temp): (i64, String) = conn
        .query_row(
            "SELECT current_setting('threads'), current_setting('temp_directory')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(threads, 1);
    assert!(temp.ends_with("spill"), "{temp}");

    // Pruned by dala: the view holds the 2024 partition only.
    let request = ds
        .scan()
        .with_filter_str("year = 2024")
        .unwrap()
        .request()
        .unwrap();
    assert_eq!(request.files.len(), 1);
    register_view(&conn, "recent", &request).unwrap();
    let (rows, years): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT year) FROM recent",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, years), (2, 1));
}

#[tokio::test]
async fn scans_and_queries_use_the_buffer_size_and_time_zone_asked_for() {
    use arrow::array::AsArray;
    use dala_dataset::ScanEngine;
    use futures::TryStreamExt;
    let setting = |engine: &DuckdbEngine, name: &str| {
        let query = format!("SELECT current_setting('{name}') AS value");
        let stream = engine.sql(Vec::new(), &query, &[]).unwrap();
        async move {
            let batches: Vec<arrow::array::RecordBatch> = stream.try_collect().await.unwrap();
            let column = arrow::compute::cast(batches[0].column(0), &DataType::Utf8).unwrap();
            column.as_string::<i32>().value(0).to_string()
        }
    };
    let default = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let asked = DuckdbEngine::new(&DuckdbOptions {
        streaming_buffer_size: Some("4MB".into()),
        time_zone: Some("Europe/Berlin".into()),
        ..DuckdbOptions::default()
    })
    .unwrap();
    assert_eq!(setting(&default, "streaming_buffer_size").await, "7.6 MiB");
    assert_eq!(setting(&asked, "streaming_buffer_size").await, "3.8 MiB");
    // UTC whatever the machine's zone (the engine suite runs under New York time too).
    assert_eq!(setting(&default, "TimeZone").await, "UTC");
    assert_eq!(setting(&asked, "TimeZone").await, "Europe/Berlin");
    // A connection for native use has the engine's settings too.
    let zone: String = (asked.connection().unwrap())
        .query_row("SELECT current_setting('TimeZone')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(zone, "Europe/Berlin");

    for (options, name) in [
        (
            DuckdbOptions {
                streaming_buffer_size: Some("lots".into()),
                ..DuckdbOptions::default()
            },
            "streaming_buffer_size",
        ),
        (
            DuckdbOptions {
                time_zone: Some("Nowhere/Land".into()),
                ..DuckdbOptions::default()
            },
            "Nowhere/Land",
        ),
    ] {
        let error = DuckdbEngine::new(&options).unwrap_err();
        assert!(error.to_string().contains(name), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_of_every_form_read_the_tables_they_name() {
    use arrow::array::AsArray;
    use dala_dataset::ScanEngine;
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds").display().to_string();
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
    let (ds, _) = Dataset::builder(&path)
        .write([Ok(batch)], &WriteOptions::default())
        .await
        .unwrap();
    let engine = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let request = ds.scan().request().unwrap();
    let answer = |query: &str| {
        let stream = engine.sql(vec![("items".into(), request.clone())], query, &[]);
        async move {
            let batches: Vec<RecordBatch> = stream.unwrap().try_collect().await.unwrap();
            let mut values = Vec::new();
            for batch in &batches {
                let column = arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
                let column = column.as_string::<i32>();
                values.extend(column.iter().map(|v| v.unwrap_or("null").to_string()));
            }
            values.join(",")
        }
    };
    // A query that takes a WITH clause reads its tables from one (no view is created);
    // one that DuckDB refuses so reads them as views.
    let views = "(SELECT count(*) FROM duckdb_views() WHERE view_name = 'items')";
    let inlined = format!("SELECT {views} FROM items LIMIT 1");
    let refused = format!("WITH items AS (SELECT 1) SELECT {views}");
    assert_eq!(answer(&inlined).await, "0");
    assert_eq!(answer(&refused).await, "1");
    let sum = "6";
    assert_eq!(answer("SELECT sum(id) FROM items").await, sum);
    assert_eq!(answer("-- a comment\nFROM items SELECT sum(id)").await, sum);
    assert_eq!(
        answer("/* a comment */ (SELECT sum(id) FROM items)").await,
        sum
    );
    assert_eq!(
        answer("WITH doubled AS (SELECT id * 2 AS id FROM items) SELECT sum(id) FROM doubled")
            .await,
        "12"
    );
    assert_eq!(
        answer(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) \
             SELECT sum(id * n) FROM items, r"
        )
        .await,
        "36"
    );
    // A name the query defines itself hides the table, as it would hide a view.
    assert_eq!(
        answer("WITH items AS (SELECT 10 AS id) SELECT sum(id) FROM items").await,
        "10"
    );
    // Several statements run once each, over views.
    assert_eq!(
        answer("CREATE TEMP TABLE extra AS SELECT 4 AS id; SELECT sum(id) FROM (FROM items UNION ALL FROM extra)").await,
        "10"
    );
    // Statements that take no WITH clause read the table as a view.
    assert_eq!(answer("DESCRIBE items").await, "id");
    assert_eq!(answer("SUMMARIZE items").await, "id");
}

#[test]
fn connections_asked_for_while_the_database_starts_share_it() {
    // The database starts in the background: threads asking at once all wait for it, and
    // get connections to the same one.
    let engine = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let first = engine.connection().unwrap();
    first
        .execute_batch("CREATE TABLE shared AS SELECT 42 AS answer")
        .unwrap();
    let engine_for_threads = DuckdbEngine::new(&DuckdbOptions::default()).unwrap();
    let answers: Vec<i64> = std::thread::scope(|scope| {
        let asking: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let connection = engine_for_threads.connection().unwrap();
                    connection
                        .query_row("SELECT count(*) FROM duckdb_tables()", [], |row| {
                            row.get::<_, i64>(0)
                        })
                        .unwrap()
                })
            })
            .collect();
        asking.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        answers,
        vec![0; 4],
        "a new engine has a database of its own"
    );
    let second = engine.connection().unwrap();
    let answer: i64 = second
        .query_row("SELECT answer FROM shared", [], |row| row.get(0))
        .unwrap();
    assert_eq!(answer, 42);
    // An engine dropped while its database starts leaves nothing waiting.
    drop(DuckdbEngine::new(&DuckdbOptions::default()).unwrap());
}
