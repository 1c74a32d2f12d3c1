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
