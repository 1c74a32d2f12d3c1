//! The cache's error type.

/// What can go wrong when a cache is set up or managed. Reads never fail because of the
/// cache: a tier that cannot serve a block is skipped and the store is asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting (an option or an environment variable) has a value that cannot be used.
    #[error("cache setting {name} = {value:?}: {message}")]
    InvalidSetting {
        /// The option or variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// The SSD tier's directory could not be created, read or cleared.
    #[error("cache directory {path}: {source}")]
    Disk {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The statistics file could not be read or written.
    #[error("cache statistics {path}: {message}")]
    Stats {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The cache's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
