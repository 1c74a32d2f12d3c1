//! The hive path parser: any path gives its `(column, value)` segments or a typed error
//! for the partition values, and any value survives escaping into a folder name.
#![no_main]

use arrow_schema::DataType;
use dala_dataset::layout::{
    PartitionField, escape, parse_hive_segments, parse_partition_values, unescape,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let fields = [
        PartitionField {
            name: "year".into(),
            data_type: DataType::Int32,
        },
        PartitionField {
            name: "day".into(),
            data_type: DataType::Date32,
        },
        PartitionField {
            name: "city".into(),
            data_type: DataType::Utf8,
        },
    ];
    let _ = parse_hive_segments(text);
    let _ = parse_partition_values(&fields, text);
    // A value escaped into a folder name is one path segment and reads back as it was.
    let escaped = escape(text);
    assert!(!escaped.contains('/'), "{text:?} escaped to {escaped:?}");
    assert_eq!(unescape(&escaped), text);
    let path = format!("city={escaped}/part.parquet");
    let segments = parse_hive_segments(&path);
    assert_eq!(segments.len(), 1, "{path:?}");
});
