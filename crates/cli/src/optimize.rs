//! `dala compact`, `dala vacuum` and `dala stats`.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use dala_dataset::{CompressionSpec, Dataset, SortColumn, WriteOptions};
use dala_optimize::{
    CompactOptions, VacuumOptions, execute_compaction, execute_vacuum, plan_compaction, plan_vacuum,
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
    /// Sort the rows of each output file by these columns (`col`, `col:desc`),
    /// comma-separated; every file of a partition is rewritten.
    #[arg(long, value_delimiter = ',')]
    sort_by: Vec<SortColumn>,
    /// Drop duplicate rows: equal on these columns, or on all columns when none are given.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    unique: Option<Vec<String>>,
    /// Codec and level of the new files, e.g. zstd:3, snappy.
    #[arg(long, default_value = "zstd:3")]
    compression: CompressionSpec,
    /// Partitions per commit.
    #[arg(long, default_value_t = 1)]
    partitions_per_commit: usize,
    /// Memory for the whole job, e.g. 1GiB.
    #[arg(long, default_value = "1GiB")]
    memory: bytesize::ByteSize,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
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
    let dataset = Dataset::open(&args.dataset).await?;
    let options = CompactOptions {
        target_file_size: args.target_size.as_u64(),
        max_rows_per_file: args.max_rows_per_file,
        sort_by: args.sort_by,
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
    Ok(())
}

/// Runs `dala vacuum`.
pub async fn vacuum(args: VacuumArgs) -> Result<()> {
    let dataset = Dataset::open(&args.dataset).await?;
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
