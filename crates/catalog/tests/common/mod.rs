//! Helpers shared by the catalog's tests.
#![allow(clippy::unwrap_used, dead_code)]

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dala_catalog::{Catalog, QueryOptions};
use dala_dataset::Scalar;
use futures::TryStreamExt;

/// The rows `sql` returns through `catalog` with `params` bound, as [`lines`].
pub async fn rows(catalog: &Catalog, sql: &str, params: Vec<Scalar>) -> Vec<String> {
    let options = QueryOptions {
        params,
        ..QueryOptions::default()
    };
    rows_with(catalog, sql, &options).await
}

/// The rows `sql` returns through `catalog` with `options`, as [`lines`].
pub async fn rows_with(catalog: &Catalog, sql: &str, options: &QueryOptions) -> Vec<String> {
    let batches: Vec<RecordBatch> = catalog
        .query_with(sql, options)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    lines(&batches)
}

/// Every row as `a|b|c` text, in order.
pub fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let format = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &format).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = columns.iter().map(|c| c.value(row).to_string()).collect();
            out.push(cells.join("|"));
        }
    }
    out
}
