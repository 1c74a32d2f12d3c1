//! Incremental view refresh: after any sequence of appends, upserts, deletes and
//! overwrites on the source, the refreshed view equals a full recompute.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use dala_catalog::{Catalog, RefreshMode, TableOptions, ViewOptions, WriteDefaults};
use dala_dataset::{Expr, WriteMode, WriteOptions};
use proptest::prelude::*;

const VIEW_SQL: &str =
    "SELECT day, count(*) AS n, sum(amount) AS total FROM sales.events GROUP BY day";

fn events(rows: &[(i64, i64, i64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("day", DataType::Int64, false),
        Field::new("amount", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

async fn text(catalog: &Catalog, sql: &str) -> Vec<String> {
    common::rows(catalog, sql, Vec::new()).await
}

/// The view as stored, and the same query computed now from the source.
async fn view_and_recompute(catalog: &Catalog) -> (Vec<String>, Vec<String>) {
    let view = text(
        catalog,
        "SELECT day, n, total FROM reports.daily ORDER BY day",
    )
    .await;
    let fresh = text(catalog, &format!("{VIEW_SQL} ORDER BY day")).await;
    (view, fresh)
}

async fn setup(dir: &tempfile::TempDir, max_share: f64) -> Catalog {
    let location = dir.path().join("catalog.json").display().to_string();
    let mut catalog = Catalog::init(&location).await.unwrap();
    let options = TableOptions {
        write: WriteDefaults {
            partition_by: vec!["day".into()],
            ..WriteDefaults::default()
        },
        ..TableOptions::default()
    };
    let first: Vec<(i64, i64, i64)> = (0..12).map(|i| (i, 1 + i % 6, i * 10)).collect();
    catalog
        .create_table("sales.events", vec![Ok(events(&first))], options)
        .await
        .unwrap();
    let view = ViewOptions {
        refresh: RefreshMode::Incremental {
            by: vec!["day".into()],
            max_share,
        },
        ..ViewOptions::default()
    };
    catalog
        .create_view("reports.daily", VIEW_SQL, view)
        .await
        .unwrap();
    catalog
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(i64, i64)>),
    Upsert(Vec<(i64, i64, i64)>),
    DeleteDay(i64),
    DeleteBelow(i64),
    OverwriteDays(Vec<(i64, i64)>),
    Overwrite(Vec<(i64, i64)>),
}

fn op() -> impl Strategy<Value = Op> {
    let rows = prop::collection::vec((1i64..=6, 0i64..100), 1..6);
    prop_oneof![
        3 => rows.clone().prop_map(Op::Append),
        3 => prop::collection::vec((0i64..12, 1i64..=6, 0i64..100), 1..4).prop_map(Op::Upsert),
        2 => (1i64..=6).prop_map(Op::DeleteDay),
        1 => (0i64..100).prop_map(Op::DeleteBelow),
        2 => rows.clone().prop_map(Op::OverwriteDays),
        1 => rows.prop_map(Op::Overwrite),
    ]
}

async fn apply(catalog: &Catalog, op: &Op, next_id: &mut i64) {
    let mut source = catalog.load("sales.events").await.unwrap();
    let mut fresh = |rows: &[(i64, i64)]| -> Vec<(i64, i64, i64)> {
        rows.iter()
            .map(|(day, amount)| {
                *next_id += 1;
                (*next_id, *day, *amount)
            })
            .collect()
    };
    match op {
        Op::Append(rows) => {
            let rows = fresh(rows);
            source
                .write(vec![Ok(events(&rows))], &WriteOptions::default())
                .await
                .unwrap();
        }
        Op::Upsert(rows) => {
            let options = WriteOptions::default()
                .with_mode(WriteMode::Upsert)
                .with_key(["id"]);
            source
                .write(vec![Ok(events(rows))], &options)
                .await
                .unwrap();
        }
        Op::DeleteDay(day) => {
            source
                .delete(Expr::parse(&format!("day = {day}")).unwrap())
                .await
                .unwrap();
        }
        Op::DeleteBelow(amount) => {
            source
                .delete(Expr::parse(&format!("amount < {amount}")).unwrap())
                .await
                .unwrap();
        }
        Op::OverwriteDays(rows) | Op::Overwrite(rows) => {
            let mode = if matches!(op, Op::Overwrite(_)) {
                WriteMode::Overwrite
            } else {
                WriteMode::OverwritePartitions
            };
            let rows = fresh(rows);
            source
                .write(
                    vec![Ok(events(&rows))],
                    &WriteOptions::default().with_mode(mode),
                )
                .await
                .unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn incremental_refresh_equals_a_full_recompute(ops in prop::collection::vec(op(), 1..6)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            // A share no change reaches: every refresh but an overwrite is incremental.
            let mut catalog = setup(&dir, 1e9).await;
            let mut next_id = 1000;
            for op in &ops {
                apply(&catalog, op, &mut next_id).await;
                let info = catalog.refresh("reports.daily").await.unwrap();
                let full_expected = matches!(op, Op::Overwrite(_));
                assert_eq!(info.kind == "full", full_expected, "{op:?}: {info:?}");
                let (view, fresh) = view_and_recompute(&catalog).await;
                assert_eq!(view, fresh, "after {op:?}");
                assert!(catalog.status("reports.daily").await.unwrap().is_fresh());
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_refresh_touches_only_changed_partitions_and_says_when_it_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = setup(&dir, 0.5).await;
    let mut next_id = 1000;
    apply(&catalog, &Op::Append(vec![(3, 7)]), &mut next_id).await;
    let info = catalog.refresh("reports.daily").await.unwrap();
    assert_eq!(
        (info.kind.as_str(), info.partitions),
        ("incremental", Some(1))
    );
    let (view, fresh) = view_and_recompute(&catalog).await;
    assert_eq!(view, fresh);
    // Nothing changed: nothing recomputed.
    let info = catalog.refresh("reports.daily").await.unwrap();
    assert_eq!(
        (info.kind.as_str(), info.partitions),
        ("incremental", Some(0))
    );
    // Four of six days changed: a full refresh is cheaper, and the result says so.
    let rows = vec![(1, 1), (2, 2), (4, 4), (5, 5)];
    apply(&catalog, &Op::Append(rows), &mut next_id).await;
    let info = catalog.refresh("reports.daily").await.unwrap();
    assert_eq!(info.kind, "full");
    assert!(
        info.fallback.as_deref().unwrap().contains("4 of 6"),
        "{info:?}"
    );
    let (view, fresh) = view_and_recompute(&catalog).await;
    assert_eq!(view, fresh);
    // A view whose source is not partitioned by its `by` columns is refused.
    let error = catalog
        .create_view(
            "reports.bad",
            "SELECT amount, count(*) AS n FROM sales.events GROUP BY amount",
            ViewOptions {
                refresh: RefreshMode::Incremental {
                    by: vec!["amount".into()],
                    max_share: 0.5,
                },
                ..ViewOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("partitioned by"), "{error}");
    assert!(catalog.list_views(None) == vec!["reports.daily".to_string()]);
}
