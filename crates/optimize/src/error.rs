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
