//! The scan gives the same rows as DuckDB's `read_parquet(..., hive_partitioning = true)`
//! over the same files, for fixed and generated filters.

use arrow::array::RecordBatch;
use dala_dataset::Dataset;
use proptest::prelude::*;

use crate::common::{self, location, partitioned, rows};

const COLUMNS: [&str; 7] = ["id", "name", "qty", "price", "day", "year", "region"];

fn duckdb_rows(root: &std::path::Path, filter: &str) -> Vec<String> {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let sql = format!(
        "SELECT {} FROM read_parquet('{}/**/*.parquet', hive_partitioning = true, \
         hive_types = {{'year': 'INTEGER', 'region': 'VARCHAR'}}) WHERE {filter}",
        COLUMNS.join(", "),
        root.display()
    );
    let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches: Vec<RecordBatch> = stmt.query_arrow([]).unwrap().collect();
    rows(&batches, &COLUMNS)
}

async fn dala_rows(ds: &Dataset, filter: &str) -> Vec<String> {
    let batches = ds
        .scan()
        .with_filter_str(filter)
        .unwrap()
        .collect()
        .await
        .unwrap();
    rows(&batches, &COLUMNS)
}

#[tokio::test(flavor = "multi_thread")]
async fn fixed_filters_match_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir, "ds");
    let ds = common::write(&path, 0, 3000, &partitioned()).await;
    let root = dir.path().join("ds");
    let filters = [
        "TRUE",
        "year = 2021",
        "year IN (2020, 2023) AND qty < 10",
        "region = 'east/west'",
        "region = 'a=b%c' OR region IS NULL",
        "region NOT IN ('north', 'south')",
        "qty BETWEEN 5 AND 9",
        "qty NOT BETWEEN 5 AND 35",
        "name LIKE 'name-01%'",
        "name NOT LIKE '%9'",
        "name IS NULL AND qty IS NOT NULL",
        "price > 250.5",
        "price <= 12",
        "day >= DATE '2022-01-01' AND day < DATE '2022-02-01'",
        "NOT (year = 2022 OR qty > 20)",
        "id < 100 OR id > 2950",
        "id <> 5 AND (qty = 3 OR name = 'name-003')",
    ];
    for filter in filters {
        let expected = duckdb_rows(&root, filter);
        let got = dala_rows(&ds, filter).await;
        assert_eq!(got.len(), expected.len(), "row count for {filter}");
        assert_eq!(got, expected, "rows for {filter}");
    }
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..400).prop_map(|n| format!("id < {n}")),
        (0i32..45).prop_map(|n| format!("qty >= {n}")),
        (0i32..45).prop_map(|n| format!("qty = {n}")),
        Just("qty IS NULL".to_string()),
        (0u32..5).prop_map(|n| format!("name LIKE 'name-0{n}%'")),
        (0u32..50).prop_map(|n| format!("name = 'name-{n:03}'")),
        (0u32..1000).prop_map(|n| format!("price > {}.{}", n, n % 100)),
        (0i32..700).prop_map(|d| format!(
            "day BETWEEN DATE '{}' AND DATE '{}'",
            date(19_000 + d),
            date(19_030 + d)
        )),
        (2019i32..2025).prop_map(|y| format!("year = {y}")),
        Just("year IN (2020, 2022)".to_string()),
        prop_oneof![Just("north"), Just("east/west"), Just("a=b%c")]
            .prop_map(|r| format!("region = '{r}'")),
        Just("region IS NOT NULL".to_string()),
        Just("region NOT IN ('north')".to_string()),
    ]
}

fn date(days: i32) -> String {
    dala_dataset::Scalar::Date(days).to_string()
}

fn filter() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn generated_data_and_filters_match_duckdb(
        first in 0i64..1000,
        n in 1usize..400,
        row_group_size in 7usize..300,
        filter in filter(),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = location(&dir, "ds");
        let options = dala_dataset::WriteOptions { row_group_size, ..partitioned() };
        let (expected, got) = runtime.block_on(async {
            let ds = common::write(&path, first, n, &options).await;
            let got = dala_rows(&ds, &filter).await;
            (duckdb_rows(&dir.path().join("ds"), &filter), got)
        });
        prop_assert_eq!(got, expected, "filter {}", filter);
    }
}
