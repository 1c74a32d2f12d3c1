//! TPC-H data generation straight into Arrow [`RecordBatch`]es.
//!
//! This crate wraps the pure-Rust [`tpchgen`] generator (a port of the
//! official `dbgen`) and converts its rows into arrow-rs record batches for
//! the `LINEITEM` and `ORDERS` tables. The data is exactly what `dbgen`
//! produces for the same scale factor and part, so query answers can be
//! compared with published TPC-H results.
//!
//! * [`schema`] returns the Arrow schema of a [`Table`] (lowercase TPC-H
//!   column names, `Int64` keys, `Decimal128(15, 2)` money columns, `Date32`
//!   dates, `Utf8` text; all fields non-nullable).
//! * [`batches`] streams a table (or one part of it, see
//!   [`GenOptions::part`]) as batches of at most [`GenOptions::batch_size`]
//!   rows; memory use is bounded by the batch size.
//! * [`row_count`] tells how many rows a table has at a scale factor.
//!
//! The first generation in a process initialises `tpchgen`'s shared text
//! pool (about 300 MB, built once and reused by all later generations).
//!
//! # Example
//!
//! ```
//! use dala_datagen::{GenOptions, Table, batches, row_count, schema};
//!
//! let options = GenOptions { scale_factor: 0.001, batch_size: 1_000, ..GenOptions::default() };
//! let mut rows = 0;
//! for batch in batches(Table::Orders, &options) {
//!     assert!(batch.num_rows() <= 1_000);
//!     assert_eq!(batch.schema(), schema(Table::Orders));
//!     rows += batch.num_rows() as u64;
//! }
//! assert_eq!(rows, row_count(Table::Orders, 0.001));
//! assert_eq!(rows, 1_500);
//! ```

use std::fmt;
use std::sync::LazyLock;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

mod lineitem;
mod orders;

#[cfg(test)]
mod tests;

/// Precision of the TPC-H money columns (`DECIMAL(15, 2)`).
const DECIMAL_PRECISION: u8 = 15;
/// Scale of the TPC-H money columns (`DECIMAL(15, 2)`).
const DECIMAL_SCALE: i8 = 2;
/// Arrow type of the TPC-H money columns.
const DECIMAL_TYPE: DataType = DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE);

/// Above this many orders [`row_count`] estimates the `LINEITEM` row count
/// instead of replaying the line-count random stream (scale factor 10).
const EXACT_LINEITEM_COUNT_MAX_ORDERS: i64 = 15_000_000;

/// A TPC-H table this crate can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `LINEITEM`: about 6 million rows at scale factor 1, 16 columns.
    Lineitem,
    /// `ORDERS`: 1.5 million rows at scale factor 1, 9 columns.
    Orders,
}

impl Table {
    /// Every table this crate can generate.
    pub const ALL: [Table; 2] = [Table::Lineitem, Table::Orders];

    /// The lowercase TPC-H table name (`"lineitem"`, `"orders"`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Lineitem => "lineitem",
            Table::Orders => "orders",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static LINEITEM_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    SchemaRef::new(Schema::new(vec![
        Field::new("l_orderkey", DataType::Int64, false),
        Field::new("l_partkey", DataType::Int64, false),
        Field::new("l_suppkey", DataType::Int64, false),
        Field::new("l_linenumber", DataType::Int32, false),
        Field::new("l_quantity", DECIMAL_TYPE, false),
        Field::new("l_extendedprice", DECIMAL_TYPE, false),
        Field::new("l_discount", DECIMAL_TYPE, false),
        Field::new("l_tax", DECIMAL_TYPE, false),
        Field::new("l_returnflag", DataType::Utf8, false),
        Field::new("l_linestatus", DataType::Utf8, false),
        Field::new("l_shipdate", DataType::Date32, false),
        Field::new("l_commitdate", DataType::Date32, false),
        Field::new("l_receiptdate", DataType::Date32, false),
        Field::new("l_shipinstruct", DataType::Utf8, false),
        Field::new("l_shipmode", DataType::Utf8, false),
        Field::new("l_comment", DataType::Utf8, false),
    ]))
});

static ORDERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    SchemaRef::new(Schema::new(vec![
        Field::new("o_orderkey", DataType::Int64, false),
        Field::new("o_custkey", DataType::Int64, false),
        Field::new("o_orderstatus", DataType::Utf8, false),
        Field::new("o_totalprice", DECIMAL_TYPE, false),
        Field::new("o_orderdate", DataType::Date32, false),
        Field::new("o_orderpriority", DataType::Utf8, false),
        Field::new("o_clerk", DataType::Utf8, false),
        Field::new("o_shippriority", DataType::Int32, false),
        Field::new("o_comment", DataType::Utf8, false),
    ]))
});

/// The Arrow schema of `table`.
///
/// Columns use the lowercase TPC-H names in TPC-H order. Keys are `Int64`,
/// `l_linenumber` and `o_shippriority` are `Int32`, money and quantity
/// columns are `Decimal128(15, 2)`, dates are `Date32` (days since
/// 1970-01-01) and everything else is `Utf8`. No field is nullable.
///
/// Every batch returned by [`batches`] has exactly this schema (the same
/// `Arc`, so comparisons are cheap).
pub fn schema(table: Table) -> SchemaRef {
    match table {
        Table::Lineitem => SchemaRef::clone(&LINEITEM_SCHEMA),
        Table::Orders => SchemaRef::clone(&ORDERS_SCHEMA),
    }
}

/// How to generate a table: scale factor, batch size and which part.
///
/// Use struct update syntax to override a few fields:
///
/// ```
/// # use dala_datagen::GenOptions;
/// let options = GenOptions { scale_factor: 1.0, part: 2, part_count: 4, ..GenOptions::default() };
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// TPC-H scale factor: 1.0 is the classic 1 GB dataset (6 M lineitems,
    /// 1.5 M orders). Must be finite and at least 0.0001 (the smallest scale
    /// factor with at least one supplier). Default: 0.01.
    pub scale_factor: f64,
    /// Maximum rows per [`RecordBatch`]; every batch but the last of a
    /// stream is full. Must be at least 1. Default: 65 536.
    pub batch_size: usize,
    /// Which part to generate, **1-based** like `dbgen -S` and `tpchgen`:
    /// `1..=part_count`. Default: 1.
    pub part: usize,
    /// Into how many parts the table is split. The orders are divided into
    /// `part_count` contiguous ranges (the last part takes the remainder) and
    /// a part of `LINEITEM` holds the line items of the same orders, so the
    /// parts are disjoint and, concatenated in order, equal the whole table.
    /// Must be at least 1. Default: 1.
    pub part_count: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            scale_factor: 0.01,
            batch_size: 65_536,
            part: 1,
            part_count: 1,
        }
    }
}

/// Why a [`GenOptions`] value cannot be used, see [`GenOptions::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOptions {
    message: String,
}

impl fmt::Display for InvalidOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid TPC-H generation options: {}", self.message)
    }
}

impl std::error::Error for InvalidOptions {}

/// A validated partition of a table, in `tpchgen`'s terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Partition {
    pub(crate) scale_factor: f64,
    pub(crate) part: i32,
    pub(crate) part_count: i32,
}

impl Partition {
    /// Number of orders in this partition.
    pub(crate) fn order_count(self) -> i64 {
        tpchgen::generators::OrderGenerator::calculate_row_count(
            self.scale_factor,
            self.part,
            self.part_count,
        )
        .max(0)
    }

    /// Exact number of line items in this partition: replays the random
    /// stream `tpchgen` uses to pick each order's line count (1..=7).
    pub(crate) fn exact_lineitem_count(self) -> u64 {
        use tpchgen::dates::GenerateUtils;
        use tpchgen::generators::OrderGenerator;

        let start = GenerateUtils::calculate_start_index(
            OrderGenerator::SCALE_BASE,
            self.scale_factor,
            self.part,
            self.part_count,
        );
        let mut line_count = OrderGenerator::create_line_count_random();
        line_count.advance_rows(start);
        let mut total = 0u64;
        for _ in 0..self.order_count() {
            total += u64::from(line_count.next_value().unsigned_abs());
            line_count.row_finished();
        }
        total
    }
}

impl GenOptions {
    /// Checks the options: a finite scale factor of at least 0.0001,
    /// `batch_size >= 1`, `part_count >= 1` and `1 <= part <= part_count`.
    ///
    /// [`batches`] yields nothing for options that fail this check.
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        self.partition().map(|_| ())
    }

    fn partition(&self) -> Result<Partition, InvalidOptions> {
        let invalid = |message: String| Err(InvalidOptions { message });
        if !valid_scale_factor(self.scale_factor) {
            return invalid(format!(
                "scale_factor must be finite and at least 0.0001, got {}",
                self.scale_factor
            ));
        }
        if self.batch_size == 0 {
            return invalid("batch_size must be at least 1".to_owned());
        }
        let (Ok(part), Ok(part_count)) = (i32::try_from(self.part), i32::try_from(self.part_count))
        else {
            return invalid(format!(
                "part {} / part_count {} out of range",
                self.part, self.part_count
            ));
        };
        if part_count < 1 || part < 1 || part > part_count {
            return invalid(format!(
                "part must be in 1..=part_count (parts are 1-based), got part {part} of {part_count}"
            ));
        }
        Ok(Partition {
            scale_factor: self.scale_factor,
            part,
            part_count,
        })
    }
}

/// Whether `tpchgen` can generate data at `scale_factor`: line items pick a
/// supplier modulo the supplier count (10 000 per unit of scale factor), so
/// there must be at least one supplier.
fn valid_scale_factor(scale_factor: f64) -> bool {
    scale_factor.is_finite()
        && tpchgen::generators::SupplierGenerator::calculate_row_count(scale_factor, 1, 1) >= 1
}

/// Streams `table` as Arrow record batches.
///
/// Generates the part `options.part` of `options.part_count` at
/// `options.scale_factor`, in batches of `options.batch_size` rows (the last
/// batch may be shorter; an empty table yields no batch). Rows are produced
/// lazily: only the batch being built is held in memory, and nothing is
/// generated until the iterator is first advanced. The output is
/// deterministic and identical to `dbgen`'s for the same parameters.
///
/// The iterator does not borrow `options` (it is `'static`), so it can be
/// moved to another thread or task.
///
/// Yields nothing if the options are invalid; call [`GenOptions::validate`]
/// first to get the reason.
pub fn batches(
    table: Table,
    options: &GenOptions,
) -> impl Iterator<Item = RecordBatch> + Send + use<> {
    let batch_size = options.batch_size;
    let partition = options.partition().ok();
    let (lineitems, orders) = match (table, partition) {
        (_, None) => (None, None),
        (Table::Lineitem, Some(p)) => (Some(lineitem::LineItemBatches::new(p, batch_size)), None),
        (Table::Orders, Some(p)) => (None, Some(orders::OrderBatches::new(p, batch_size))),
    };
    lineitems
        .into_iter()
        .flatten()
        .chain(orders.into_iter().flatten())
}

/// Number of rows of the whole `table` at `scale_factor`, i.e. the rows
/// [`batches`] yields over all parts.
///
/// * `Orders`: exactly `1_500_000 × scale_factor` (truncated).
/// * `Lineitem`: exact up to 15 million orders (scale factor 10; e.g.
///   6 001 215 at scale factor 1 and 60 175 at 0.01), computed by replaying
///   the generator's line-count random stream, which takes a few
///   milliseconds per million orders. Above that it is the expected value,
///   4 line items per order, typically within 0.02 % of the real count
///   (600 000 000 vs 600 037 902 at scale factor 100).
///
/// Returns 0 for scale factors [`GenOptions::validate`] rejects.
pub fn row_count(table: Table, scale_factor: f64) -> u64 {
    if !valid_scale_factor(scale_factor) {
        return 0;
    }
    let whole = Partition {
        scale_factor,
        part: 1,
        part_count: 1,
    };
    let orders = whole.order_count();
    let orders_u64 = orders.unsigned_abs();
    match table {
        Table::Orders => orders_u64,
        Table::Lineitem if orders <= EXACT_LINEITEM_COUNT_MAX_ORDERS => {
            whole.exact_lineitem_count()
        }
        Table::Lineitem => orders_u64.saturating_mul(4),
    }
}

/// Builds a batch from columns that match `schema` by construction.
fn make_batch(schema: SchemaRef, columns: Vec<arrow::array::ArrayRef>) -> RecordBatch {
    match RecordBatch::try_new(schema, columns) {
        Ok(batch) => batch,
        // The builders in this crate emit one non-null column per schema
        // field, of the field's type and of equal lengths, so this is a bug.
        Err(e) => unreachable!("dala-datagen built a batch that does not match its schema: {e}"),
    }
}

/// A non-null `Decimal128(15, 2)` array from unscaled values (cents).
fn decimal_array(cents: Vec<i128>) -> arrow::array::ArrayRef {
    std::sync::Arc::new(arrow::array::Decimal128Array::from(cents).with_data_type(DECIMAL_TYPE))
}

/// A non-null `Utf8` array holding `values`, with exactly sized buffers.
fn string_array(values: &[&str]) -> arrow::array::StringArray {
    let bytes = values.iter().map(|v| v.len()).sum();
    let mut builder = arrow::array::StringBuilder::with_capacity(values.len(), bytes);
    for value in values {
        builder.append_value(value);
    }
    builder.finish()
}

/// Adds `year` and `month` (Int32) of `l_shipdate` to a lineitem batch: the partition
/// columns of the demo and benchmark datasets.
pub fn with_ship_year_month(batch: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::compute::kernels::temporal::{DatePart, date_part};
    let shipdate = batch.column_by_name("l_shipdate").ok_or_else(|| {
        arrow::error::ArrowError::SchemaError("the batch has no l_shipdate column".into())
    })?;
    let year = date_part(shipdate, DatePart::Year)?;
    let month = date_part(shipdate, DatePart::Month)?;
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("year", DataType::Int32, false));
    fields.push(Field::new("month", DataType::Int32, false));
    let mut columns = batch.columns().to_vec();
    columns.extend([year, month]);
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
}
