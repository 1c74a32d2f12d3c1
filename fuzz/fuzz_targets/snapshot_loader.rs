//! Opening a dataset reads its log through a borrowed view of each entry, with the file
//! statistics read straight into typed values; writers and conflict checks read the full
//! parse. Any bytes, as the first entry or as the next one after a fixed first entry, must
//! be refused by both forms or read into the same snapshot by both.
#![no_main]

use std::sync::LazyLock;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use dala_dataset::Commit;
use dala_dataset::fuzzing::load_both_ways;
use dala_dataset::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// Version 0: columns of the types whose statistics are read by type, two files.
static BASE: LazyLock<Snapshot> = LazyLock::new(|| {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("price", DataType::Decimal128(15, 2), true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("ratio", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
    ]);
    let first = json!({
        "version": 0,
        "timestamp": 1_700_000_000_000_i64,
        "operation": "create",
        "schema": serde_json::to_value(&schema).expect("a schema serializes"),
        "partitioning": [{"name": "year", "data_type": "Int32"}],
        "add": [
            {"path": "year=1995/a.parquet", "partition": {"year": 1995}, "rows": 10,
             "size": 100, "stats": {"id": {"min": 1, "max": 9, "nulls": 0},
                                     "name": {"min": "a", "max": "z"}}},
            {"path": "year=1996/b.parquet", "partition": {"year": 1996}, "rows": 5, "size": 50}
        ]
    });
    let bytes = serde_json::to_vec(&first).expect("json serializes");
    let commit = Commit::parse(&bytes, 0, "_dala/0.json").expect("the base commit parses");
    Snapshot::from_first_commit(&commit, "_dala/0.json").expect("and reads")
});

fuzz_target!(|bytes: &[u8]| {
    // The version the entry claims picks the case, so both are reached.
    let claimed = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("version")?.as_u64());
    match claimed {
        Some(0) | None => load_both_ways(bytes, 0, None),
        Some(_) => load_both_ways(bytes, 1, Some(&BASE)),
    };
});
