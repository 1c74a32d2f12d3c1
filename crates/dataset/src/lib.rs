//! # dala-dataset
//!
//! Hive-partitioned Parquet datasets on a local disk or an object store, with an atomic
//! commit log, snapshots and time travel, a file index with per-file statistics, a
//! streaming scan that prunes partitions, files and row groups without listing
//! directories, and writes that append, overwrite, merge by key or delete, rewriting only
//! the files they change.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{Int32Array, StringArray, RecordBatch};
//! # use arrow::datatypes::{DataType, Field, Schema};
//! use dala_dataset::{Dataset, WriteMode, WriteOptions, col, lit};
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> dala_dataset::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let location = dir.path().join("sales").display().to_string();
//! # let schema = Arc::new(Schema::new(vec![
//! #     Field::new("year", DataType::Int32, false),
//! #     Field::new("city", DataType::Utf8, false),
//! # ]));
//! # let batch = RecordBatch::try_new(schema.clone(), vec![
//! #     Arc::new(Int32Array::from(vec![2023, 2024, 2024])),
//! #     Arc::new(StringArray::from(vec!["Oslo", "Lima", "Oslo"])),
//! # ])?;
//! # let changes = RecordBatch::try_new(schema, vec![
//! #     Arc::new(Int32Array::from(vec![2024, 2025])),
//! #     Arc::new(StringArray::from(vec!["Lima", "Rome"])),
//! # ])?;
//! // Write a dataset partitioned by year: files land at `year=2024/<uuid>.parquet`.
//! let options = WriteOptions::default().with_partition_by(["year"]);
//! Dataset::write_to(&location, [Ok(batch)], &options).await?;
//!
//! // Scan it with a filter: the 2023 partition is never read.
//! let dataset = Dataset::open(&location).await?;
//! let scan = dataset.scan().with_filter_str("year = 2024 AND city LIKE 'O%'")?;
//! assert_eq!(scan.explain().await?.files_pruned_by_partition, 1);
//! assert_eq!(scan.count_rows().await?, 1);
//!
//! // Upsert by key: (2024, Lima) is present and left as it is, (2025, Rome) is new.
//! let mut dataset = dataset;
//! let upsert = WriteOptions::default().with_mode(WriteMode::Upsert).with_key(["year", "city"]);
//! let result = dataset.write([Ok(changes)], &upsert).await?;
//! assert_eq!((result.rows_inserted, result.rows_unchanged), (1, 1));
//!
//! // Delete: the 2023 partition's file is dropped without being read.
//! let result = dataset.delete(col("year").eq(lit(2023))).await?;
//! assert_eq!(result.rows_deleted, 1);
//! # Ok(())
//! # }
//! ```

mod adopt;
pub mod checkpoint;
mod cluster;
mod commit;
mod conform;
mod dataset;
mod decode;
mod derive;
mod engine;
mod error;
pub mod failpoint;
pub mod filter;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod log;
mod merge;
mod options;
mod rewrite;
pub mod scalar;
mod scan;
pub mod snapshot;
pub mod stats;
pub mod store;
mod write;

pub use cluster::Clustering;
pub use commit::check_schema;
pub use conform::{cast_exact, narrows};
pub use dataset::{Dataset, DatasetBuilder, WriteResult};
pub use engine::{
    ArrowEngine, ENGINE_VARIABLE, Engine, ScanEngine, ScanFile, ScanRequest, cast_to_schema,
    converted_receiver_stream, grouped_receiver_stream, panic_message, quote_identifier,
    receiver_stream,
};
pub use error::{Error, Result};
pub use filter::{Expr, col, lit};
pub use layout::PartitionField;
pub use log::{Commit, Operation};
pub use options::{
    Codec, ColumnOptions, CompressionSpec, PROP_WRITE_DEFAULTS, SchemaMode, SortColumn,
    StatisticsLevel, WriteDefaults, WriteMode, WriteOptions,
};
pub use rewrite::RewriteOptions;
pub use scalar::Scalar;
pub use scan::{RecordBatchStream, ScanBuilder, ScanExplain, ScanPlan};
pub use snapshot::{
    FileEntry, PROP_CHECKPOINT_INTERVAL, PROP_DEFAULT_ENGINE, PROP_RETENTION_SECONDS, Snapshot,
    check_property,
};
