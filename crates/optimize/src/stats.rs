//! Health statistics of a dataset: how fragmented it is, how much vacuum would free and
//! how well its file index can prune.

use std::fmt;

use dala_dataset::Dataset;
use serde::Serialize;

use crate::compact::bytes;
use crate::error::Result;
use crate::vacuum::{VacuumOptions, plan_vacuum};

/// Statistics coverage of one column in the file index.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnCoverage {
    /// The column.
    pub column: String,
    /// Its type.
    pub data_type: String,
    /// Files whose index entry has its min and max (files that can be pruned by it).
    pub files_with_min_max: usize,
    /// Files whose index entry has its null count.
    pub files_with_nulls: usize,
    /// Nulls in the column, over the files with a null count.
    pub nulls: u64,
}

/// A dataset's health.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetStats {
    /// The version described.
    pub version: u64,
    /// Data files.
    pub files: usize,
    /// Partitions holding files.
    pub partitions: usize,
    /// Rows.
    pub rows: u64,
    /// Bytes of data files.
    pub bytes: u64,
    /// Files smaller than a quarter of the target size.
    pub small_files: usize,
    /// `small_files` as a share of `files`.
    pub small_file_share: f64,
    /// The target file size small files are measured against.
    pub target_file_size: u64,
    /// Bytes a vacuum with the dataset's retention would free.
    pub bytes_reclaimable: u64,
    /// Files a vacuum with the dataset's retention would delete.
    pub files_reclaimable: usize,
    /// Statistics coverage per data column.
    pub columns: Vec<ColumnCoverage>,
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version:      {}", self.version)?;
        writeln!(
            f,
            "files:        {} in {} partitions",
            self.files, self.partitions
        )?;
        writeln!(f, "rows:         {}", self.rows)?;
        writeln!(f, "bytes:        {}", bytes(self.bytes))?;
        writeln!(
            f,
            "small files:  {} ({:.0}%, under {})",
            self.small_files,
            self.small_file_share * 100.0,
            bytes(self.target_file_size / 4)
        )?;
        writeln!(
            f,
            "reclaimable:  {} in {} files (vacuum)",
            bytes(self.bytes_reclaimable),
            self.files_reclaimable
        )?;
        writeln!(f, "statistics:")?;
        for c in &self.columns {
            writeln!(
                f,
                "  {}: {} min/max in {} of {} files, {} nulls",
                c.column, c.data_type, c.files_with_min_max, self.files, c.nulls
            )?;
        }
        Ok(())
    }
}

/// Describes `dataset`'s version: files, small-file share against `target_file_size`,
/// rows, bytes, bytes a vacuum would free (it lists the dataset root), and statistics
/// coverage per column.
pub async fn stats(dataset: &Dataset, target_file_size: u64) -> Result<DatasetStats> {
    let snapshot = dataset.snapshot();
    let small = target_file_size / 4;
    let small_files = snapshot.files().filter(|f| f.size < small).count();
    let files = snapshot.files().len();
    let mut columns: Vec<ColumnCoverage> = snapshot
        .data_schema()
        .fields()
        .iter()
        .map(|field| ColumnCoverage {
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
            files_with_min_max: 0,
            files_with_nulls: 0,
            nulls: 0,
        })
        .collect();
    for file in snapshot.files() {
        for (coverage, stats) in columns.iter_mut().zip(&file.stats) {
            let Some(stats) = stats else { continue };
            if stats.min.is_some() && stats.max.is_some() {
                coverage.files_with_min_max += 1;
            }
            if let Some(nulls) = stats.null_count {
                coverage.files_with_nulls += 1;
                coverage.nulls += nulls;
            }
        }
    }
    let vacuum = plan_vacuum(dataset, &VacuumOptions::default()).await?;
    Ok(DatasetStats {
        version: snapshot.version(),
        files,
        partitions: snapshot.partitions().len(),
        rows: snapshot.rows(),
        bytes: snapshot.bytes(),
        small_files,
        small_file_share: if files == 0 {
            0.0
        } else {
            small_files as f64 / files as f64
        },
        target_file_size,
        bytes_reclaimable: vacuum.bytes(),
        files_reclaimable: vacuum.delete.len(),
        columns,
    })
}
