//! `dala cache`: the statistics and contents of the SSD cache tier.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use clap::Subcommand;
use comfy_table::Table;

use crate::catalog::ListFormat;

/// `dala cache …`.
#[derive(Subcommand)]
pub enum CacheCommand {
    /// Hits, misses and bytes summed over the processes that used the SSD tier, and what
    /// the tier holds.
    Stats {
        /// The SSD tier's directory.
        #[arg(long, env = dala_cache::DIR_VARIABLE)]
        dir: Option<PathBuf>,
        /// Also check every entry against its checksum.
        #[arg(long)]
        verify: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Remove every entry (and the statistics) of the SSD tier.
    Clear {
        /// The SSD tier's directory.
        #[arg(long, env = dala_cache::DIR_VARIABLE)]
        dir: Option<PathBuf>,
    },
}

fn directory(dir: Option<PathBuf>) -> Result<PathBuf> {
    match dir {
        Some(dir) => Ok(dir),
        None => bail!(
            "no SSD cache directory: pass --dir or set {}",
            dala_cache::DIR_VARIABLE
        ),
    }
}

/// Runs a `dala cache` command.
pub fn run(command: CacheCommand) -> Result<()> {
    match command {
        CacheCommand::Stats {
            dir,
            verify,
            format,
        } => {
            let dir = directory(dir)?;
            let (counts, bytes, entries) = dala_cache::disk_stats(&dir)
                .with_context(|| format!("reading the cache in {}", dir.display()))?;
            let checked = verify.then(|| dala_cache::verify_disk(&dir));
            match format {
                ListFormat::Json => {
                    let mut json = serde_json::json!({
                        "dir": dir,
                        "entries": entries,
                        "bytes": bytes,
                        "counts": counts,
                        "hit_ratio": counts.hit_ratio(),
                    });
                    if let Some((whole, broken)) = checked {
                        json["whole"] = whole.into();
                        json["broken"] = broken.into();
                    }
                    println!("{}", serde_json::to_string_pretty(&json)?);
                }
                ListFormat::Table => {
                    let mut table = Table::new();
                    table.load_preset(comfy_table::presets::NOTHING);
                    let rows: Vec<(&str, String)> = vec![
                        ("directory", dir.display().to_string()),
                        ("entries", format!("{entries} ({})", ByteSize(bytes))),
                        (
                            "hits",
                            format!(
                                "{} memory ({}), {} ssd ({})",
                                counts.memory_hits,
                                ByteSize(counts.memory_hit_bytes),
                                counts.disk_hits,
                                ByteSize(counts.disk_hit_bytes)
                            ),
                        ),
                        ("misses", counts.misses.to_string()),
                        ("hit ratio", format!("{:.1}%", 100.0 * counts.hit_ratio())),
                        (
                            "store reads",
                            format!(
                                "{} requests ({})",
                                counts.store_requests,
                                ByteSize(counts.store_bytes)
                            ),
                        ),
                        ("revalidations", counts.revalidations.to_string()),
                        (
                            "footers",
                            format!(
                                "{} decoded from memory, {} read",
                                counts.metadata_hits, counts.metadata_misses
                            ),
                        ),
                        ("corrupt entries refetched", counts.disk_corrupt.to_string()),
                    ];
                    for (name, value) in rows {
                        table.add_row(vec![name.to_string(), value]);
                    }
                    if let Some((whole, broken)) = checked {
                        table.add_row(vec![
                            "checked".to_string(),
                            format!("{whole} whole, {broken} broken"),
                        ]);
                    }
                    println!("{table}");
                }
            }
            Ok(())
        }
        CacheCommand::Clear { dir } => {
            let dir = directory(dir)?;
            let removed = dala_cache::clear_disk(&dir)
                .with_context(|| format!("clearing the cache in {}", dir.display()))?;
            println!("removed {removed} entries from {}", dir.display());
            Ok(())
        }
    }
}

/// Adds this process's cache counts to the SSD tier's totals, if the process used a cache
/// with one.
pub fn persist_counts() {
    if let Some(cache) = dala_cache::Cache::process_if_started()
        && let Err(e) = cache.persist_counts()
    {
        tracing::warn!(error = %e, "cache statistics not saved");
    }
}
