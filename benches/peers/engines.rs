//! The engine workloads of the peer comparison: dala's engines (Arrow, DuckDB and Polars
//! over dala's pruned file list) against the same DuckDB and Polars reading the tree
//! themselves (`read_parquet` with a glob, `scan_parquet` with hive partitioning), built
//! from the same crates, so the ratio is dala's planning and hand-off alone.
//!
//! Queries on TPC-H lineitem partitioned by year and month:
//! - `select`: `year = 1995 AND month = 3 AND l_quantity < 10`, column `l_extendedprice`;
//! - `fullscan`: every row of `l_quantity` and `l_extendedprice`;
//! - `aggregate`: count and sums by `l_returnflag`, `l_linestatus` (SQL; not on Arrow).
//!
//! The clock stops when the result is whole in the caller's hands (arrow-rs batches, or a
//! Polars `DataFrame` for raw Polars); the answer (rows, sum of prices) is read after it, and
//! what the query leaves behind (DuckDB's database, which takes about 8 ms to close; the
//! dataset and engine) is dropped after it too, for every tool alike.

use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type};
use dala_dataset::{ArrowEngine, Dataset, ScanEngine};
use dala_duckdb::{DuckdbEngine, DuckdbOptions};
use dala_polars::PolarsEngine;
use dala_polars::polars::prelude::{
    DataFrame, HiveOptions, LazyFrame, PlRefPath, ScanArgsParquet, col, lit,
};
use dala_polars::polars::sql::SQLContext;
use futures::TryStreamExt;

use crate::{Report, Result};

const SELECT_FILTER: &str = "year = 1995 AND month = 3 AND l_quantity < 10";
/// TPC-H Q1 (its date with the standard substitution, 90 days before 1998-12-01).
const Q1: &str = "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, \
     sum(l_extendedprice) AS sum_base_price, \
     sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, \
     sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS price, \
     avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, \
     avg(l_discount) AS avg_disc, count(*) AS count_order FROM lineitem \
     WHERE l_shipdate <= DATE '1998-09-02' \
     GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus";
/// TPC-H Q6.
const Q6: &str = "SELECT sum(l_extendedprice * l_discount) AS price FROM lineitem \
     WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
     AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24";
const AGGREGATE: &str = "SELECT l_returnflag, l_linestatus, count(*) AS n, \
     sum(l_quantity) AS quantity, sum(l_extendedprice) AS price FROM lineitem \
     GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus";

/// Runs `query` with `tool` (`dala-arrow`, `dala-duckdb`, `dala-polars`, `raw-duckdb`,
/// `raw-polars`, `raw-polars+convert`: raw Polars handing its frame to arrow-rs, or
/// `dala-catalog`: `Catalog::query` with the dataset registered as `lineitem`).
pub async fn run(tool: &str, query: &str, dataset: &str) -> Result<Report> {
    if tool == "dala-catalog" {
        return catalog(query, dataset).await;
    }
    let started = Instant::now();
    let (batches, teardown) = match tool {
        "dala-arrow" | "dala-duckdb" | "dala-polars" => dala(tool, query, dataset).await?,
        "raw-duckdb" => raw_duckdb(query, dataset)?,
        "raw-polars" | "raw-polars+convert" => {
            let frame = raw_polars(query, dataset)?;
            let collected = started.elapsed().as_secs_f64();
            let batches = dala_polars::to_record_batches(frame)?;
            let seconds = started.elapsed().as_secs_f64();
            let mut report = report(query, &batches, seconds)?;
            if tool == "raw-polars" {
                report.seconds = Some(collected);
            } else {
                report.conversion = Some(seconds - collected);
            }
            return Ok(report);
        }
        other => return Err(format!("unknown engine tool {other:?}").into()),
    };
    let seconds = started.elapsed().as_secs_f64();
    drop(teardown);
    report(query, &batches, seconds)
}

/// A query's result, and what it leaves to drop once the clock has stopped.
type Answer = (Vec<RecordBatch>, Box<dyn std::any::Any>);

async fn dala(tool: &str, query: &str, dataset: &str) -> Result<Answer> {
    // The engine first, as a catalog query makes it: DuckDB starts in the background while
    // the dataset opens.
    let engine: Box<dyn ScanEngine> = match tool {
        "dala-duckdb" => Box::new(DuckdbEngine::new(&DuckdbOptions::default())?),
        "dala-polars" => Box::new(PolarsEngine),
        _ => Box::new(ArrowEngine),
    };
    let dataset = Dataset::open(dataset).await?;
    let stream = match query {
        "select" => dataset
            .scan()
            .with_filter_str(SELECT_FILTER)?
            .with_columns(["l_extendedprice"])
            .stream_on(engine.as_ref())?,
        "fullscan" => dataset
            .scan()
            .with_columns(["l_quantity", "l_extendedprice"])
            .stream_on(engine.as_ref())?,
        "aggregate" => engine.sql(
            vec![("lineitem".into(), dataset.scan().request()?)],
            AGGREGATE,
            &[],
        )?,
        other => return Err(format!("unknown query {other:?}").into()),
    };
    let batches = stream.try_collect().await?;
    Ok((batches, Box::new((engine, dataset))))
}

fn raw_duckdb(query: &str, dataset: &str) -> Result<Answer> {
    let source =
        format!("read_parquet('{dataset}/year=*/month=*/*.parquet', hive_partitioning = true)");
    let sql = match query {
        "select" => format!("SELECT l_extendedprice FROM {source} WHERE {SELECT_FILTER}"),
        "fullscan" => format!("SELECT l_quantity, l_extendedprice FROM {source}"),
        "aggregate" => AGGREGATE.replace("FROM lineitem", &format!("FROM {source}")),
        "q1" => Q1.replace("FROM lineitem", &format!("FROM {source}")),
        "q6" => Q6.replace("FROM lineitem", &format!("FROM {source}")),
        other => return Err(format!("unknown query {other:?}").into()),
    };
    let conn = duckdb::Connection::open_in_memory()?;
    let batches = conn.prepare(&sql)?.query_arrow([])?.collect();
    Ok((batches, Box::new(conn)))
}

fn raw_polars(query: &str, dataset: &str) -> Result<DataFrame> {
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            ..HiveOptions::default()
        },
        ..ScanArgsParquet::default()
    };
    let glob = format!("{dataset}/year=*/month=*/*.parquet");
    let frame = LazyFrame::scan_parquet(PlRefPath::new(glob.as_str()), args)?;
    let frame = match query {
        "select" => frame
            .filter(
                col("year")
                    .eq(lit(1995))
                    .and(col("month").eq(lit(3)))
                    .and(col("l_quantity").lt(lit(10))),
            )
            .select([col("l_extendedprice")]),
        "fullscan" => frame.select([col("l_quantity"), col("l_extendedprice")]),
        "aggregate" => {
            let mut context = SQLContext::new();
            context.register("lineitem", frame);
            context.execute(AGGREGATE)?
        }
        other => return Err(format!("unknown query {other:?}").into()),
    };
    Ok(frame.collect()?)
}

/// P5: a TPC-H query through the catalog (registering the dataset is not timed).
async fn catalog(query: &str, dataset: &str) -> Result<Report> {
    let sql = match query {
        "q1" => Q1,
        "q6" => Q6,
        other => return Err(format!("unknown catalog query {other:?}").into()),
    };
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("catalog.json").display().to_string();
    let mut catalog = dala_catalog::Catalog::init(&file).await?;
    let location = std::path::absolute(dataset)?.display().to_string();
    catalog
        .register("tpch.lineitem", &location, Default::default())
        .await?;
    let started = Instant::now();
    let batches: Vec<RecordBatch> = catalog.query(sql).await?.try_collect().await?;
    let seconds = started.elapsed().as_secs_f64();
    report(query, &batches, seconds)
}

/// Rows (groups, for `aggregate`) and the exact sum of the price column.
fn report(query: &str, batches: &[RecordBatch], seconds: f64) -> Result<Report> {
    let mut rows = 0u64;
    let mut cents = 0i128;
    for batch in batches {
        rows += batch.num_rows() as u64;
        let prices = batch
            .column_by_name(if matches!(query, "aggregate" | "q1" | "q6") {
                "price"
            } else {
                "l_extendedprice"
            })
            .ok_or("no price column")?;
        let prices = cast(prices, &DataType::Decimal128(38, 2))?; // rounds Q1's and Q6's scales
        let prices = prices.as_primitive::<Decimal128Type>();
        if prices.null_count() < prices.len() {
            cents += arrow::compute::sum(prices).unwrap_or(0);
        }
    }
    Ok(Report {
        rows,
        sum: Some(format!("{}.{:02}", cents / 100, (cents % 100).abs())),
        seconds: Some(seconds),
        rewritten: None,
        files: None,
        times: None,
        conversion: None,
    })
}
