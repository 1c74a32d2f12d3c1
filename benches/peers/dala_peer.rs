//! dala through its Rust API, for the peer comparison (`benches/peers/harness.py`).
//!
//! ```text
//! dala-peer write INPUT.parquet DATASET     P1: partitioned by year, month; zstd
//! dala-peer scan DATASET                    P2: one month, l_quantity < 10, sum(l_extendedprice)
//! dala-peer plan DATASET ID                 P3: open and answer `id = ID`
//! dala-peer many-files DATASET N            writes P3's dataset of N one-row files
//! dala-peer upsert DATASET CHANGES          P9: upsert by (l_orderkey, l_linenumber)
//! dala-peer small-files INPUT DATASET N     P4's input: about N files by year and month
//! dala-peer compact DATASET                 P4: compact to 128 MiB files
//! dala-peer engine TOOL QUERY DATASET       E: one query on one engine (see `engines.rs`)
//! dala-peer view-setup INPUT WORKDIR        P7: source by ship date, catalog, daily view
//! dala-peer view-refresh WORKDIR MODE       P7: append a day, refresh incremental|full
//! dala-peer full-scan DATASET               P8: every column of every row, sum(l_orderkey)
//! dala-peer remote-scan DATASET N [open-once]
//!                                           P6: P2's scan N times in one process, each
//!                                           opening the dataset (or on one opened before)
//!                                           through the cache DALA_CACHE_* configure;
//!                                           prints every time
//! ```
//! Prints one JSON line: the operation's own time in seconds, rows, and the sum if any
//! (for `upsert`: rows after it and, as the sum, the rows it marked as updated; read back
//! after the clock stops, with the rows its rewritten files held).

mod engines;
mod views;

use std::process::ExitCode;
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Decimal128Type;
use dala_dataset::{CompressionSpec, Dataset, WriteMode, WriteOptions, col, lit};
use futures::StreamExt;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn write(input: &str, output: &str) -> Result<(u64, Option<String>)> {
    let result = write_partitioned(input, output, &["year", "month"], None).await?;
    Ok((result.rows_inserted, None))
}

/// Writes the Parquet file `input` as a dataset at `output` partitioned by `columns`, zstd,
/// with at most `rows_per_file` rows in a file if given.
async fn write_partitioned(
    input: &str,
    output: &str,
    columns: &[&str],
    rows_per_file: Option<usize>,
) -> Result<dala_dataset::WriteResult> {
    let file = std::fs::File::open(input)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(65_536)
        .build()?;
    let options = WriteOptions {
        compression: "zstd:3".parse::<CompressionSpec>()?,
        max_rows_per_file: rows_per_file,
        ..WriteOptions::default().with_partition_by(columns.iter().copied())
    };
    Ok(Dataset::write_to(output, reader, &options).await?)
}

/// P4's input: `input` partitioned by year and month in about `files` files.
async fn small_files(input: &str, output: &str, files: u64) -> Result<(u64, Option<String>)> {
    let rows = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(std::fs::File::open(input)?)?,
    )
    .file_metadata()
    .num_rows() as u64;
    let per_file = usize::try_from(rows.div_ceil(files.max(1)))?;
    let result = write_partitioned(input, output, &["year", "month"], Some(per_file)).await?;
    Ok((result.rows_inserted, None))
}

/// P4: compacts the dataset to 128 MiB files; rows and files are read back after the clock.
async fn compact(dataset: &str) -> Result<Report> {
    let started = Instant::now();
    let mut ds = Dataset::open(dataset).await?;
    let plan = dala_optimize::plan_compaction(&ds, &dala_optimize::CompactOptions::default())?;
    dala_optimize::execute_compaction(&ds, &plan, &|_| {}).await?;
    let seconds = started.elapsed().as_secs_f64();
    ds.reload().await?;
    Ok(Report {
        rows: ds.scan().count_rows().await?,
        sum: None,
        seconds: Some(seconds),
        rewritten: None,
        files: Some(ds.snapshot().files().len()),
        times: None,
        conversion: None,
    })
}

async fn scan(dataset: &str) -> Result<(u64, Option<String>)> {
    scan_open(&Dataset::open(dataset).await?).await
}

/// P2's scan of an open dataset.
async fn scan_open(dataset: &Dataset) -> Result<(u64, Option<String>)> {
    let scan = dataset
        .scan()
        .with_filter_str("year = 1995 AND month = 3 AND l_quantity < 10")?
        .with_columns(["l_extendedprice"]);
    let mut stream = scan.stream()?;
    let (mut rows, mut cents) = (0u64, 0i128);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        let prices = batch.column(0).as_primitive::<Decimal128Type>();
        if prices.null_count() < prices.len() {
            cents += arrow::compute::sum(prices).unwrap_or(0);
        }
    }
    Ok((
        rows,
        Some(format!("{}.{:02}", cents / 100, (cents % 100).abs())),
    ))
}

/// P8: every column of every row; the sum of `l_orderkey`, whatever integer type it has.
async fn full_scan(dataset: &str) -> Result<(u64, Option<String>)> {
    let dataset = Dataset::open(dataset).await?;
    let mut stream = dataset.scan().stream()?;
    let (mut rows, mut sum) = (0u64, 0i64);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        let keys = batch
            .column_by_name("l_orderkey")
            .ok_or("no l_orderkey column")?;
        let keys = arrow::compute::cast(keys, &arrow::datatypes::DataType::Int64)?;
        sum += arrow::compute::sum(keys.as_primitive::<arrow::datatypes::Int64Type>()).unwrap_or(0);
    }
    Ok((rows, Some(sum.to_string())))
}

async fn plan(dataset: &str, id: i64) -> Result<(u64, Option<String>)> {
    let dataset = Dataset::open(dataset).await?;
    let rows = dataset
        .scan()
        .with_filter(col("id").eq(lit(id)))
        .count_rows()
        .await?;
    Ok((rows, None))
}

/// The comment P9's updated rows carry.
const UPDATED: &str = "updated by P9";

async fn upsert(dataset: &str, changes: &str) -> Result<Report> {
    let started = Instant::now();
    let mut ds = Dataset::open(dataset).await?;
    let before = ds.snapshot().clone();
    let file = std::fs::File::open(changes)?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let options = WriteOptions::default()
        .with_mode(WriteMode::Upsert)
        .with_key(["l_orderkey", "l_linenumber"]);
    ds.write(reader, &options).await?;
    let seconds = started.elapsed().as_secs_f64();
    let rewritten: u64 = before
        .files()
        .filter(|f| ds.snapshot().file(&f.path).is_none())
        .map(|f| f.rows)
        .sum();
    let updated = ds
        .scan()
        .with_filter(col("l_comment").eq(lit(UPDATED)))
        .count_rows()
        .await?;
    Ok(Report {
        rows: ds.scan().count_rows().await?,
        sum: Some(updated.to_string()),
        seconds: Some(seconds),
        rewritten: Some(rewritten),
        files: None,
        times: None,
        conversion: None,
    })
}

/// What a run prints.
struct Report {
    rows: u64,
    sum: Option<String>,
    /// The operation's own time, when it is not the whole run.
    seconds: Option<f64>,
    /// Rows in files an upsert replaced.
    rewritten: Option<u64>,
    /// Data files after the operation.
    files: Option<usize>,
    /// The time of each repeat, when the operation repeats.
    times: Option<Vec<f64>>,
    /// Seconds of `seconds` spent handing a Polars frame to arrow-rs (E's
    /// `raw-polars+convert`).
    conversion: Option<f64>,
}

impl From<(u64, Option<String>)> for Report {
    fn from((rows, sum): (u64, Option<String>)) -> Self {
        Report {
            rows,
            sum,
            seconds: None,
            rewritten: None,
            files: None,
            times: None,
            conversion: None,
        }
    }
}

/// P6: P2's scan `repeats` times, each opening the dataset anew (or, with `open_once`,
/// each on the dataset opened before the clock starts): the first is cold, the rest find
/// what the cache kept.
async fn remote_scan(dataset: &str, repeats: usize, open_once: bool) -> Result<Report> {
    let mut times = Vec::with_capacity(repeats);
    let mut answers = std::collections::BTreeSet::new();
    let opened = match open_once {
        true => Some(Dataset::open(dataset).await?),
        false => None,
    };
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let answer = match &opened {
            Some(opened) => scan_open(opened).await?,
            None => scan(dataset).await?,
        };
        times.push(started.elapsed().as_secs_f64());
        answers.insert(answer);
    }
    if answers.len() != 1 {
        return Err(format!("repeats disagree: {answers:?}").into());
    }
    let (rows, sum) = answers.pop_first().ok_or("no answer")?;
    Ok(Report {
        rows,
        sum,
        seconds: times.first().copied(),
        rewritten: None,
        files: None,
        times: Some(times),
        conversion: None,
    })
}

async fn run(args: &[String]) -> Result<Report> {
    if let [op, tool, query, dataset] = args
        && op == "engine"
    {
        return engines::run(tool, query, dataset).await;
    }
    match args {
        [op, dataset, changes] if op == "upsert" => return upsert(dataset, changes).await,
        [op, dataset] if op == "compact" => return compact(dataset).await,
        [op, dataset, repeats] if op == "remote-scan" => {
            return remote_scan(dataset, repeats.parse()?, false).await;
        }
        [op, dataset, repeats, once] if op == "remote-scan" && once == "open-once" => {
            return remote_scan(dataset, repeats.parse()?, true).await;
        }
        [op, input, workdir] if op == "view-setup" => return views::setup(input, workdir).await,
        [op, workdir, mode] if op == "view-refresh" => return views::refresh(workdir, mode).await,
        _ => {}
    }
    Ok(run_simple(args).await?.into())
}

async fn run_simple(args: &[String]) -> Result<(u64, Option<String>)> {
    match args {
        [op, input, output] if op == "write" => write(input, output).await,
        [op, dataset] if op == "scan" => scan(dataset).await,
        [op, dataset] if op == "full-scan" => full_scan(dataset).await,
        [op, input, output, files] if op == "small-files" => {
            small_files(input, output, files.parse()?).await
        }
        [op, dataset, id] if op == "plan" => plan(dataset, id.parse()?).await,
        [op, dataset, files] if op == "many-files" => {
            let files: usize = files.parse()?;
            dala_benches::write_many_files(dataset, files).await?;
            Ok((files as u64, None))
        }
        _ => Err(
            "usage: dala-peer write INPUT DATASET | scan DATASET | plan DATASET ID | \
             upsert DATASET CHANGES | small-files INPUT DATASET N | compact DATASET | engine TOOL QUERY DATASET | view-setup INPUT WORKDIR | \
             view-refresh WORKDIR incremental|full | full-scan DATASET"
                .into(),
        ),
    }
}

#[path = "../../crates/cli/src/malloc.rs"]
mod malloc;

fn main() -> ExitCode {
    malloc::cap_arenas();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(async_main()),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn async_main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    match run(&args).await {
        Ok(report) => {
            let seconds = report
                .seconds
                .unwrap_or_else(|| started.elapsed().as_secs_f64());
            let sum = report
                .sum
                .map(|s| format!(", \"sum\": \"{s}\""))
                .unwrap_or_default();
            let rewritten = report
                .rewritten
                .map(|r| format!(", \"rewritten\": {r}"))
                .unwrap_or_default();
            let files = report
                .files
                .map(|f| format!(", \"files\": {f}"))
                .unwrap_or_default();
            let times = report
                .times
                .map(|t| format!(", \"times\": {t:?}"))
                .unwrap_or_default();
            let conversion = report
                .conversion
                .map(|c| format!(", \"conversion\": {c}"))
                .unwrap_or_default();
            println!(
                "{{\"seconds\": {seconds}, \"rows\": {}{sum}{rewritten}{files}{times}{conversion}}}",
                report.rows
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dala-peer: {e}");
            ExitCode::FAILURE
        }
    }
}
