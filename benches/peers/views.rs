//! P7: a materialized view refreshed incrementally against in full.
//!
//! The source is TPC-H lineitem partitioned by `l_shipdate` (one partition per day), in a
//! catalog as `p7.lineitem`; the view `p7.daily` is a daily aggregate over it, refreshed
//! incrementally by `l_shipdate`. Each measured run appends one new day (a copy of the
//! last day's rows, a day later; not timed) and then refreshes the view, incrementally or
//! in full; the answer is the view's rows and its revenue total, read after the clock.

use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Decimal128Type;
use dala_catalog::{Catalog, RefreshMode, TableOptions, ViewOptions};
use dala_dataset::WriteOptions;
use futures::TryStreamExt;

use crate::{Report, Result};

/// The view: one row per ship date.
const DAILY: &str = "SELECT l_shipdate, count(*) AS lines, sum(l_quantity) AS quantity, \
     sum(l_extendedprice) AS revenue, \
     sum(l_extendedprice * (1 - l_discount)) AS discounted FROM p7.lineitem GROUP BY l_shipdate";

/// Writes the source from `input` into `workdir/source`, registers it in
/// `workdir/catalog.json` and creates the view (its first, full computation).
pub async fn setup(input: &str, workdir: &str) -> Result<Report> {
    crate::write_partitioned(input, &format!("{workdir}/source"), &["l_shipdate"], None).await?;
    let mut catalog = Catalog::init(&format!("{workdir}/catalog.json")).await?;
    // Relative to the catalog, so a copy of `workdir` is a whole, separate lake.
    catalog
        .register("p7.lineitem", "source", TableOptions::default())
        .await?;
    let view = ViewOptions {
        refresh: RefreshMode::Incremental {
            by: vec!["l_shipdate".into()],
            max_share: 0.5,
        },
        ..ViewOptions::default()
    };
    catalog.create_view("p7.daily", DAILY, view).await?;
    answer(&catalog, None).await
}

/// Appends one day to the source, then refreshes the view (`mode`: `incremental` or
/// `full`) and times that alone.
pub async fn refresh(workdir: &str, mode: &str) -> Result<Report> {
    let mut catalog = Catalog::open(&format!("{workdir}/catalog.json")).await?;
    let mut source = catalog.load("p7.lineitem").await?;
    // The last day from the index (one partition per day), so that copying it reads one
    // partition, not the table.
    let last_day = source
        .snapshot()
        .files()
        .filter_map(|f| f.partition_values.first()?.to_partition_text())
        .max()
        .ok_or("the source has no days")?;
    let next_day: Vec<RecordBatch> = catalog
        .query(&format!(
            "SELECT * REPLACE (l_shipdate + 1 AS l_shipdate) FROM p7.lineitem \
             WHERE l_shipdate = DATE '{last_day}'"
        ))
        .await?
        .try_collect()
        .await?;
    source
        .write(next_day.into_iter().map(Ok), &WriteOptions::default())
        .await?;

    let started = Instant::now();
    let info = match mode {
        "incremental" => catalog.refresh("p7.daily").await?,
        "full" => catalog.refresh_full("p7.daily").await?,
        other => return Err(format!("unknown refresh mode {other:?}").into()),
    };
    let seconds = started.elapsed().as_secs_f64();
    if info.kind != mode {
        return Err(format!(
            "asked for a {mode} refresh, got {} ({})",
            info.kind,
            info.fallback.unwrap_or_default()
        )
        .into());
    }
    answer(&catalog, Some(seconds)).await
}

/// The view's rows and revenue total.
async fn answer(catalog: &Catalog, seconds: Option<f64>) -> Result<Report> {
    let batches: Vec<RecordBatch> = catalog
        .query("SELECT count(*) AS days, sum(revenue) AS revenue FROM p7.daily")
        .await?
        .try_collect()
        .await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or("the view's total is empty")?;
    let days = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::UInt64)?;
    let revenue = batch.column(1).as_primitive::<Decimal128Type>();
    let cents = if revenue.is_null(0) {
        0
    } else {
        revenue.value(0)
    };
    Ok(Report {
        rows: days.as_primitive::<arrow::datatypes::UInt64Type>().value(0),
        sum: Some(format!("{}.{:02}", cents / 100, (cents % 100).abs())),
        seconds,
        rewritten: None,
        files: None,
        times: None,
        conversion: None,
    })
}
