//! Repartition: every row written again under new partition columns, in one commit.

use std::collections::BTreeSet;
use std::fmt;

use dala_dataset::{Dataset, Operation, RewriteOptions, WriteOptions};
use serde::Serialize;

use crate::compact::bytes;
use crate::error::{Error, Result, check_plan_version};

/// What [`plan_repartition`] changes to.
#[derive(Debug, Clone, Default)]
pub struct RepartitionOptions {
    /// The new partition columns, in order: columns of the dataset, or `year`, `month`,
    /// `week`, `day`, `hour`, `date` derived from the timestamp column.
    pub partition_by: Vec<String>,
    /// Writer settings of the new files; `timestamp_column` names the column derived
    /// partition columns come from (recorded for later writes), when the dataset has none.
    pub write: WriteOptions,
}

/// What a repartition would do.
#[derive(Debug, Clone, Serialize)]
pub struct RepartitionPlan {
    /// The version the plan was made from.
    pub version: u64,
    /// The partition columns now.
    pub from: Vec<String>,
    /// The partition columns after.
    pub to: Vec<String>,
    /// Files rewritten (all of them).
    pub files: usize,
    /// Rows rewritten.
    pub rows: u64,
    /// Bytes rewritten.
    pub bytes: u64,
    /// Partitions now.
    pub partitions_before: usize,
    /// Partitions after, when the index tells (the new columns are partition columns now).
    pub partitions_after: Option<usize>,
    #[serde(skip)]
    options: RepartitionOptions,
}

impl fmt::Display for RepartitionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "repartition of version {}: by [{}] -> by [{}]; {} files ({}, {} rows) in {} \
             partitions rewritten in one commit, into {} partitions",
            self.version,
            self.from.join(", "),
            self.to.join(", "),
            self.files,
            bytes(self.bytes),
            self.rows,
            self.partitions_before,
            self.partitions_after
                .map_or("as many as the data has".to_string(), |n| n.to_string()),
        )
    }
}

/// Plans a repartition of `dataset` by `options.partition_by`. Reads no data file.
pub fn plan_repartition(
    dataset: &Dataset,
    options: &RepartitionOptions,
) -> Result<RepartitionPlan> {
    if options.partition_by.is_empty() {
        return Err(Error::InvalidOption(
            "partition_by needs at least one column (an unpartitioned dataset is an \
             overwrite away)"
                .into(),
        ));
    }
    let snapshot = dataset.snapshot();
    let from: Vec<String> = snapshot
        .partitioning()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    if from == options.partition_by {
        return Err(Error::InvalidOption(format!(
            "the dataset is already partitioned by [{}]",
            from.join(", ")
        )));
    }
    // When every new column is a partition column now, the index knows the partitions.
    let positions: Option<Vec<usize>> = options
        .partition_by
        .iter()
        .map(|c| from.iter().position(|p| p == c))
        .collect();
    let partitions_after = positions.map(|positions| {
        snapshot
            .files()
            .map(|f| {
                positions
                    .iter()
                    .map(|&i| f.partition_values[i].to_string())
                    .collect::<Vec<_>>()
            })
            .collect::<BTreeSet<_>>()
            .len()
    });
    Ok(RepartitionPlan {
        version: snapshot.version(),
        from,
        to: options.partition_by.clone(),
        files: snapshot.files().len(),
        rows: snapshot.rows(),
        bytes: snapshot.bytes(),
        partitions_before: snapshot.partitions().len(),
        partitions_after,
        options: options.clone(),
    })
}

/// What a repartition did.
#[derive(Debug, Clone, Serialize)]
pub struct RepartitionReport {
    /// The version committed.
    pub version: u64,
    /// Files replaced.
    pub files_removed: u64,
    /// Files written.
    pub files_added: u64,
    /// Rows written (all of them).
    pub rows: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

impl fmt::Display for RepartitionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version {}: {} rows in {} files rewritten into {} files ({})",
            self.version,
            self.rows,
            self.files_removed,
            self.files_added,
            bytes(self.bytes_written)
        )
    }
}

/// Rewrites every row of the plan's version under the new partitioning in one commit
/// (see [`Dataset::repartition`]); a concurrent change of the data is a conflict, with
/// nothing changed. `dataset` must be at the plan's version.
pub async fn execute_repartition(
    dataset: &Dataset,
    plan: &RepartitionPlan,
) -> Result<RepartitionReport> {
    check_plan_version(dataset, plan.version)?;
    let rewrite = RewriteOptions {
        write: plan.options.write.clone(),
        operation: Operation::Repartition,
        ..RewriteOptions::default()
    };
    let result = dataset.repartition(&plan.to, &rewrite).await?;
    Ok(RepartitionReport {
        version: result.version.unwrap_or(plan.version),
        files_removed: result.files_removed,
        files_added: result.files_added,
        rows: result.rows_unchanged,
        bytes_written: result.bytes_written,
    })
}
