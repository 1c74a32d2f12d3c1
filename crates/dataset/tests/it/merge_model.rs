//! Property test: after any sequence of writes in every mode, the dataset holds exactly
//! the rows of a simple in-memory model of the same sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use dala_dataset::{Dataset, WriteMode, WriteOptions, col, lit};
use proptest::prelude::*;

/// A row: (id, v, p); `p` is the partition column, `id` the key.
type Row = (i64, Option<i64>, i32);

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Row>),
    Overwrite(Vec<Row>),
    OverwritePartitions(Vec<Row>),
    Insert(Vec<Row>),
    Update(Vec<Row>),
    Upsert(Vec<Row>),
    DeleteBelow(i64),
    DeletePartition(i32),
}

fn row() -> impl Strategy<Value = Row> {
    (0i64..30, proptest::option::of(0i64..4), 0i32..3)
}

fn op() -> impl Strategy<Value = Op> {
    let rows = || proptest::collection::vec(row(), 0..10);
    prop_oneof![
        rows().prop_map(Op::Append),
        rows().prop_map(Op::Overwrite),
        rows().prop_map(Op::OverwritePartitions),
        rows().prop_map(Op::Insert),
        rows().prop_map(Op::Update),
        rows().prop_map(Op::Upsert),
        (0i64..30).prop_map(Op::DeleteBelow),
        (0i32..3).prop_map(Op::DeletePartition),
    ]
}

fn batch(rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("p", DataType::Int32, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

/// Rows with ids the model does not hold, each id once (appends and overwrites do not
/// match keys, so the model stays a map only if their ids are new).
fn fresh(rows: &[Row], model: &BTreeMap<i64, Row>, keep: impl Fn(&Row) -> bool) -> Vec<Row> {
    let mut seen = BTreeSet::new();
    rows.iter()
        .filter(|r| !model.contains_key(&r.0) || keep(r))
        .filter(|r| seen.insert(r.0))
        .copied()
        .collect()
}

fn read(ds: &Dataset, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let batches = rt.block_on(ds.scan().collect()).unwrap();
    let mut out = Vec::new();
    for b in batches {
        let id = b.column_by_name("id").unwrap();
        let v = b.column_by_name("v").unwrap();
        let p = b.column_by_name("p").unwrap();
        let id = id.as_any().downcast_ref::<Int64Array>().unwrap();
        let v = v.as_any().downcast_ref::<Int64Array>().unwrap();
        let p = p.as_any().downcast_ref::<Int32Array>().unwrap();
        for i in 0..b.num_rows() {
            out.push((id.value(i), v.is_valid(i).then(|| v.value(i)), p.value(i)));
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// With a small memory budget, a merge reads the files it rewrites twice (to compare,
    /// then to copy) instead of keeping them while it compares.
    #[test]
    fn every_mode_agrees_with_a_model(
        ops in proptest::collection::vec(op(), 1..8),
        small_budget in any::<bool>(),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ds").display().to_string();
        let mut model: BTreeMap<i64, Row> = BTreeMap::new();
        let mut ds: Option<Dataset> = None;
        for op in ops {
            let options = |mode: WriteMode| {
                let max_buffered_bytes = match small_budget {
                    true => 16 * 1024,
                    false => WriteOptions::default().max_buffered_bytes,
                };
                WriteOptions {
                    mode,
                    max_buffered_bytes,
                    ..WriteOptions::default().with_partition_by(["p"])
                }
                .with_key(["id"])
            };
            let (mode, input) = match &op {
                Op::Append(rows) => (WriteMode::Append, fresh(rows, &model, |_| false)),
                Op::Overwrite(rows) => {
                    model.clear();
                    (WriteMode::Overwrite, fresh(rows, &model, |_| false))
                }
                Op::OverwritePartitions(rows) => {
                    // Ids may repeat only rows of the partitions being replaced.
                    let mut input = rows.clone();
                    loop {
                        let parts: BTreeSet<i32> = input.iter().map(|r| r.2).collect();
                        let next = fresh(&input, &model, |r| {
                            model.get(&r.0).is_some_and(|old| parts.contains(&old.2))
                        });
                        if next.len() == input.len() {
                            break;
                        }
                        input = next;
                    }
                    let parts: BTreeSet<i32> = input.iter().map(|r| r.2).collect();
                    model.retain(|_, r| !parts.contains(&r.2));
                    (WriteMode::OverwritePartitions, input)
                }
                Op::Insert(rows) => (WriteMode::Insert, rows.clone()),
                Op::Update(rows) => (WriteMode::Update, rows.clone()),
                Op::Upsert(rows) => (WriteMode::Upsert, rows.clone()),
                Op::DeleteBelow(_) | Op::DeletePartition(_) => (WriteMode::Append, Vec::new()),
            };
            match &op {
                Op::DeleteBelow(limit) => {
                    model.retain(|id, _| id >= limit);
                    if let Some(ds) = ds.as_mut() {
                        rt.block_on(ds.delete(col("id").lt(lit(*limit)))).unwrap();
                    }
                }
                Op::DeletePartition(p) => {
                    model.retain(|_, r| r.2 != *p);
                    if let Some(ds) = ds.as_mut() {
                        rt.block_on(ds.delete(col("p").eq(lit(*p)))).unwrap();
                    }
                }
                _ => {
                    // The input's last row per key wins.
                    let mut last: BTreeMap<i64, Row> = BTreeMap::new();
                    for r in &input {
                        last.insert(r.0, *r);
                    }
                    for (id, r) in last {
                        let present = model.contains_key(&id);
                        let apply = match mode {
                            WriteMode::Insert => !present,
                            WriteMode::Update => present,
                            _ => true,
                        };
                        if apply {
                            model.insert(id, r);
                        }
                    }
                    let data = vec![Ok(batch(&input))];
                    match ds.as_mut() {
                        Some(ds) => {
                            rt.block_on(ds.write(data, &options(mode))).unwrap();
                        }
                        None if !input.is_empty() => {
                            let (created, _) = rt
                                .block_on(Dataset::builder(&path).write(data, &options(mode)))
                                .map(|(d, r)| (Some(d), r))
                                .or_else(|e| match e {
                                    // An update of a dataset that does not exist creates
                                    // nothing, so there is nothing to open.
                                    dala_dataset::Error::NotFound { .. } => {
                                        Ok((None, Default::default()))
                                    }
                                    other => Err(other),
                                })
                                .unwrap();
                            ds = created;
                        }
                        None => {}
                    }
                }
            }
            let expected: Vec<Row> = model.values().copied().collect();
            let got = ds.as_ref().map(|d| read(d, &rt)).unwrap_or_default();
            prop_assert_eq!(got, expected, "after {:?}", op);
        }
    }
}
