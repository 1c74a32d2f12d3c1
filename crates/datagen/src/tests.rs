//! Unit tests (kept at scale factor 0.01 or below so they stay fast in debug).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use arrow::util::display::array_value_to_string;
use tpchgen::generators::{LineItemGenerator, OrderGenerator};

use super::*;

/// `1992-01-01` as days since the Unix epoch.
const DAY_1992_01_01: i32 = 8035;
/// `1993-01-01` as days since the Unix epoch.
const DAY_1993_01_01: i32 = DAY_1992_01_01 + 366;
/// `1998-01-01` as days since the Unix epoch.
const DAY_1998_01_01: i32 = 10227;
/// `1998-12-31` as days since the Unix epoch.
const DAY_1998_12_31: i32 = DAY_1998_01_01 + 364;

fn options(scale_factor: f64) -> GenOptions {
    GenOptions {
        scale_factor,
        ..GenOptions::default()
    }
}

fn collect(table: Table, options: &GenOptions) -> Vec<RecordBatch> {
    batches(table, options).collect()
}

fn total_rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

fn concat(table: Table, batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(&schema(table), batches).unwrap()
}

fn int64_column(batch: &RecordBatch, name: &str) -> Vec<i64> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn date_range(batch: &RecordBatch, name: &str) -> (i32, i32) {
    let dates = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Date32Type>();
    let min = dates.values().iter().copied().min().unwrap();
    let max = dates.values().iter().copied().max().unwrap();
    (min, max)
}

#[test]
fn default_options() {
    let d = GenOptions::default();
    assert_eq!(d.scale_factor, 0.01);
    assert_eq!(d.batch_size, 65_536);
    assert_eq!((d.part, d.part_count), (1, 1));
    assert!(d.validate().is_ok());
}

#[test]
fn schemas() {
    let l = schema(Table::Lineitem);
    assert_eq!(l.fields().len(), 16);
    assert_eq!(l.field(0).name(), "l_orderkey");
    assert_eq!(l.field(0).data_type(), &DataType::Int64);
    assert_eq!(l.field(3).data_type(), &DataType::Int32);
    assert_eq!(
        l.field_with_name("l_extendedprice").unwrap().data_type(),
        &DataType::Decimal128(15, 2)
    );
    assert_eq!(
        l.field_with_name("l_shipdate").unwrap().data_type(),
        &DataType::Date32
    );
    assert_eq!(
        l.field_with_name("l_comment").unwrap().data_type(),
        &DataType::Utf8
    );

    let o = schema(Table::Orders);
    assert_eq!(o.fields().len(), 9);
    assert_eq!(
        o.field_with_name("o_totalprice").unwrap().data_type(),
        &DataType::Decimal128(15, 2)
    );
    assert_eq!(
        o.field_with_name("o_orderdate").unwrap().data_type(),
        &DataType::Date32
    );
    assert_eq!(
        o.field_with_name("o_shippriority").unwrap().data_type(),
        &DataType::Int32
    );
    assert_eq!(
        o.field_with_name("o_clerk").unwrap().data_type(),
        &DataType::Utf8
    );

    for table in Table::ALL {
        let s = schema(table);
        assert!(s.fields().iter().all(|f| !f.is_nullable()));
        let prefix = &table.name()[..1];
        assert!(
            s.fields()
                .iter()
                .all(|f| f.name().starts_with(&format!("{prefix}_")))
        );
    }
}

#[test]
fn row_counts_match_at_sf_001() {
    assert_eq!(row_count(Table::Orders, 0.01), 15_000);
    // Published dbgen count at SF 0.01.
    assert_eq!(row_count(Table::Lineitem, 0.01), 60_175);
    for table in Table::ALL {
        let out = collect(table, &options(0.01));
        assert_eq!(total_rows(&out), row_count(table, 0.01), "{table}");
        for batch in &out {
            assert_eq!(batch.schema(), schema(table));
            for column in batch.columns() {
                assert_eq!(column.null_count(), 0);
            }
        }
    }
}

#[test]
fn row_count_known_values() {
    assert_eq!(row_count(Table::Orders, 1.0), 1_500_000);
    assert_eq!(row_count(Table::Lineitem, 1.0), 6_001_215);
    assert_eq!(row_count(Table::Orders, 100.0), 150_000_000);
    // Estimated above SF 10: 4 lines per order (real: 600_037_902).
    assert_eq!(row_count(Table::Lineitem, 100.0), 600_000_000);
    assert_eq!(row_count(Table::Orders, 0.0), 0);
    assert_eq!(row_count(Table::Lineitem, f64::NAN), 0);
}

#[test]
fn batch_sizes() {
    let opts = GenOptions {
        scale_factor: 0.001,
        batch_size: 1_000,
        ..GenOptions::default()
    };
    for table in Table::ALL {
        let out = collect(table, &opts);
        let (last, full) = out.split_last().unwrap();
        assert!(full.iter().all(|b| b.num_rows() == 1_000), "{table}");
        assert!(last.num_rows() > 0 && last.num_rows() <= 1_000);
        assert_eq!(total_rows(&out), row_count(table, 0.001));
    }
    // Orders at SF 0.001 is exactly 1 500 rows; a batch size dividing it
    // must not produce an empty trailing batch.
    let exact = GenOptions {
        batch_size: 500,
        ..opts
    };
    let sizes: Vec<_> = batches(Table::Orders, &exact)
        .map(|b| b.num_rows())
        .collect();
    assert_eq!(sizes, [500, 500, 500]);
}

#[test]
fn dates_in_tpch_range() {
    let lineitem = concat(Table::Lineitem, &collect(Table::Lineitem, &options(0.01)));
    for column in ["l_shipdate", "l_commitdate", "l_receiptdate"] {
        let (min, max) = date_range(&lineitem, column);
        assert!(
            min >= DAY_1992_01_01 && max <= DAY_1998_12_31,
            "{column}: {min}..{max}"
        );
    }
    let (min, max) = date_range(&lineitem, "l_shipdate");
    assert!(min < DAY_1993_01_01, "min shipdate {min} not in 1992");
    assert!(max >= DAY_1998_01_01, "max shipdate {max} not in 1998");

    let orders = concat(Table::Orders, &collect(Table::Orders, &options(0.01)));
    let (min, max) = date_range(&orders, "o_orderdate");
    assert!(
        (DAY_1992_01_01..DAY_1993_01_01).contains(&min),
        "min orderdate {min}"
    );
    assert!(
        (DAY_1998_01_01..DAY_1998_12_31).contains(&max),
        "max orderdate {max}"
    );
}

/// Every value, formatted by Arrow, equals tpchgen's own TBL output.
#[test]
fn values_match_tpchgen_tbl_output() {
    let opts = GenOptions {
        scale_factor: 0.01,
        batch_size: 777,
        part: 2,
        part_count: 7,
    };
    let check = |table: Table, expected: Vec<String>, quantity_column: Option<usize>| {
        let batch = concat(table, &collect(table, &opts));
        assert_eq!(batch.num_rows(), expected.len());
        for (row, line) in expected.iter().enumerate() {
            let mut fields: Vec<String> = line.split('|').map(str::to_owned).collect();
            assert_eq!(fields.pop().as_deref(), Some(""), "TBL lines end with '|'");
            if let Some(q) = quantity_column {
                fields[q].push_str(".00");
            }
            let actual: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, row).unwrap())
                .collect();
            assert_eq!(actual, fields, "{table} row {row}");
        }
    };
    let (part, part_count) = (2, 7);
    let lines: Vec<String> = LineItemGenerator::new(0.01, part, part_count)
        .iter()
        .map(|r| r.to_string())
        .collect();
    check(Table::Lineitem, lines, Some(4));
    let orders: Vec<String> = OrderGenerator::new(0.01, part, part_count)
        .iter()
        .map(|r| r.to_string())
        .collect();
    check(Table::Orders, orders, None);
}

#[test]
fn first_lineitem_row() {
    let batch = batches(Table::Lineitem, &options(0.01)).next().unwrap();
    let row: Vec<String> = batch
        .columns()
        .iter()
        .map(|c| array_value_to_string(c, 0).unwrap())
        .collect();
    assert_eq!(row[0], "1");
    assert_eq!(row[4], "17.00");
    assert_eq!(row[10], "1996-03-13");
    let shipdate = batch.column(10).as_primitive::<Date32Type>().value(0);
    // 1996-03-13 = 1996-01-01 (9496) + 31 + 29 + 12.
    assert_eq!(shipdate, 9496 + 72);
}

#[test]
fn parts_are_disjoint_and_complete() {
    for table in Table::ALL {
        let whole = concat(table, &collect(table, &options(0.01)));
        let key = if table == Table::Lineitem {
            "l_orderkey"
        } else {
            "o_orderkey"
        };
        let part_count = 3;
        let mut parts = Vec::new();
        let mut sum = 0;
        for part in 1..=part_count {
            let opts = GenOptions {
                part,
                part_count,
                batch_size: 4_096,
                ..options(0.01)
            };
            let out = collect(table, &opts);
            let rows = total_rows(&out);
            assert!(rows > 0, "{table} part {part}");
            sum += rows;
            parts.extend(out);
        }
        assert_eq!(sum, whole.num_rows() as u64, "{table}");
        // Concatenated in order, the parts are exactly the whole table.
        let joined = concat(table, &parts);
        assert_eq!(joined, whole, "{table}");
        // ...and no order key is shared between two parts.
        let keys = int64_column(&joined, key);
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{table} keys sorted");
    }
}

#[test]
fn partition_lineitem_counts_are_exact() {
    let part_count = 4;
    let mut sum = 0;
    for part in 1..=part_count {
        let p = Partition {
            scale_factor: 0.01,
            part,
            part_count,
        };
        let opts = GenOptions {
            part: part as usize,
            part_count: part_count as usize,
            ..options(0.01)
        };
        let rows = total_rows(&collect(Table::Lineitem, &opts));
        assert_eq!(p.exact_lineitem_count(), rows);
        sum += rows;
    }
    assert_eq!(sum, row_count(Table::Lineitem, 0.01));
}

#[test]
fn deterministic() {
    for table in Table::ALL {
        let opts = GenOptions {
            batch_size: 10_000,
            ..options(0.01)
        };
        assert_eq!(collect(table, &opts), collect(table, &opts), "{table}");
    }
}

#[test]
fn invalid_options_yield_nothing() {
    let invalid = [
        GenOptions {
            part: 0,
            ..GenOptions::default()
        },
        GenOptions {
            part: 3,
            part_count: 2,
            ..GenOptions::default()
        },
        GenOptions {
            part_count: 0,
            ..GenOptions::default()
        },
        GenOptions {
            batch_size: 0,
            ..GenOptions::default()
        },
        GenOptions {
            scale_factor: 0.00001,
            ..GenOptions::default()
        },
        GenOptions {
            scale_factor: -1.0,
            ..GenOptions::default()
        },
        GenOptions {
            scale_factor: f64::INFINITY,
            ..GenOptions::default()
        },
        GenOptions {
            part: usize::MAX,
            part_count: usize::MAX,
            ..GenOptions::default()
        },
    ];
    for opts in invalid {
        let err = opts.validate().unwrap_err();
        assert!(!err.to_string().is_empty());
        for table in Table::ALL {
            assert_eq!(batches(table, &opts).count(), 0, "{opts:?}");
        }
    }
    // The smallest supported scale factor works.
    let tiny = options(0.0001);
    assert!(tiny.validate().is_ok());
    assert_eq!(total_rows(&collect(Table::Orders, &tiny)), 150);
    assert_eq!(
        total_rows(&collect(Table::Lineitem, &tiny)),
        row_count(Table::Lineitem, 0.0001)
    );
}

#[test]
fn stream_is_send_and_lazy() {
    fn assert_send<T: Send>(_: &T) {}
    let stream = batches(Table::Lineitem, &GenOptions::default());
    assert_send(&stream);
    let handle = std::thread::spawn(move || stream.map(|b| b.num_rows()).sum::<usize>());
    assert_eq!(
        handle.join().unwrap() as u64,
        row_count(Table::Lineitem, 0.01)
    );
}

/// Release-mode throughput: `cargo test --release -p dala-datagen -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn generation_rate_sf1() {
    use std::time::Instant;
    // Initialise the shared text pool outside the timed section.
    let t = Instant::now();
    let _ = batches(Table::Orders, &options(0.001)).count();
    println!("text pool init: {:.2?}", t.elapsed());

    for table in Table::ALL {
        let opts = options(1.0);
        let t = Instant::now();
        let rows: usize = batches(table, &opts).map(|b| b.num_rows()).sum();
        let elapsed = t.elapsed();
        println!(
            "{table} sf1: {rows} rows in {elapsed:.2?} ({:.1} M rows/s)",
            rows as f64 / elapsed.as_secs_f64() / 1e6
        );
        assert_eq!(rows as u64, row_count(table, 1.0));
    }
    // Baseline: tpchgen alone, reading every comment's last byte (a cache
    // miss into the text pool) but building nothing.
    let t = Instant::now();
    let checksum: i64 = LineItemGenerator::new(1.0, 1, 1)
        .iter()
        .map(|r| r.l_orderkey + i64::from(r.l_comment.bytes().last().unwrap_or(0)))
        .sum();
    println!(
        "tpchgen lineitem sf1 rows only: {:.2?} ({checksum})",
        t.elapsed()
    );

    let t = Instant::now();
    let n = row_count(Table::Lineitem, 10.0);
    println!("row_count(lineitem, 10) = {n} in {:.2?}", t.elapsed());
}
