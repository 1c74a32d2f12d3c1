//! # dala-catalog
//!
//! Users name datasets, not paths: `sales.orders`. A catalog holds the datasets of a lake
//! in namespaces (nested, dotted names), in one JSON file that changes atomically even when
//! processes share it (see `log`), and answers SQL over them.
//!
//! - [`Catalog`]: `open`, `init`, `create_namespace`, `create_table`, `register`, `load`,
//!   `drop_table`, `rename`, `list`, `describe`, and `import_pydala` (a PyDala2
//!   `catalog.yml`).
//! - [`Catalog::query`]: SQL over catalog tables (DuckDB by default, Polars SQL with the
//!   `polars` feature), each table read at one version for the whole query, parameters
//!   bound as values.
//!
//! - Materialized views: [`Catalog::create_view`], [`Catalog::refresh`],
//!   [`Catalog::status`]; a view's result is a dala dataset that queries read as a table.
//!
//! The default catalog is `catalog/catalog.json` under the current folder, or the file
//! `DALA_CATALOG` names.

mod catalog;
mod error;
mod import;
mod log;
mod model;
mod query;
mod results;
mod view;

pub use catalog::{CATALOG_VARIABLE, Catalog, DEFAULT_CATALOG, TableDescription, TableOptions};
pub use error::{Error, Result};
pub use import::ImportReport;
pub use log::{KEEP_LOG_ENTRIES, PRUNE_EVERY};
pub use model::{
    CatalogState, Namespace, RefreshInfo, RefreshMode, StoreCache, StoreEntry, TableEntry,
    ViewEntry, WriteDefaults,
};
pub use query::{PlannedQuery, PlannedTable, QueryOptions};
pub use results::{ResultCache, ResultCacheStats};
pub use view::{ViewOptions, ViewStatus};
