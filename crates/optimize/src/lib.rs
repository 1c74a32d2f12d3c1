//! # dala-optimize
//!
//! Keeps a dala dataset fast and small. Every operation is a plan you can read before
//! anything changes, then an execution that commits atomically:
//!
//! - [`plan_compaction`] / [`execute_compaction`]: bin-packs small files of each partition
//!   into files of a target size (optionally sorted, or without duplicate rows), leaving
//!   files already near the target alone. Each group of files is swapped for its
//!   replacement in its own commit, so a long job keeps the progress it made; a group
//!   whose files a concurrent writer changed is skipped and reported, never clobbered.
//! - [`plan_dtypes`] / [`execute_dtypes`]: narrows each column to the smallest type that
//!   holds every value exactly (integers by range, `Float64` to `Float32` where every value
//!   round-trips, timestamps to the coarsest unit that loses nothing), dictionary-encodes
//!   low-cardinality strings and flags all-null columns; facts come from the file index
//!   where it is complete, else from one scan. One commit rewrites every file; a value that
//!   would not fit aborts with nothing changed.
//! - [`plan_compression`] / [`execute_compression`]: writes a sample of each column with
//!   each codec, with and without a dictionary, measures bytes and decode time, and advises
//!   per-column codecs, a row-group size for the access pattern and bloom filters for
//!   high-cardinality filter columns; applying stores the advice as the dataset's write
//!   defaults and rewrites the files with it, a commit per partition group.
//! - [`plan_repartition`] / [`execute_repartition`]: writes every row again under new
//!   partition columns (derived date parts included), in one commit.
//! - [`plan_vacuum`] / [`execute_vacuum`]: deletes data files that no version within the
//!   retention references, and orphans left by crashed writers; it lists only under the
//!   dataset root and never deletes a file a live version references.
//! - [`stats`]: files, small-file share, rows, bytes, bytes reclaimable and statistics
//!   coverage per column.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{Int64Array, RecordBatch};
//! # use arrow::datatypes::{DataType, Field, Schema};
//! use dala_dataset::{Dataset, WriteOptions};
//! use dala_optimize::{CompactOptions, execute_compaction, plan_compaction};
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let location = dir.path().join("events").display().to_string();
//! # let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
//! // Ten appends leave ten small files.
//! for i in 0..10 {
//!     let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![i]))])?;
//!     Dataset::write_to(&location, [Ok(batch)], &WriteOptions::default()).await?;
//! }
//! let mut dataset = Dataset::open(&location).await?;
//! let plan = plan_compaction(&dataset, &CompactOptions::default())?;
//! println!("{plan}"); // what would change: the dry run
//! let report = execute_compaction(&dataset, &plan, &|_| {}).await?;
//! assert_eq!((report.files_removed, report.files_added), (10, 1));
//! dataset.reload().await?;
//! assert_eq!(dataset.snapshot().files().len(), 1);
//! assert_eq!(dataset.scan().count_rows().await?, 10);
//! # Ok(())
//! # }
//! ```

mod compact;
mod compression;
mod dtypes;
mod error;
mod repartition;
mod stats;
mod vacuum;

pub use compact::{
    CompactOptions, CompactionPlan, CompactionReport, FileGroup, GroupOutcome, Period,
    execute_compaction, plan_compaction,
};
pub use compression::{
    AccessPattern, ColumnAdvice, CompressionOptions, CompressionPlan, CompressionReport, Trial,
    execute_compression, plan_compression,
};
pub use dtypes::{
    ColumnBytes, ColumnDtype, DtypeOptions, DtypePlan, DtypeReport, Evidence, execute_dtypes,
    plan_dtypes,
};
pub use error::{Error, Result};
pub use repartition::{
    RepartitionOptions, RepartitionPlan, RepartitionReport, execute_repartition, plan_repartition,
};
pub use stats::{ColumnCoverage, DatasetStats, stats};
pub use vacuum::{
    DeleteReason, VacuumCandidate, VacuumOptions, VacuumPlan, VacuumReport, execute_vacuum,
    plan_vacuum,
};
