//! Integration tests of dala-dataset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod adopt;
mod common;
mod concurrency;
mod duckdb_equivalence;
mod faults;
mod log;
mod merge;
mod merge_model;
mod repartition;
mod schema;
mod write_scan;
