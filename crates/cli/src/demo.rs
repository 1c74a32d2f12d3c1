//! `dala demo`: generate TPC-H lineitem, write it as a partitioned dataset, scan it.

use std::time::Instant;

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Decimal128Type;
use clap::Args;
use dala_catalog::{Catalog, TableOptions};
use dala_datagen::{GenOptions, Table, batches, with_ship_year_month};
use dala_dataset::{Dataset, ScanBuilder, WriteMode, WriteOptions};
use futures::{StreamExt, TryStreamExt};

/// Options of `dala demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// TPC-H scale factor (1 is about 6 million lineitem rows).
    #[arg(long, default_value_t = 0.1)]
    scale_factor: f64,
    /// Where to write the dataset.
    #[arg(long, default_value = "catalog/demo/lineitem")]
    path: String,
}

/// Options of `dala generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// lineitem or orders.
    #[arg(long, default_value = "lineitem")]
    table: String,
    /// TPC-H scale factor.
    #[arg(long, default_value_t = 1.0)]
    scale_factor: f64,
    /// Add `year` and `month` of `l_shipdate` (lineitem only).
    #[arg(long)]
    ship_year_month: bool,
    /// The Parquet file to write.
    #[arg(long)]
    output: std::path::PathBuf,
}

/// Writes a generated table to one Parquet file (uncompressed, so every reader pays the
/// same small decoding cost).
pub fn generate(args: GenerateArgs) -> Result<()> {
    let table = match args.table.as_str() {
        "lineitem" => Table::Lineitem,
        "orders" => Table::Orders,
        other => anyhow::bail!("unknown table {other:?} (lineitem or orders)"),
    };
    let options = GenOptions {
        scale_factor: args.scale_factor,
        ..GenOptions::default()
    };
    if let Err(e) = options.validate() {
        anyhow::bail!("{e}");
    }
    let tmp = args.output.with_extension("tmp");
    let mut writer: Option<parquet::arrow::ArrowWriter<std::fs::File>> = None;
    let mut rows = 0usize;
    for batch in batches(table, &options) {
        let batch = if args.ship_year_month {
            with_ship_year_month(batch)?
        } else {
            batch
        };
        rows += batch.num_rows();
        if writer.is_none() {
            let file = std::fs::File::create(&tmp)?;
            writer = Some(parquet::arrow::ArrowWriter::try_new(
                file,
                batch.schema(),
                None,
            )?);
        }
        if let Some(w) = writer.as_mut() {
            w.write(&batch)?;
        }
    }
    if let Some(w) = writer {
        w.close()?;
        std::fs::rename(&tmp, &args.output)?;
    }
    println!("{rows} rows written to {}", args.output.display());
    Ok(())
}

/// Runs the demo.
pub async fn run(args: DemoArgs, catalog: &str) -> Result<()> {
    let generate = GenOptions {
        scale_factor: args.scale_factor,
        ..GenOptions::default()
    };
    println!(
        "Generating TPC-H lineitem at scale factor {} and writing it to {}",
        args.scale_factor, args.path
    );
    let input = batches(Table::Lineitem, &generate).map(with_ship_year_month);
    let options = WriteOptions {
        mode: WriteMode::Overwrite,
        partition_by: vec!["year".into(), "month".into()],
        ..WriteOptions::default()
    };
    let started = Instant::now();
    let (dataset, result) = Dataset::builder(&args.path).write(input, &options).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "Wrote {} rows into {} files in {} partitions ({:.1} MB) in {seconds:.2}s: {:.0} rows/s; now at version {}",
        result.rows_inserted,
        result.files_added,
        dataset.snapshot().partitions().len(),
        result.bytes_written as f64 / 1e6,
        result.rows_inserted as f64 / seconds,
        dataset.version(),
    );

    let queries = [
        (
            "One month, small quantities (partition pruning, then row groups)",
            "year = 1995 AND month = 3 AND l_quantity < 10",
        ),
        (
            "Three days by ship date (file statistics pruning, no partition filter)",
            "l_shipdate BETWEEN DATE '1995-03-10' AND DATE '1995-03-12'",
        ),
    ];
    for (title, filter) in queries {
        println!("\n{title}\n  filter: {filter}");
        let scan = dataset
            .scan()
            .with_filter_str(filter)?
            .with_columns(["l_extendedprice"]);
        let explain = scan.explain().await?;
        println!(
            "  pruned: {} of {} files by partition, {} by statistics; read {} files, {} of {} row groups",
            explain.files_pruned_by_partition,
            explain.files_total,
            explain.files_pruned_by_stats,
            explain.files_kept,
            explain.row_groups_kept,
            explain.row_groups_total,
        );
        let started = Instant::now();
        let (rows, sum) = sum_extended_price(scan).await?;
        println!(
            "  result: {rows} rows, sum(l_extendedprice) = {:.2} in {:.1} ms",
            sum as f64 / 100.0,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    // The dataset by name in the catalog, and SQL over it.
    let mut catalog = Catalog::open(catalog).await?;
    if catalog.resolve_name(DEMO_TABLE).is_err() {
        let location = catalog.location_for(&args.path)?;
        catalog
            .register(DEMO_TABLE, &location, TableOptions::default())
            .await?;
    }
    println!(
        "\nTPC-H Q6 through the catalog ({DEMO_TABLE} in {}, on DuckDB)\n  {Q6}",
        catalog.location()
    );
    let started = Instant::now();
    let batches: Vec<_> = catalog.query(Q6).await?.try_collect().await?;
    println!(
        "{}\n  in {:.1} ms",
        arrow::util::pretty::pretty_format_batches(&batches)?,
        started.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "\nTry: dala info {0}; dala scan {0} --filter \"year = 1998\" --limit 5; \
         dala query \"SELECT year, count(*) FROM {DEMO_TABLE} GROUP BY year ORDER BY year\"",
        args.path
    );
    Ok(())
}

/// The demo dataset's name in the catalog.
const DEMO_TABLE: &str = "demo.lineitem";

/// TPC-H Q6: revenue from discounts in 1994.
const Q6: &str = "SELECT sum(l_extendedprice * l_discount) AS revenue FROM demo.lineitem \
     WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
     AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24";

async fn sum_extended_price(scan: ScanBuilder) -> Result<(u64, i128)> {
    let mut stream = scan.stream()?;
    let (mut rows, mut sum) = (0u64, 0i128);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        let prices = batch.column(0).as_primitive::<Decimal128Type>();
        if prices.null_count() < prices.len() {
            sum += arrow::compute::sum(prices).unwrap_or(0);
        }
    }
    Ok((rows, sum))
}
