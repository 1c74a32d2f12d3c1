//! The one error type of `dala-catalog`.

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `dala-catalog`. Each variant names what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No table, view or namespace by that name.
    #[error("unknown {kind} `{name}`{}", suggest(.suggestions))]
    NotFound {
        /// "table", "namespace", "view" or "store".
        kind: &'static str,
        /// The name as given.
        name: String,
        /// The closest existing names.
        suggestions: Vec<String>,
    },
    /// A short name matches tables in more than one namespace.
    #[error("table name `{name}` is ambiguous: {}", .candidates.join(", "))]
    Ambiguous {
        /// The name as given.
        name: String,
        /// The full names it could mean.
        candidates: Vec<String>,
    },
    /// The name is already taken.
    #[error("{kind} `{name}` already exists")]
    AlreadyExists {
        /// "table", "namespace", "view" or "store".
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// Something still in use cannot be removed.
    #[error("{kind} `{name}` is in use by {}", .users.join(", "))]
    InUse {
        /// "store".
        kind: &'static str,
        /// The name.
        name: String,
        /// What uses it.
        users: Vec<String>,
    },
    /// A name that cannot be used.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The catalog file cannot be read.
    #[error("catalog {location} is invalid: {message}")]
    InvalidCatalog {
        /// Where the catalog is.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Other processes kept changing the catalog while this one tried to.
    #[error("catalog {location}: gave up after {attempts} concurrent changes")]
    Contention {
        /// Where the catalog is.
        location: String,
        /// Attempts made.
        attempts: usize,
    },
    /// A query could not be planned or run.
    #[error("query failed: {message}")]
    Query {
        /// What went wrong, with the position where the parser reports one.
        message: String,
    },
    /// A named store's setting (such as its cache's) cannot be used.
    #[error("store `{store}`: invalid {setting}: {message}")]
    InvalidSetting {
        /// The store.
        store: String,
        /// The setting.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// The cache settings of the environment cannot be used.
    #[error(transparent)]
    Cache(#[from] dala_cache::Error),
    /// A dataset operation failed.
    #[error(transparent)]
    Dataset(#[from] dala_dataset::Error),
    /// The object store failed.
    #[error("catalog store: {0}")]
    Store(#[from] object_store::Error),
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}
