//! `LINEITEM` rows from `tpchgen` into Arrow batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int32Array, Int64Array, StringBuilder};
use arrow::record_batch::RecordBatch;
use tpchgen::generators::{LineItem, LineItemGenerator, LineItemGeneratorIterator, OrderGenerator};

use crate::{Partition, Table, decimal_array, make_batch, schema, string_array};

/// Streams one partition of `LINEITEM` as record batches.
pub(crate) struct LineItemBatches {
    partition: Partition,
    batch_size: usize,
    /// The row generator, created on first use (it touches the text pool).
    rows: Option<LineItemGeneratorIterator<'static>>,
    /// Upper bound on the rows still to come (at most 7 line items per order),
    /// used to avoid over-allocating the last batches.
    max_remaining: u64,
    done: bool,
}

impl LineItemBatches {
    pub(crate) fn new(partition: Partition, batch_size: usize) -> Self {
        let max_lines = OrderGenerator::LINE_COUNT_MAX.unsigned_abs();
        Self {
            partition,
            batch_size,
            rows: None,
            max_remaining: partition
                .order_count()
                .unsigned_abs()
                .saturating_mul(u64::from(max_lines)),
            done: false,
        }
    }
}

impl Iterator for LineItemBatches {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        if self.done {
            return None;
        }
        let Partition {
            scale_factor,
            part,
            part_count,
        } = self.partition;
        let rows = self
            .rows
            .get_or_insert_with(|| LineItemGenerator::new(scale_factor, part, part_count).iter());

        let capacity = usize::try_from(self.max_remaining)
            .unwrap_or(usize::MAX)
            .min(self.batch_size);
        let mut columns = Columns::with_capacity(capacity);
        for row in rows.by_ref().take(self.batch_size) {
            columns.push(&row);
        }

        let len = columns.len();
        self.max_remaining = self.max_remaining.saturating_sub(len as u64);
        if len < self.batch_size || self.max_remaining == 0 {
            // The generator is exhausted: release it now.
            self.done = true;
            self.rows = None;
        }
        (len > 0).then(|| columns.finish())
    }
}

/// Column buffers for one `LINEITEM` batch.
struct Columns {
    orderkey: Vec<i64>,
    partkey: Vec<i64>,
    suppkey: Vec<i64>,
    linenumber: Vec<i32>,
    quantity: Vec<i128>,
    extendedprice: Vec<i128>,
    discount: Vec<i128>,
    tax: Vec<i128>,
    returnflag: StringBuilder,
    linestatus: StringBuilder,
    shipdate: Vec<i32>,
    commitdate: Vec<i32>,
    receiptdate: Vec<i32>,
    shipinstruct: StringBuilder,
    shipmode: StringBuilder,
    /// Comments point into tpchgen's 300 MB text pool at random offsets, so
    /// each one is a cache (and TLB) miss. They are copied in one tight loop
    /// at [`Columns::finish`], where the CPU overlaps many misses, instead of
    /// one at a time between generator calls (which was ~2x slower overall).
    comment: Vec<&'static str>,
}

impl Columns {
    fn with_capacity(rows: usize) -> Self {
        // Byte capacities are the average value lengths (rounded up):
        // instructions are 4..=17 bytes, modes 3..=7.
        let strings =
            |avg_len: usize| StringBuilder::with_capacity(rows, rows.saturating_mul(avg_len));
        Self {
            orderkey: Vec::with_capacity(rows),
            partkey: Vec::with_capacity(rows),
            suppkey: Vec::with_capacity(rows),
            linenumber: Vec::with_capacity(rows),
            quantity: Vec::with_capacity(rows),
            extendedprice: Vec::with_capacity(rows),
            discount: Vec::with_capacity(rows),
            tax: Vec::with_capacity(rows),
            returnflag: strings(1),
            linestatus: strings(1),
            shipdate: Vec::with_capacity(rows),
            commitdate: Vec::with_capacity(rows),
            receiptdate: Vec::with_capacity(rows),
            shipinstruct: strings(13),
            shipmode: strings(6),
            comment: Vec::with_capacity(rows),
        }
    }

    fn len(&self) -> usize {
        self.orderkey.len()
    }

    #[inline]
    fn push(&mut self, row: &LineItem<'static>) {
        self.orderkey.push(row.l_orderkey);
        self.partkey.push(row.l_partkey);
        self.suppkey.push(row.l_suppkey);
        self.linenumber.push(row.l_linenumber);
        // `l_quantity` is a whole number of units; the column is DECIMAL(15, 2).
        self.quantity.push(i128::from(row.l_quantity) * 100);
        self.extendedprice
            .push(i128::from(row.l_extendedprice.into_inner()));
        self.discount.push(i128::from(row.l_discount.into_inner()));
        self.tax.push(i128::from(row.l_tax.into_inner()));
        self.returnflag.append_value(row.l_returnflag);
        self.linestatus.append_value(row.l_linestatus);
        self.shipdate.push(row.l_shipdate.to_unix_epoch());
        self.commitdate.push(row.l_commitdate.to_unix_epoch());
        self.receiptdate.push(row.l_receiptdate.to_unix_epoch());
        self.shipinstruct.append_value(row.l_shipinstruct);
        self.shipmode.append_value(row.l_shipmode);
        self.comment.push(row.l_comment);
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.orderkey)),
            Arc::new(Int64Array::from(self.partkey)),
            Arc::new(Int64Array::from(self.suppkey)),
            Arc::new(Int32Array::from(self.linenumber)),
            decimal_array(self.quantity),
            decimal_array(self.extendedprice),
            decimal_array(self.discount),
            decimal_array(self.tax),
            Arc::new(self.returnflag.finish()),
            Arc::new(self.linestatus.finish()),
            Arc::new(Date32Array::from(self.shipdate)),
            Arc::new(Date32Array::from(self.commitdate)),
            Arc::new(Date32Array::from(self.receiptdate)),
            Arc::new(self.shipinstruct.finish()),
            Arc::new(self.shipmode.finish()),
            Arc::new(string_array(&self.comment)),
        ];
        make_batch(schema(Table::Lineitem), columns)
    }
}
