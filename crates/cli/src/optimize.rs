//! `dala compact`, `dala optimize`, `dala repartition`, `dala vacuum` and `dala stats`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use arrow::datatypes::DataType;
use clap::{Args, Subcommand};
use comfy_table::Table;
use dala_dataset::{CompressionSpec, Dataset, SortColumn, WriteOptions};
use dala_optimize::{
    AccessPattern, CompactOptions, CompactionReport, CompressionOptions, DtypeOptions, Period,
    RepartitionOptions, VacuumOptions, execute_compaction, execute_compression, execute_dtypes,
    execute_repartition, execute_vacuum, plan_compaction, plan_compression, plan_dtypes,
    plan_repartition, plan_vacuum,
};

use crate::catalog::ListFormat;

/// `dala compact`.
#[derive(Args)]
pub struct CompactArgs {
    /// The dataset path or URL.
    dataset: String,
    /// Bytes per output file, e.g. 128MiB, 64MB.
    #[arg(long, default_value = "128MiB")]
    target_size: bytesize::ByteSize,
    /// Rows per output file, if capped.
    #[arg(long)]
    max_rows_per_file: Option<usize>,
    /// Sort each partition's rows by these columns (`col`, `col:desc`), comma-separated,
    /// within and across its files; every file of a partition is rewritten.
    #[arg(long, value_delimiter = ',')]
    sort_by: Vec<SortColumn>,
    /// Cluster each partition's rows along a Z-order curve over 2 to 4 columns,
    /// comma-separated, so that filters on any of them prune files.
    #[arg(long, value_delimiter = ',', conflicts_with = "sort_by")]
    zorder: Vec<String>,
    /// Group files by the day, week or month they begin in, so no new file mixes periods.
    #[arg(long)]
    by_period: Option<Period>,
    /// The timestamp or date column of --by-period (default: the dataset's).
    #[arg(long)]
    timestamp_column: Option<String>,
    /// Drop duplicate rows: equal on these columns, or on all columns when none are given.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    unique: Option<Vec<String>>,
    /// Codec and level of the new files, e.g. zstd:3, snappy.
    #[arg(long, default_value = "zstd:3")]
    compression: CompressionSpec,
    /// Partitions per commit.
    #[arg(long, default_value_t = 1)]
    partitions_per_commit: usize,
    /// Memory for the whole job, e.g. 1GiB: the file index, then the groups running at
    /// once. A budget too small for the index and one group is refused.
    #[arg(long, default_value = "1GiB")]
    memory: bytesize::ByteSize,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `dala optimize`.
#[derive(Subcommand)]
pub enum OptimizeCommand {
    /// Narrow each column to the smallest type that holds its values exactly, and
    /// dictionary-encode low-cardinality strings; one atomic commit.
    Dtypes(DtypesArgs),
    /// Measure codecs, dictionary and row-group sizes on a sample, and rewrite with the
    /// best (stored as the dataset's write defaults).
    Compression(CompressionArgs),
    /// Dtypes, then compression.
    All {
        #[command(flatten)]
        dtypes: DtypesArgs,
        #[command(flatten)]
        compression: CompressionFlags,
    },
}

/// `dala optimize dtypes`.
#[derive(Args)]
pub struct DtypesArgs {
    /// The dataset path or URL.
    dataset: String,
    /// Only these columns, comma-separated.
    #[arg(long, value_delimiter = ',')]
    include: Vec<String>,
    /// Leave these columns alone, comma-separated.
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// A type chosen by hand, e.g. `qty=Int16` (Arrow type names); every value must fit.
    #[arg(long = "type", value_parser = parse_type)]
    types: Vec<(String, DataType)>,
    /// Never choose unsigned integer types.
    #[arg(long)]
    signed_only: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

/// `dala optimize compression`.
#[derive(Args)]
pub struct CompressionArgs {
    /// The dataset path or URL.
    dataset: String,
    #[command(flatten)]
    flags: CompressionFlags,
    /// Print the advice and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

/// The advisor's settings.
#[derive(Args)]
pub struct CompressionFlags {
    /// How the dataset is read: selective (smaller row groups) or full-scan.
    #[arg(long, default_value = "selective")]
    access: AccessPattern,
    /// Rows sampled.
    #[arg(long, default_value_t = 1 << 18)]
    sample_rows: usize,
    /// Codecs tried, comma-separated (default snappy,lz4,zstd:1,zstd:3,zstd:9,gzip:6,brotli:1).
    #[arg(long, value_delimiter = ',')]
    codecs: Vec<CompressionSpec>,
    /// Columns queries filter on (high-cardinality ones get a bloom filter).
    #[arg(long, value_delimiter = ',')]
    filter_columns: Vec<String>,
    /// How much slower to decode than the fastest a smaller setting may be.
    #[arg(long, default_value_t = 1.25)]
    max_decode_slowdown: f64,
    /// Do not time a full scan before and after.
    #[arg(long)]
    no_scan_timing: bool,
}

impl CompressionFlags {
    fn options(&self) -> CompressionOptions {
        let defaults = CompressionOptions::default();
        CompressionOptions {
            access: self.access,
            sample_rows: self.sample_rows,
            codecs: if self.codecs.is_empty() {
                defaults.codecs.clone()
            } else {
                self.codecs.clone()
            },
            filter_columns: self.filter_columns.clone(),
            max_decode_slowdown: self.max_decode_slowdown,
            measure_scans: !self.no_scan_timing,
            ..defaults
        }
    }
}

fn parse_type(s: &str) -> Result<(String, DataType), String> {
    let (column, data_type) = s
        .split_once('=')
        .ok_or_else(|| format!("expected COLUMN=TYPE, got {s:?}"))?;
    let data_type: DataType = data_type
        .parse()
        .map_err(|e| format!("{data_type:?} is not an Arrow type: {e}"))?;
    Ok((column.to_string(), data_type))
}

/// `dala repartition`.
#[derive(Args)]
pub struct RepartitionArgs {
    /// The dataset path or URL.
    dataset: String,
    /// The new partition columns, comma-separated (`year`, `month`, `week`, `day`, `hour`,
    /// `date` are derived from the timestamp column when the data lacks them).
    #[arg(long, value_delimiter = ',', required = true)]
    partition_by: Vec<String>,
    /// The column derived partition columns come from (when the dataset has none yet).
    #[arg(long)]
    timestamp_column: Option<String>,
    /// Codec and level of the new files, e.g. zstd:3, snappy.
    #[arg(long, default_value = "zstd:3")]
    compression: CompressionSpec,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Opens the dataset at `location`; for a dry run, a folder without a dala log is indexed
/// in memory rather than adopted, so that the dry run writes nothing.
async fn open(location: &str, dry_run: bool) -> Result<Dataset> {
    let builder = Dataset::builder(location);
    let builder = match dry_run {
        true => builder.adopt_in_memory(),
        false => builder,
    };
    Ok(builder.open().await?)
}

/// Runs `dala repartition`.
pub async fn repartition(args: RepartitionArgs) -> Result<()> {
    let dataset = open(&args.dataset, args.dry_run).await?;
    let options = RepartitionOptions {
        partition_by: args.partition_by,
        write: WriteOptions {
            compression: args.compression,
            timestamp_column: args.timestamp_column,
            ..WriteOptions::default()
        },
    };
    let plan = plan_repartition(&dataset, &options)?;
    print!("{plan}");
    if args.dry_run {
        return Ok(());
    }
    let spinner =
        indicatif::ProgressBar::new_spinner().with_message(format!("rewriting {} rows", plan.rows));
    spinner.enable_steady_tick(Duration::from_millis(200));
    let report = execute_repartition(&dataset, &plan).await;
    spinner.finish_and_clear();
    println!("{}", report?);
    Ok(())
}

/// `dala vacuum`.
#[derive(Args)]
pub struct VacuumArgs {
    /// The dataset path or URL.
    dataset: String,
    /// Keep the versions this young readable, e.g. 7d, 12h, 0s (default: the dataset's
    /// `retention.seconds`, else 7 days).
    #[arg(long)]
    retain: Option<humantime::Duration>,
    /// Delete files no version names only when at least this old (writes in progress
    /// are younger).
    #[arg(long, default_value = "1h")]
    orphan_grace: humantime::Duration,
    /// List what would be deleted and delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `dala stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// The dataset path or URL.
    dataset: String,
    /// The file size small files are measured against.
    #[arg(long, default_value = "128MiB")]
    target_size: bytesize::ByteSize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

/// Runs `dala compact`.
pub async fn compact(args: CompactArgs) -> Result<()> {
    let dataset = open(&args.dataset, args.dry_run).await?;
    let options = CompactOptions {
        target_file_size: args.target_size.as_u64(),
        max_rows_per_file: args.max_rows_per_file,
        sort_by: args.sort_by,
        zorder: args.zorder,
        by_period: args.by_period,
        timestamp_column: args.timestamp_column,
        unique: args.unique,
        partitions_per_commit: args.partitions_per_commit,
        memory_budget: usize::try_from(args.memory.as_u64()).unwrap_or(usize::MAX),
        write: WriteOptions {
            compression: args.compression,
            ..WriteOptions::default()
        },
        ..CompactOptions::default()
    };
    let plan = plan_compaction(&dataset, &options)?;
    if args.dry_run || plan.is_empty() {
        print!("{plan}");
        if plan.is_empty() {
            println!("nothing to compact");
        }
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(plan.groups.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} commits {elapsed}")?,
    );
    let report = execute_compaction(&dataset, &plan, &|outcome| {
        if let Some(reason) = &outcome.skipped {
            bar.println(format!(
                "skipped {}: {reason}",
                outcome.partitions.join(", ")
            ));
        }
        bar.inc(1);
    })
    .await?;
    bar.finish_and_clear();
    println!("{report}");
    println!("{}", compaction_summary(&report));
    Ok(())
}

/// The per-commit summary table of a compaction.
fn compaction_summary(report: &CompactionReport) -> Table {
    let mut table = Table::new();
    table.set_header(vec![
        "partitions",
        "version",
        "files",
        "bytes before",
        "bytes after",
        "outcome",
    ]);
    for group in &report.groups {
        table.add_row(vec![
            group.partitions.join(", "),
            group.version.map(|v| v.to_string()).unwrap_or_default(),
            format!("{} -> {}", group.files_removed, group.files_added),
            bytesize::ByteSize(group.bytes_before).to_string(),
            bytesize::ByteSize(group.bytes_after).to_string(),
            group
                .skipped
                .as_ref()
                .map_or("committed".to_string(), |r| format!("skipped: {r}")),
        ]);
    }
    table
}

/// Runs `dala optimize`.
pub async fn optimize(command: OptimizeCommand) -> Result<()> {
    match command {
        OptimizeCommand::Dtypes(args) => dtypes(&args).await,
        OptimizeCommand::Compression(args) => {
            compression(
                &args.dataset,
                &args.flags.options(),
                args.dry_run,
                args.format,
            )
            .await
        }
        OptimizeCommand::All {
            dtypes: args,
            compression: flags,
        } => {
            self::dtypes(&args).await?;
            compression(&args.dataset, &flags.options(), args.dry_run, args.format).await
        }
    }
}

async fn dtypes(args: &DtypesArgs) -> Result<()> {
    let dataset = open(&args.dataset, args.dry_run).await?;
    let options = DtypeOptions {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        types: args.types.iter().cloned().collect::<BTreeMap<_, _>>(),
        unsigned: !args.signed_only,
        ..DtypeOptions::default()
    };
    let plan = plan_dtypes(&dataset, &options).await?;
    if args.dry_run || plan.is_empty() {
        match args.format {
            ListFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            ListFormat::Table => print!("{plan}"),
        }
        return Ok(());
    }
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_message(format!("rewriting {} files with new types", plan.files));
    spinner.enable_steady_tick(Duration::from_millis(200));
    let report = execute_dtypes(&dataset, &plan).await;
    spinner.finish_and_clear();
    let report = report?;
    match args.format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ListFormat::Table => {
            println!(
                "version {}: {} files became {}",
                report.version.unwrap_or_default(),
                report.files_removed,
                report.files_added
            );
            let mut table = Table::new();
            table.set_header(vec![
                "column",
                "type before",
                "type after",
                "bytes before",
                "bytes after",
            ]);
            for c in &report.columns {
                table.add_row(vec![
                    c.column.clone(),
                    c.before.to_string(),
                    c.after.to_string(),
                    bytesize::ByteSize(c.bytes_before).to_string(),
                    bytesize::ByteSize(c.bytes_after).to_string(),
                ]);
            }
            table.add_row(vec![
                "(all files)".to_string(),
                String::new(),
                String::new(),
                bytesize::ByteSize(report.bytes_before).to_string(),
                bytesize::ByteSize(report.bytes_after).to_string(),
            ]);
            println!("{table}");
        }
    }
    Ok(())
}

async fn compression(
    location: &str,
    options: &CompressionOptions,
    dry_run: bool,
    format: ListFormat,
) -> Result<()> {
    let mut dataset = open(location, dry_run).await?;
    let spinner = indicatif::ProgressBar::new_spinner().with_message(format!(
        "measuring {} codecs on {} sampled rows",
        options.codecs.len(),
        options.sample_rows
    ));
    spinner.enable_steady_tick(Duration::from_millis(200));
    let plan = plan_compression(&dataset, options).await;
    spinner.finish_and_clear();
    let plan = plan.context("planning compression")?;
    if dry_run {
        match format {
            ListFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            ListFormat::Table => print!("{plan}"),
        }
        return Ok(());
    }
    if matches!(format, ListFormat::Table) {
        print!("{plan}");
    }
    let bar = indicatif::ProgressBar::new(dataset.snapshot().partitions().len().max(1) as u64)
        .with_style(indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} commits {elapsed}",
        )?);
    let report = execute_compression(&mut dataset, &plan, &|_| bar.inc(1)).await;
    bar.finish_and_clear();
    let report = report?;
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ListFormat::Table => {
            print!("{report}");
            let mut table = Table::new();
            table.set_header(vec![
                "column",
                "codec",
                "dictionary",
                "bloom filter",
                "sample bytes",
            ]);
            for c in &plan.columns {
                let choice = c.choice();
                table.add_row(vec![
                    c.column.clone(),
                    choice.compression.to_string(),
                    choice.dictionary.to_string(),
                    c.bloom_filter.to_string(),
                    bytesize::ByteSize(choice.bytes).to_string(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

/// Runs `dala vacuum`.
pub async fn vacuum(args: VacuumArgs) -> Result<()> {
    let dataset = open(&args.dataset, args.dry_run).await?;
    if !dataset.snapshot().is_committed() {
        // Adopting it would make every data file part of version 0.
        println!("nothing to vacuum: {} has no dala log yet", dataset.url());
        return Ok(());
    }
    let options = VacuumOptions {
        retain: args.retain.map(Duration::from),
        orphan_grace: args.orphan_grace.into(),
    };
    let plan = plan_vacuum(&dataset, &options).await?;
    if args.dry_run {
        print!("{plan}");
        return Ok(());
    }
    let report = execute_vacuum(&dataset, &plan).await?;
    println!(
        "deleted {} files ({}); versions {}..={} stay readable",
        report.files_deleted,
        bytesize::ByteSize(report.bytes_freed),
        plan.oldest_kept_version,
        plan.version
    );
    Ok(())
}

/// Runs `dala stats`.
pub async fn stats(args: StatsArgs) -> Result<()> {
    let dataset = Dataset::open(&args.dataset).await?;
    let stats = dala_optimize::stats(&dataset, args.target_size.as_u64()).await?;
    match args.format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&stats)?),
        ListFormat::Table => print!("{stats}"),
    }
    Ok(())
}
