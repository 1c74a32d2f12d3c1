//! `ORDERS` rows from `tpchgen` into Arrow batches.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int32Array, Int64Array, StringBuilder};
use arrow::record_batch::RecordBatch;
use tpchgen::generators::{Order, OrderGenerator, OrderGeneratorIterator};

use crate::{Partition, Table, decimal_array, make_batch, schema, string_array};

/// Streams one partition of `ORDERS` as record batches.
pub(crate) struct OrderBatches {
    partition: Partition,
    batch_size: usize,
    /// The row generator, created on first use (it touches the text pool).
    rows: Option<OrderGeneratorIterator<'static>>,
    /// Rows still to come.
    remaining: u64,
    done: bool,
}

impl OrderBatches {
    pub(crate) fn new(partition: Partition, batch_size: usize) -> Self {
        Self {
            partition,
            batch_size,
            rows: None,
            remaining: partition.order_count().unsigned_abs(),
            done: false,
        }
    }
}

impl Iterator for OrderBatches {
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
            .get_or_insert_with(|| OrderGenerator::new(scale_factor, part, part_count).iter());

        let capacity = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.batch_size);
        let mut columns = Columns::with_capacity(capacity);
        for row in rows.by_ref().take(self.batch_size) {
            columns.push(&row);
        }

        let len = columns.len();
        self.remaining = self.remaining.saturating_sub(len as u64);
        if len < self.batch_size || self.remaining == 0 {
            // The generator is exhausted: release it now.
            self.done = true;
            self.rows = None;
        }
        (len > 0).then(|| columns.finish())
    }
}

/// Column buffers for one `ORDERS` batch.
struct Columns {
    orderkey: Vec<i64>,
    custkey: Vec<i64>,
    orderstatus: StringBuilder,
    totalprice: Vec<i128>,
    orderdate: Vec<i32>,
    orderpriority: StringBuilder,
    clerk: StringBuilder,
    shippriority: Vec<i32>,
    /// Deferred like `LINEITEM` comments: they are random reads from the
    /// 300 MB text pool, copied in one loop at [`Columns::finish`].
    comment: Vec<&'static str>,
}

impl Columns {
    fn with_capacity(rows: usize) -> Self {
        // Byte capacities: priorities are 5..=15 bytes ("1-URGENT",
        // "4-NOT SPECIFIED"), clerks are exactly 15 ("Clerk#000000951").
        let strings =
            |avg_len: usize| StringBuilder::with_capacity(rows, rows.saturating_mul(avg_len));
        Self {
            orderkey: Vec::with_capacity(rows),
            custkey: Vec::with_capacity(rows),
            orderstatus: strings(1),
            totalprice: Vec::with_capacity(rows),
            orderdate: Vec::with_capacity(rows),
            orderpriority: strings(9),
            clerk: strings(15),
            shippriority: Vec::with_capacity(rows),
            comment: Vec::with_capacity(rows),
        }
    }

    fn len(&self) -> usize {
        self.orderkey.len()
    }

    #[inline]
    fn push(&mut self, row: &Order<'static>) {
        self.orderkey.push(row.o_orderkey);
        self.custkey.push(row.o_custkey);
        self.orderstatus.append_value(row.o_orderstatus.as_str());
        self.totalprice
            .push(i128::from(row.o_totalprice.into_inner()));
        self.orderdate.push(row.o_orderdate.to_unix_epoch());
        self.orderpriority.append_value(row.o_orderpriority);
        // `ClerkName` only exposes `Display`: format it straight into the
        // builder's value buffer (no temporary String), then close the value.
        // Writing into a `StringBuilder` cannot fail.
        let _ = write!(self.clerk, "{}", row.o_clerk);
        self.clerk.append_value("");
        self.shippriority.push(row.o_shippriority);
        self.comment.push(row.o_comment);
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.orderkey)),
            Arc::new(Int64Array::from(self.custkey)),
            Arc::new(self.orderstatus.finish()),
            decimal_array(self.totalprice),
            Arc::new(Date32Array::from(self.orderdate)),
            Arc::new(self.orderpriority.finish()),
            Arc::new(self.clerk.finish()),
            Arc::new(Int32Array::from(self.shippriority)),
            Arc::new(string_array(&self.comment)),
        ];
        make_batch(schema(Table::Orders), columns)
    }
}
