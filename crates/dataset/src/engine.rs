//! Engines: dala plans a scan (pruning partitions and files by its index) and an engine
//! executes it. The native Arrow engine is this crate's scan; DuckDB and Polars live in
//! their own crates (`dala-duckdb`, `dala-polars`) behind the same [`ScanEngine`] trait.

use std::fmt;
use std::str::FromStr;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::Expr;
use crate::layout::PartitionField;
use crate::scalar::Scalar;
use crate::scan::{RecordBatchStream, ScanBuilder};
use crate::snapshot::FileEntry;

/// The environment variable that picks the default engine.
pub const ENGINE_VARIABLE: &str = "DALA_ENGINE";

/// Which engine executes a scan or a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Engine {
    /// dala's own reader (arrow-rs and the parquet crate).
    #[default]
    Arrow,
    /// DuckDB (crate `dala-duckdb`).
    Duckdb,
    /// Polars (crate `dala-polars`).
    Polars,
}

impl Engine {
    /// The engine named by `DALA_ENGINE`, or Arrow when it is not set.
    pub fn from_env() -> Result<Engine> {
        match std::env::var(ENGINE_VARIABLE) {
            Ok(name) if !name.is_empty() => name.parse(),
            _ => Ok(Engine::Arrow),
        }
    }
}

impl Engine {
    /// The engine to use, from the most specific choice to the least: the one asked for
    /// (a call, `--engine`), then `DALA_ENGINE`, then the dataset's default (property
    /// `engine.default`), then the catalog's, then Arrow.
    pub fn choose(
        asked: Option<Engine>,
        dataset: Option<Engine>,
        catalog: Option<Engine>,
    ) -> Result<Engine> {
        if let Some(engine) = asked {
            return Ok(engine);
        }
        if let Ok(name) = std::env::var(ENGINE_VARIABLE)
            && !name.is_empty()
        {
            return name.parse();
        }
        Ok(dataset.or(catalog).unwrap_or_default())
    }
}

impl FromStr for Engine {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "arrow" => Ok(Engine::Arrow),
            "duckdb" => Ok(Engine::Duckdb),
            "polars" => Ok(Engine::Polars),
            other => Err(Error::InvalidArgument(format!(
                "unknown engine {other:?} (expected arrow, duckdb or polars)"
            ))),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Arrow => "arrow",
            Engine::Duckdb => "duckdb",
            Engine::Polars => "polars",
        })
    }
}

/// One data file of a scan, as an engine needs it.
#[derive(Debug, Clone)]
pub struct ScanFile {
    /// Where the file is: an absolute local path for local datasets, else a URL.
    pub location: String,
    /// The file's index entry (relative path, partition values, rows, statistics).
    pub entry: FileEntry,
}

/// A scan planned by dala, for an engine to execute: the files left after pruning, the
/// typed partition columns, the projection, the filter and the limit.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// Where the dataset is (a local path or a URL).
    pub dataset: String,
    /// Whether the files are on the local file system (their locations are paths).
    pub local: bool,
    /// The files that may hold matching rows.
    pub files: Vec<ScanFile>,
    /// The version from which every file added holds exactly `data_schema` (see
    /// [`crate::Snapshot::schema_since`]); `None` when unknown.
    pub schema_since: Option<u64>,
    /// The dataset's data columns (those stored in the files).
    pub data_schema: SchemaRef,
    /// The partition columns, typed, in order.
    pub partitioning: Vec<PartitionField>,
    /// The columns to return, in order, with the types every engine returns them as.
    pub output_schema: SchemaRef,
    /// The filter rows must satisfy, bound to the dataset's schema.
    pub filter: Option<Expr>,
    /// Return at most this many rows.
    pub limit: Option<usize>,
    /// The same scan, for the native engine.
    pub(crate) native: ScanBuilder,
}

impl ScanRequest {
    /// Fails with [`Error::Unsupported`] unless the dataset is on the local file system
    /// (for engines that read files by path).
    pub fn require_local(&self, engine: Engine) -> Result<()> {
        if self.local {
            return Ok(());
        }
        Err(Error::Unsupported(format!(
            "the {engine} engine reads local datasets; {} is not local (use the arrow engine)",
            self.dataset
        )))
    }
}

impl ScanRequest {
    /// The scan run by dala's own reader (through the dataset's cache), for engines that
    /// cannot read the files themselves, such as DuckDB on an object store.
    pub fn native_stream(&self) -> Result<RecordBatchStream> {
        self.native.stream()
    }

    /// Whether `file` holds exactly `data_schema` (its columns, in order, with their
    /// types), because dala wrote it under this schema.
    pub fn holds_schema(&self, file: &ScanFile) -> bool {
        self.schema_since
            .is_some_and(|since| file.entry.added_version >= since)
    }

    /// Whether every file holds exactly `data_schema`, so that an engine can read them as
    /// one schema instead of unifying theirs by name.
    pub fn files_match_schema(&self) -> bool {
        self.files.iter().all(|f| self.holds_schema(f))
    }

    /// Whether the scan uses a partition column (returns it or filters on it); when not,
    /// an engine can read the files without attaching partition values.
    pub fn needs_partition_values(&self) -> bool {
        let filtered = self.filter.as_ref().map(Expr::columns).unwrap_or_default();
        self.partitioning.iter().any(|p| {
            self.output_schema.field_with_name(&p.name).is_ok() || filtered.contains(&p.name)
        })
    }

    /// `SELECT <output columns> FROM <from> [WHERE <filter>] [LIMIT <limit>]`, the filter
    /// written by `filter_sql` (engines differ in how they spell some literals).
    pub fn select_sql(&self, from: &str, filter_sql: impl Fn(&Expr) -> String) -> String {
        let columns: Vec<String> = self
            .output_schema
            .fields()
            .iter()
            .map(|f| quote_identifier(f.name()))
            .collect();
        let mut sql = format!("SELECT {} FROM {from}", columns.join(", "));
        if let Some(filter) = &self.filter {
            sql.push_str(&format!(" WHERE {}", filter_sql(filter)));
        }
        if let Some(limit) = self.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        sql
    }
}

/// A SQL identifier in double quotes (for engines that take SQL).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The batches an engine's worker thread sends, as a [`RecordBatchStream`].
pub fn receiver_stream(
    receiver: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
) -> RecordBatchStream {
    use futures::StreamExt;
    futures::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// The groups of batches an engine's worker thread sends, as a [`RecordBatchStream`] of
/// their batches. A worker that sends its batches in groups wakes the consumer once per
/// group instead of once per batch.
pub fn grouped_receiver_stream(
    receiver: tokio::sync::mpsc::Receiver<Result<Vec<RecordBatch>>>,
) -> RecordBatchStream {
    converted_receiver_stream(receiver, |group| group.into_iter().map(Ok).collect())
}

/// The message of a caught panic (its `&str` or `String` payload), for the error an engine
/// or a reader reports instead of ending its rows early.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// What an engine's worker thread sends (a group of batches, or a result in the engine's
/// own form), as a [`RecordBatchStream`]: each item becomes batches through `batches` as
/// the consumer reads it, off the worker's thread; an error sent is passed on as it is.
pub fn converted_receiver_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<Result<T>>,
    mut batches: impl FnMut(T) -> Vec<Result<RecordBatch>> + Send + 'static,
) -> RecordBatchStream {
    use futures::StreamExt;
    futures::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .flat_map(move |item| {
        let batches = match item {
            Ok(item) => batches(item),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(batches)
    })
    .boxed()
}

/// An engine that executes dala's scans, and SQL if it has it. Object safe: callers hold a
/// `Box<dyn ScanEngine>` or `Arc<dyn ScanEngine>` picked by [`Engine`].
pub trait ScanEngine: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> Engine;

    /// Executes a scan, returning its batches as they come (in the request's output
    /// schema, whatever the engine's own types).
    fn scan(&self, request: ScanRequest) -> Result<RecordBatchStream>;

    /// Runs `query` over `tables` (each a name, as the SQL spells it, and the scan of a
    /// dataset at one version), binding `params` to its placeholders (`?` or `$1`) as
    /// values, never as SQL text.
    fn sql(
        &self,
        tables: Vec<(String, ScanRequest)>,
        query: &str,
        params: &[Scalar],
    ) -> Result<RecordBatchStream> {
        let _ = (tables, query, params);
        Err(Error::Unsupported(format!(
            "the {} engine has no SQL; use duckdb or polars",
            self.kind()
        )))
    }
}

/// An engine's result columns cast to `schema`'s types, so that every engine returns the
/// dataset's types whatever its own (string views, timestamp units). A column that cannot
/// be cast, or a wrong number of columns, is an [`Error::Engine`].
pub fn cast_to_schema(
    engine: Engine,
    columns: Vec<ArrayRef>,
    rows: usize,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let failed = |message: String| Error::Engine {
        engine: engine.to_string(),
        message,
    };
    if columns.len() != schema.fields().len() {
        return Err(failed(format!(
            "returned {} columns where {} were asked for",
            columns.len(),
            schema.fields().len()
        )));
    }
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column)
            } else {
                cast(&column, field.data_type()).map_err(|e| {
                    failed(format!(
                        "column `{}` came back as {}: {e}",
                        field.name(),
                        column.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        .map_err(|e| failed(format!("result does not fit the dataset's schema: {e}")))
}

/// dala's own scan (arrow-rs and the parquet crate).
#[derive(Debug, Clone, Copy, Default)]
pub struct ArrowEngine;

impl ScanEngine for ArrowEngine {
    fn kind(&self) -> Engine {
        Engine::Arrow
    }

    fn scan(&self, request: ScanRequest) -> Result<RecordBatchStream> {
        request.native.stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_and_print() {
        for engine in [Engine::Arrow, Engine::Duckdb, Engine::Polars] {
            assert_eq!(engine.to_string().parse::<Engine>().unwrap(), engine);
        }
        assert_eq!("DuckDB".parse::<Engine>().unwrap(), Engine::Duckdb);
        assert!("spark".parse::<Engine>().is_err());
    }
}
