//! End-to-end: TPC-H data from `dala-datagen`, written by `dala-dataset` as a hive
//! dataset partitioned by ship year and month, scanned with pruning; the answers are
//! checked against a direct computation over the generated rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type};
use dala_datagen::{GenOptions, Table, batches};
use dala_dataset::{Dataset, Scalar, WriteOptions};
use futures::StreamExt;

fn with_year_month(batch: RecordBatch) -> RecordBatch {
    dala_datagen::with_ship_year_month(batch).unwrap()
}

/// TPC-H Q6's predicate, computed row by row over the generated data: revenue in cents².
fn q6_direct(options: &GenOptions, low: i32, high: i32) -> (u64, i128) {
    let (mut rows, mut revenue) = (0u64, 0i128);
    for batch in batches(Table::Lineitem, options) {
        let ship = batch
            .column_by_name("l_shipdate")
            .unwrap()
            .as_primitive::<Date32Type>();
        let disc = batch
            .column_by_name("l_discount")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        let qty = batch
            .column_by_name("l_quantity")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        let price = batch
            .column_by_name("l_extendedprice")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        for i in 0..batch.num_rows() {
            let d = disc.value(i);
            if ship.value(i) >= low
                && ship.value(i) < high
                && (5..=7).contains(&d)
                && qty.value(i) < 2400
            {
                rows += 1;
                revenue += price.value(i) * d;
            }
        }
    }
    (rows, revenue)
}

#[tokio::test(flavor = "multi_thread")]
async fn tpch_q6_through_a_partitioned_dataset() {
    q6_at_scale(0.01, 10_000).await;
}

/// The same at scale factor 1 (6 million rows): `cargo test --release -p dala-tests -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "large data: run with --release -- --ignored"]
async fn tpch_q6_through_a_partitioned_dataset_at_scale_factor_1() {
    q6_at_scale(1.0, 65_536).await;
}

async fn q6_at_scale(scale_factor: f64, batch_size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lineitem").display().to_string();
    let options = GenOptions {
        scale_factor,
        batch_size,
        ..GenOptions::default()
    };
    let input = batches(Table::Lineitem, &options).map(|b| Ok(with_year_month(b)));
    let write = WriteOptions::default().with_partition_by(["year", "month"]);
    let (dataset, result) = Dataset::builder(&path).write(input, &write).await.unwrap();
    assert_eq!(
        result.rows_inserted,
        dala_datagen::row_count(Table::Lineitem, 0.01)
    );
    let months: std::collections::BTreeSet<(i32, i32)> = batches(Table::Lineitem, &options)
        .flat_map(|b| {
            let b = with_year_month(b);
            let year = b
                .column_by_name("year")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>()
                .clone();
            let month = b
                .column_by_name("month")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>()
                .clone();
            (0..b.num_rows())
                .map(move |i| (year.value(i), month.value(i)))
                .collect::<Vec<_>>()
        })
        .collect();
    let dirs: Vec<String> = dataset.snapshot().partitions().into_keys().collect();
    let expected: Vec<String> = months
        .iter()
        .map(|(y, m)| format!("year={y}/month={m}"))
        .collect();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(dirs, sorted);

    let filter = "year = 1994 AND l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
                  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24";
    let scan = dataset
        .scan()
        .with_filter_str(filter)
        .unwrap()
        .with_columns(["l_extendedprice", "l_discount"]);
    let explain = scan.explain().await.unwrap();
    assert_eq!(explain.files_kept, 12, "{explain}");
    assert_eq!(
        explain.files_pruned_by_partition,
        explain.files_total - 12,
        "{explain}"
    );

    let mut stream = scan.stream().unwrap();
    let (mut rows, mut revenue) = (0u64, 0i128);
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        let price = batch.column(0).as_primitive::<Decimal128Type>();
        let disc = batch.column(1).as_primitive::<Decimal128Type>();
        for i in 0..batch.num_rows() {
            revenue += price.value(i) * disc.value(i);
        }
        rows += batch.num_rows() as u64;
    }
    let low = dala_dataset::scalar::parse_date("1994-01-01").unwrap();
    let high = dala_dataset::scalar::parse_date("1995-01-01").unwrap();
    let expected = q6_direct(&options, low, high);
    assert!(expected.0 > 0);
    assert_eq!((rows, revenue), expected);
    assert_eq!(Scalar::Date(low).to_string(), "1994-01-01");
}
