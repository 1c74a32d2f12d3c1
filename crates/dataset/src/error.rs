//! The one error type of `dala-dataset`.

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `dala-dataset`. Each variant names what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another writer committed first, and its change conflicts with this one.
    #[error("commit conflict at version {version}: {reason}")]
    CommitConflict {
        /// The version this writer tried to create.
        version: u64,
        /// What the concurrent commit changed that this one depends on.
        reason: String,
    },
    /// The dataset, version or file does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A dataset already exists where a new one was to be created.
    #[error("already exists: {path}")]
    AlreadyExists {
        /// The dataset location.
        path: String,
    },
    /// A schema does not match the dataset's.
    #[error("{}", schema_mismatch(column, expected, found))]
    SchemaMismatch {
        /// The column that differs.
        column: String,
        /// The dataset's type (or "absent").
        expected: String,
        /// The input's type (or "absent").
        found: String,
    },
    /// A value cannot be stored in a column's type without changing it.
    #[error("value {value} of column `{column}` does not fit {data_type}")]
    ValueDoesNotFit {
        /// The column.
        column: String,
        /// The first value that does not fit, as text.
        value: String,
        /// The type it does not fit.
        data_type: String,
    },
    /// A column named by a filter, projection or option does not exist.
    #[error("unknown column `{column}`{}", context.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    UnknownColumn {
        /// The name that was not found.
        column: String,
        /// Where it was named, e.g. "in filter at position 12".
        context: Option<String>,
    },
    /// A filter expression could not be parsed or bound.
    #[error("invalid filter at position {position}: {message}")]
    InvalidFilter {
        /// Byte offset in the filter text (0 where the expression was built in code).
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// A partition value or hive path is not acceptable.
    #[error("invalid partition value {value:?} for column `{column}`: {reason}")]
    InvalidPartition {
        /// The partition column.
        column: String,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The partitioning of a write does not match the dataset's.
    #[error(
        "partitioning mismatch: dataset is partitioned by {expected:?}, write asks for {found:?}"
    )]
    PartitioningMismatch {
        /// The dataset's partition columns.
        expected: Vec<String>,
        /// The write's partition columns.
        found: Vec<String>,
    },
    /// A log entry or checkpoint is malformed.
    #[error("corrupt log file {path}: {message}")]
    CorruptLog {
        /// The log or checkpoint file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A data file cannot be read as Parquet.
    #[error("corrupt data file {path}: {message}")]
    CorruptFile {
        /// The data file.
        path: String,
        /// What the reader reported.
        message: String,
    },
    /// An option or argument is not valid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A type that dala cannot handle in this position.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An engine (DuckDB, Polars) failed to run a scan or query.
    #[error("{engine} failed: {message}")]
    Engine {
        /// The engine.
        engine: String,
        /// What it reported, with the statement where it helps.
        message: String,
    },
    /// An error from the object store.
    #[error("object store error at {path}: {source}")]
    Store {
        /// The object path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// An error from the Arrow library.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// An error from the Parquet library.
    #[error("parquet error{}: {source}", path.as_ref().map(|p| format!(" in {p}")).unwrap_or_default())]
    Parquet {
        /// The file involved, where known.
        path: Option<String>,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A local I/O error.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The cache could not be set up (a bad setting or an unusable directory).
    #[error(transparent)]
    Cache(#[from] dala_cache::Error),
    /// A URL that does not name a supported store.
    #[error("invalid dataset url {url:?}: {message}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(source: parquet::errors::ParquetError) -> Self {
        Error::Parquet { path: None, source }
    }
}

impl Error {
    /// Wraps an object store error, keeping the path it concerned.
    pub(crate) fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { path: p, .. } => Error::NotFound { what: p },
            source => Error::Store {
                path: path.to_string(),
                source,
            },
        }
    }

    /// Wraps a Parquet error with the file it happened in.
    pub(crate) fn parquet(
        path: impl std::fmt::Display,
        source: parquet::errors::ParquetError,
    ) -> Self {
        Error::Parquet {
            path: Some(path.to_string()),
            source,
        }
    }
}

/// The message of [`Error::SchemaMismatch`]: a column the input adds, one it lacks, or
/// one whose type differs.
fn schema_mismatch(column: &str, expected: &str, found: &str) -> String {
    match (expected, found) {
        ("absent", found) => format!(
            "schema mismatch: the input has column `{column}` ({found}), which the dataset \
             does not (schema mode `merge` adds it)"
        ),
        (expected, "absent") => {
            format!("schema mismatch: the input lacks the dataset's column `{column}` ({expected})")
        }
        (expected, found) => format!(
            "schema mismatch in column `{column}`: dataset has {expected}, input has {found}"
        ),
    }
}
