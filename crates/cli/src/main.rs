//! `dala`: the command line of the dala data lake toolkit.
//!
//! Datasets are named by a path or URL (`file://`, `s3://`, `memory://`). Errors print one
//! line and exit non-zero.

mod cache;
mod catalog;
mod demo;
mod input;
mod malloc;
mod optimize;
mod output;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dala_dataset::{
    ArrowEngine, CompressionSpec, Dataset, Engine, ScanEngine, SchemaMode, SortColumn, WriteMode,
    WriteOptions,
};

/// Manage hive-partitioned Parquet datasets.
#[derive(Parser)]
#[command(name = "dala", version, about)]
struct Cli {
    /// The catalog file (a path or URL) that `catalog` and `query` use.
    #[arg(long, global = true, env = "DALA_CATALOG", default_value = dala_catalog::DEFAULT_CATALOG)]
    catalog: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a Parquet or CSV file into a dataset (created if missing).
    Write(WriteArgs),
    /// Read rows from a dataset, with a filter, projection and limit.
    Scan(ScanArgs),
    /// Show a dataset's version, files, rows, bytes, partitions and schema.
    Info {
        /// The dataset path or URL.
        dataset: String,
        /// Show this version instead of the latest.
        #[arg(long)]
        version: Option<u64>,
    },
    /// List a dataset's commits, newest first.
    History {
        /// The dataset path or URL.
        dataset: String,
    },
    /// Remove the rows a filter matches (files matched whole are dropped unread).
    Delete {
        /// The dataset path or URL.
        dataset: String,
        /// The rows to remove, e.g. `year = 2020 AND qty < 10` (SQL-like).
        #[arg(long)]
        filter: String,
    },
    /// Show a dataset's properties, or set them (`KEY=VALUE`; an empty value clears one),
    /// e.g. `engine.default=duckdb`, `checkpoint.interval=50`, `retention.seconds=86400`.
    Properties {
        /// The dataset path or URL.
        dataset: String,
        /// Properties to set.
        #[arg(value_parser = parse_property)]
        set: Vec<(String, String)>,
    },
    /// Register data files added to the folder behind dala's back.
    Sync {
        /// The dataset path or URL.
        dataset: String,
    },
    /// Named datasets: init, list, show, register, drop, rename.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Run SQL over the catalog's tables (DuckDB by default).
    Query(catalog::QueryArgs),
    /// Materialized views: create, refresh, status, drop.
    View {
        #[command(subcommand)]
        command: catalog::ViewCommand,
    },
    /// Bin-pack small files into files of a target size (optionally sorted or without
    /// duplicates), one commit per partition; `--dry-run` prints the plan.
    Compact(optimize::CompactArgs),
    /// Tune a dataset: `dtypes` (narrowest lossless types), `compression` (measured
    /// codecs, dictionary, row groups, bloom filters) or `all`; `--dry-run` prints plans.
    Optimize {
        #[command(subcommand)]
        command: optimize::OptimizeCommand,
    },
    /// Write every row again under new partition columns (derived date parts too), in one
    /// commit; `--dry-run` prints the plan.
    Repartition(optimize::RepartitionArgs),
    /// Delete data files no version within the retention references, and old orphans;
    /// `--dry-run` lists them.
    Vacuum(optimize::VacuumArgs),
    /// A dataset's health: small files, bytes reclaimable, statistics coverage.
    Stats(optimize::StatsArgs),
    /// The read cache under object stores (set up by DALA_CACHE, DALA_CACHE_MEMORY,
    /// DALA_CACHE_DIR, DALA_CACHE_DISK): `stats` and `clear` of its SSD tier.
    Cache {
        #[command(subcommand)]
        command: cache::CacheCommand,
    },
    /// Generate TPC-H lineitem data, write it partitioned by year and month of its ship
    /// date, and scan it with filters, printing what was pruned.
    Demo(demo::DemoArgs),
    /// Generate a TPC-H table as one Parquet file (lineitem gets `year` and `month` of
    /// `l_shipdate` with `--ship-year-month`).
    Generate(demo::GenerateArgs),
}

#[derive(Args)]
struct WriteArgs {
    /// Input file: `.parquet` or `.csv` (CSV types are inferred from the first rows).
    input: PathBuf,
    /// The dataset path or URL.
    dataset: String,
    /// Partition columns, comma-separated.
    #[arg(long, value_delimiter = ',')]
    partition_by: Vec<String>,
    /// append, overwrite, overwrite-partitions, insert (rows with absent keys), update
    /// (rows with present keys) or upsert (both).
    #[arg(long, default_value = "append")]
    mode: WriteMode,
    /// Key columns of insert, update and upsert, comma-separated (insert without a key
    /// matches whole rows).
    #[arg(long, value_delimiter = ',')]
    key: Vec<String>,
    /// Codec and level, e.g. zstd:3, snappy, none.
    #[arg(long, default_value = "zstd:3")]
    compression: CompressionSpec,
    /// Rows per row group.
    #[arg(long)]
    row_group_size: Option<usize>,
    /// Rows per file.
    #[arg(long)]
    max_rows_per_file: Option<usize>,
    /// Sort the rows of each file by these columns (`col`, `col:desc`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    sort_by: Vec<SortColumn>,
    /// Drop repeated input rows: equal on these columns, or on all columns when none are
    /// given.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    unique: Option<Vec<String>>,
    /// Derive partition columns named year, month, week, day, hour or date from this
    /// timestamp column (recorded with the dataset for later writes).
    #[arg(long)]
    timestamp_column: Option<String>,
    /// strict (the input has the dataset's columns) or merge (add new columns, widen types).
    #[arg(long, default_value = "strict")]
    schema_mode: SchemaMode,
}

/// How rows print.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

#[derive(Args)]
struct ScanArgs {
    /// The dataset path or URL.
    dataset: String,
    /// A filter such as `year = 2024 AND qty < 10` (SQL-like).
    #[arg(long)]
    filter: Option<String>,
    /// Columns to return, comma-separated.
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Return at most this many rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Read this version instead of the latest.
    #[arg(long)]
    version: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to this file instead of standard output (required for parquet).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print what the scan would read (files and row groups pruned) instead of rows.
    #[arg(long)]
    explain: bool,
    /// The engine that reads the files dala's index leaves: arrow (dala's own), duckdb, or
    /// polars (in builds with the `polars` feature). Default: the DALA_ENGINE variable,
    /// else the dataset's `engine.default` property, else arrow.
    #[arg(long)]
    engine: Option<Engine>,
}

fn main() {
    malloc::cap_arenas();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async_main());
}

async fn async_main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("DALA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = run(cli).await;
    cache::persist_counts();
    if let Err(e) = result {
        if e.chain().any(is_broken_pipe) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        eprintln!("error: {}", error_message(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// already holds (object-store errors repeat their sources in their own text).
fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// The exit status of a process a closed pipe stopped (128 + SIGPIPE), as shells report it.
const BROKEN_PIPE_EXIT: i32 = 141;

fn is_broken_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Output piped into a reader that stops early (`dala ... | head`) ends the process
/// quietly, as it does for other command-line tools, instead of with a panic from
/// `println!`.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Write(args) => write(args).await,
        Command::Scan(args) => scan(args).await,
        Command::Info { dataset, version } => info(&dataset, version).await,
        Command::History { dataset } => history(&dataset).await,
        Command::Delete { dataset, filter } => {
            let mut ds = Dataset::open(&dataset).await?;
            let filter = dala_dataset::Expr::parse(&filter)?;
            let started = Instant::now();
            let result = ds.delete(filter).await?;
            println!("{result} in {:.2}s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Properties { dataset, set } => properties(&dataset, set).await,
        Command::Sync { dataset } => {
            let mut ds = Dataset::open(&dataset).await?;
            let result = ds.refresh().await?;
            println!("{result}");
            Ok(())
        }
        Command::Catalog { command } => catalog::run(&cli.catalog, command).await,
        Command::Query(args) => catalog::query(&cli.catalog, args).await,
        Command::View { command } => catalog::view(&cli.catalog, command).await,
        Command::Compact(args) => optimize::compact(args).await,
        Command::Optimize { command } => optimize::optimize(command).await,
        Command::Repartition(args) => optimize::repartition(args).await,
        Command::Vacuum(args) => optimize::vacuum(args).await,
        Command::Stats(args) => optimize::stats(args).await,
        Command::Cache { command } => cache::run(command),
        Command::Demo(args) => demo::run(args, &cli.catalog).await,
        Command::Generate(args) => demo::generate(args),
    }
}

async fn write(args: WriteArgs) -> Result<()> {
    let mut options = WriteOptions {
        mode: args.mode,
        partition_by: args.partition_by,
        key: args.key,
        unique: args.unique,
        timestamp_column: args.timestamp_column,
        schema_mode: args.schema_mode,
        compression: args.compression,
        max_rows_per_file: args.max_rows_per_file,
        sort_by: args.sort_by,
        ..WriteOptions::default()
    };
    if let Some(rows) = args.row_group_size {
        options.row_group_size = rows;
    }
    let input = input::open(&args.input)?;
    let started = Instant::now();
    let result = Dataset::write_to(&args.dataset, input, &options)
        .await
        .with_context(|| format!("writing {} to {}", args.input.display(), args.dataset))?;
    println!("{result} in {:.2}s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn scan(args: ScanArgs) -> Result<()> {
    let dataset = match args.version {
        Some(v) => Dataset::open_at(&args.dataset, v).await?,
        None => Dataset::open(&args.dataset).await?,
    };
    let mut scan = dataset.scan();
    if let Some(filter) = &args.filter {
        scan = scan.with_filter_str(filter)?;
    }
    if let Some(columns) = args.columns {
        scan = scan.with_columns(columns);
    }
    if let Some(limit) = args.limit {
        scan = scan.with_limit(limit);
    }
    let engine = Engine::choose(args.engine, dataset.snapshot().default_engine()?, None)?;
    if args.explain {
        println!("{}", scan.explain().await?);
        println!("engine: {engine}");
        return Ok(());
    }
    output::write(
        scan,
        engine_for(engine)?.as_ref(),
        args.format,
        args.output.as_deref(),
    )
    .await
}

/// The engine of a kind.
fn engine_for(kind: Engine) -> Result<Box<dyn ScanEngine>> {
    Ok(match kind {
        Engine::Duckdb => Box::new(dala_duckdb::DuckdbEngine::new(
            &dala_duckdb::DuckdbOptions::default(),
        )?),
        #[cfg(feature = "polars")]
        Engine::Polars => Box::new(dala_polars::PolarsEngine),
        Engine::Arrow => Box::new(ArrowEngine),
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "the {other} engine is not in this build (build dala-cli with `--features {other}`)"
        ),
    })
}

async fn info(location: &str, version: Option<u64>) -> Result<()> {
    let dataset = match version {
        Some(v) => Dataset::open_at(location, v).await?,
        None => Dataset::open(location).await?,
    };
    let snapshot = dataset.snapshot();
    println!("dataset:    {}", dataset.url());
    println!("version:    {}", snapshot.version());
    println!("files:      {}", snapshot.files().len());
    println!("rows:       {}", snapshot.rows());
    println!("bytes:      {}", snapshot.bytes());
    let partitions = snapshot.partitions();
    let names: Vec<String> = snapshot
        .partitioning()
        .iter()
        .map(|p| format!("{} ({})", p.name, p.data_type))
        .collect();
    println!(
        "partitions: {} by [{}]",
        if names.is_empty() {
            0
        } else {
            partitions.len()
        },
        names.join(", ")
    );
    println!("schema:");
    for field in snapshot.schema().fields() {
        let null = if field.is_nullable() { "" } else { " not null" };
        println!("  {}: {}{null}", field.name(), field.data_type());
    }
    Ok(())
}

/// `KEY=VALUE`.
fn parse_property(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    Ok((key.trim().to_string(), value.trim().to_string()))
}

async fn properties(location: &str, set: Vec<(String, String)>) -> Result<()> {
    let mut dataset = Dataset::open(location).await?;
    if !set.is_empty() {
        let result = dataset.set_properties(set.into_iter().collect()).await?;
        if let Some(version) = result.version {
            println!("version {version}");
        }
    }
    for (key, value) in dataset.snapshot().properties() {
        println!("{key}={value}");
    }
    Ok(())
}

async fn history(location: &str) -> Result<()> {
    let dataset = Dataset::open(location).await?;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "version",
        "time",
        "operation",
        "files +/-",
        "rows +/-",
        "partitions",
    ]);
    for commit in dataset.history().await? {
        let time = chrono::DateTime::from_timestamp_millis(commit.timestamp)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_default();
        table.add_row([
            commit.version.to_string(),
            time,
            commit.operation.to_string(),
            format!("+{} -{}", commit.add.len(), commit.remove.len()),
            format!("+{} -{}", commit.rows_added(), commit.rows_removed()),
            commit.partitions.len().to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}
