//! The one error type of dala-optimize.

/// What can go wrong planning or executing an optimization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dataset could not be read or changed.
    #[error(transparent)]
    Dataset(#[from] dala_dataset::Error),
    /// Listing or deleting files failed.
    #[error("object store error at {path}: {source}")]
    Store {
        /// The path or prefix concerned.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// An option is not valid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The memory budget is smaller than the least the job needs: the file index, which
    /// every group shares, and one group with its writer's minimum. Nothing was changed.
    #[error(
        "a memory budget of {} is below the {} this compaction needs at least \
         (the file index of {files} files takes {}, one group {}): raise the budget",
        mib(*budget), mib(*needed), mib(*index), mib(*needed - *index)
    )]
    MemoryBudget {
        /// The budget asked for, in bytes.
        budget: usize,
        /// The least budget that can be met, in bytes.
        needed: usize,
        /// The part of it the file index takes, in bytes.
        index: usize,
        /// Files in the index.
        files: usize,
    },
}

/// `bytes` in MiB, rounded up, for messages.
fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<arrow::error::ArrowError> for Error {
    fn from(error: arrow::error::ArrowError) -> Self {
        Error::Dataset(error.into())
    }
}

/// Fails unless `dataset` is at `version`, the version a plan was made from.
pub(crate) fn check_plan_version(dataset: &dala_dataset::Dataset, version: u64) -> Result<()> {
    if dataset.version() != version {
        return Err(Error::InvalidOption(format!(
            "the plan was made at version {version}, the dataset handle is at {}: plan again",
            dataset.version()
        )));
    }
    Ok(())
}
