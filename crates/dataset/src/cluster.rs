//! Ordering the rows of a rewrite across all its files: by sort columns or along a
//! Z-order curve. Rows beyond the memory budget are sorted in runs that are spilled to
//! local temporary files (Arrow IPC) and merged back, k ways, as a stream.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::{
    SortOptions, cast, concat_batches, interleave_record_batch, take_record_batch,
};
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter as IpcWriter;
use arrow::row::{RowConverter, Rows, SortField};
use futures::StreamExt;

use crate::engine::receiver_stream;
use crate::error::{Error, Result};
use crate::options::SortColumn;
use crate::scalar::Scalar;
use crate::scan::RecordBatchStream;
use crate::snapshot::{FileEntry, Snapshot};

/// How a rewrite orders rows across its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clustering {
    /// By these columns, in order, each ascending or descending.
    Sort(Vec<SortColumn>),
    /// Along a Z-order curve over 2 to 4 data columns: rows close in all of them land in
    /// the same files, so that a filter on any of them prunes files.
    ZOrder(Vec<String>),
}

/// Rows per output batch of the merge.
const MERGE_BATCH_ROWS: usize = 8192;

/// What the rows are ordered by: sort columns or a Z-order key computed per batch.
#[derive(Debug, Clone)]
struct SortKey {
    columns: Vec<(String, bool)>,
    /// Per Z-order column, the smallest and largest position (see [`position`]).
    zorder: Option<Vec<(f64, f64)>>,
}

impl SortKey {
    fn new(clustering: &Clustering, snapshot: &Snapshot, files: &[FileEntry]) -> Result<Self> {
        let schema = snapshot.schema();
        let known = |name: &str, context: &str| {
            schema
                .field_with_name(name)
                .map(|_| ())
                .map_err(|_| Error::UnknownColumn {
                    column: name.to_string(),
                    context: Some(context.to_string()),
                })
        };
        match clustering {
            Clustering::Sort(columns) => {
                if columns.is_empty() {
                    return Err(Error::InvalidArgument("sort by no column".into()));
                }
                for c in columns {
                    known(&c.column, "named in sort_by")?;
                }
                Ok(SortKey {
                    columns: columns
                        .iter()
                        .map(|c| (c.column.clone(), c.descending))
                        .collect(),
                    zorder: None,
                })
            }
            Clustering::ZOrder(columns) => {
                if !(2..=4).contains(&columns.len()) {
                    return Err(Error::InvalidArgument(format!(
                        "z-order needs 2 to 4 columns, not {}",
                        columns.len()
                    )));
                }
                let data = snapshot.data_schema();
                let mut ranges = Vec::with_capacity(columns.len());
                for name in columns {
                    known(name, "named in zorder")?;
                    let index = data.index_of(name).map_err(|_| {
                        Error::InvalidArgument(format!(
                            "z-order column {name} is a partition column: it is constant in \
                             each partition"
                        ))
                    })?;
                    ranges.push(range_of(name, index, files)?);
                }
                Ok(SortKey {
                    columns: columns.iter().map(|c| (c.clone(), false)).collect(),
                    zorder: Some(ranges),
                })
            }
        }
    }

    /// The key columns of `batch`.
    fn key_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let columns = self
            .columns
            .iter()
            .map(|(name, _)| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| Error::UnknownColumn {
                        column: name.clone(),
                        context: Some("missing from a batch being ordered".into()),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        match &self.zorder {
            None => Ok(columns),
            Some(ranges) => z_values(&columns, ranges),
        }
    }

    fn converter(&self, schema: &SchemaRef) -> Result<RowConverter> {
        let fields = match &self.zorder {
            Some(_) => vec![
                SortField::new(DataType::UInt64),
                SortField::new(DataType::UInt64),
            ],
            None => self
                .columns
                .iter()
                .map(|(name, descending)| {
                    let field = schema.field_with_name(name)?;
                    Ok(SortField::new_with_options(
                        field.data_type().clone(),
                        SortOptions {
                            descending: *descending,
                            nulls_first: !*descending,
                        },
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(RowConverter::new(fields)?)
    }

    fn rows(&self, converter: &RowConverter, batch: &RecordBatch) -> Result<Rows> {
        Ok(converter.convert_columns(&self.key_columns(batch)?)?)
    }
}

/// The smallest and largest position of data column `index` over `files`, from the index.
fn range_of(name: &str, index: usize, files: &[FileEntry]) -> Result<(f64, f64)> {
    let mut range: Option<(f64, f64)> = None;
    for file in files {
        let stats = file.stats.get(index).and_then(Option::as_ref);
        let bounds = stats.and_then(|s| {
            let lo = position(s.min.as_ref()?)?;
            let hi = position(s.max.as_ref()?)?;
            Some((lo, hi))
        });
        match (bounds, stats.and_then(|s| s.null_count)) {
            (Some((lo, hi)), _) => {
                range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
            // A file whose column is all null has no bounds, and needs none.
            (None, Some(nulls)) if nulls >= file.rows => {}
            (None, _) => {
                return Err(Error::InvalidArgument(format!(
                    "z-order by {name} needs its min and max in the file index, which {} lacks",
                    file.path
                )));
            }
        }
    }
    Ok(range.unwrap_or((0.0, 0.0)))
}

/// Where a value lies on its column's axis, as a number that grows with the value (strings
/// and bytes by their first eight bytes).
fn position(value: &Scalar) -> Option<f64> {
    match value {
        Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) | Scalar::Decimal { .. } => {
            value.as_f64()
        }
        Scalar::Date(d) => Some(f64::from(*d)),
        Scalar::Timestamp { value, .. } => Some(*value as f64),
        Scalar::Utf8(s) => Some(prefix(s.as_bytes())),
        Scalar::Binary(b) => Some(prefix(b)),
        Scalar::Boolean(b) => Some(f64::from(u8::from(*b))),
        Scalar::Null => None,
    }
}

fn prefix(bytes: &[u8]) -> f64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(word) as f64
}

/// The positions of `array`'s values (nulls at 0), as in [`position`].
fn positions(array: &ArrayRef) -> Result<Vec<f64>> {
    let numeric = |a: &ArrayRef| -> Result<Vec<f64>> {
        let floats = cast(a, &DataType::Float64)?;
        let floats = floats.as_primitive::<Float64Type>();
        Ok((0..floats.len())
            .map(|i| {
                if floats.is_null(i) {
                    0.0
                } else {
                    floats.value(i)
                }
            })
            .collect())
    };
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = cast(array, &DataType::Utf8)?;
            Ok(strings
                .as_string::<i32>()
                .iter()
                .map(|s| s.map_or(0.0, |s| prefix(s.as_bytes())))
                .collect())
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let bytes = cast(array, &DataType::Binary)?;
            Ok(bytes
                .as_binary::<i32>()
                .iter()
                .map(|b| b.map_or(0.0, prefix))
                .collect())
        }
        DataType::Date32 => numeric(&cast(array, &DataType::Int32)?),
        DataType::Date64 | DataType::Timestamp(..) => numeric(&cast(array, &DataType::Int64)?),
        DataType::Boolean => numeric(&cast(array, &DataType::UInt8)?),
        _ => numeric(array),
    }
}

/// The Z-order key of each row: every column scaled to 32 bits over its range and their
/// bits interleaved, most significant first, as two 64-bit halves.
fn z_values(columns: &[ArrayRef], ranges: &[(f64, f64)]) -> Result<Vec<ArrayRef>> {
    let rows = columns.first().map_or(0, |c| c.len());
    let scaled: Vec<Vec<u32>> = columns
        .iter()
        .zip(ranges)
        .map(|(column, (lo, hi))| {
            let width = hi - lo;
            Ok(positions(column)?
                .into_iter()
                .map(|p| {
                    if width <= 0.0 || !p.is_finite() {
                        0
                    } else {
                        (((p - lo) / width).clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32
                    }
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let mut high = Vec::with_capacity(rows);
    let mut low = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut z: u128 = 0;
        for bit in (0..32).rev() {
            for column in &scaled {
                z = (z << 1) | u128::from((column[row] >> bit) & 1);
            }
        }
        // Left-align, so that fewer columns still fill the high half first.
        z <<= 128 - 32 * scaled.len();
        high.push((z >> 64) as u64);
        low.push(z as u64);
    }
    Ok(vec![
        Arc::new(UInt64Array::from(high)),
        Arc::new(UInt64Array::from(low)),
    ])
}

/// `batches` (one run) in key order, as one batch.
fn sort_run(
    key: &SortKey,
    converter: &RowConverter,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<RecordBatch> {
    let run = concat_batches(schema, batches)?;
    let rows = key.rows(converter, &run)?;
    let mut order: Vec<u32> = (0..run.num_rows() as u32).collect();
    order.sort_by(|a, b| rows.row(*a as usize).cmp(&rows.row(*b as usize)));
    Ok(take_record_batch(&run, &UInt32Array::from(order))?)
}

/// `stream`'s rows in the order `clustering` gives, using about `budget` bytes of memory
/// for rows waiting to be sorted: when more arrive, sorted runs are spilled to local
/// temporary files and merged. The order is stable for equal keys only within a run.
pub(crate) fn cluster_stream(
    mut stream: RecordBatchStream,
    clustering: &Clustering,
    snapshot: &Snapshot,
    files: &[FileEntry],
    budget: usize,
) -> Result<RecordBatchStream> {
    let key = SortKey::new(clustering, snapshot, files)?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    tokio::spawn(async move {
        let mut spill = Spill::default();
        let mut waiting: Vec<RecordBatch> = Vec::new();
        let mut waiting_bytes = 0usize;
        let mut schema: Option<SchemaRef> = None;
        let mut failed = None;
        while let Some(batch) = stream.next().await {
            if sender.is_closed() {
                return; // the reader of the sorted rows stopped: stop reading too
            }
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            schema.get_or_insert_with(|| batch.schema());
            waiting_bytes += batch.get_array_memory_size();
            waiting.push(batch);
            if waiting_bytes >= budget.max(1) {
                let run = std::mem::take(&mut waiting);
                waiting_bytes = 0;
                let (key, schema) = (key.clone(), schema.clone());
                let spilled = tokio::task::spawn_blocking(move || {
                    let schema = schema.ok_or_else(|| Error::InvalidArgument("no rows".into()))?;
                    let converter = key.converter(&schema)?;
                    let sorted = sort_run(&key, &converter, &schema, &run)?;
                    write_run(&sorted)
                })
                .await;
                match spilled {
                    Ok(Ok(run)) => spill.runs.push(run),
                    Ok(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Err(e) => {
                        failed = Some(Error::InvalidArgument(format!("sorting failed: {e}")));
                        break;
                    }
                }
            }
        }
        if let Some(e) = failed {
            let _ = sender.send(Err(e)).await;
            return;
        }
        let Some(schema) = schema else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || {
            let result = merge(&key, &schema, spill, waiting, &sender);
            if let Err(e) = result {
                let _ = sender.blocking_send(Err(e));
            }
        })
        .await;
    });
    Ok(receiver_stream(receiver))
}

/// Sorted runs spilled to temporary files, deleted when dropped.
#[derive(Default)]
struct Spill {
    runs: Vec<tempfile::NamedTempFile>,
}

fn write_run(batch: &RecordBatch) -> Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix("dala-sort-")
        .suffix(".arrow")
        .tempfile()?;
    let mut writer = IpcWriter::try_new(BufWriter::new(file.reopen()?), &batch.schema())?;
    for start in (0..batch.num_rows()).step_by(MERGE_BATCH_ROWS) {
        let rows = MERGE_BATCH_ROWS.min(batch.num_rows() - start);
        writer.write(&batch.slice(start, rows))?;
    }
    writer.finish()?;
    Ok(file)
}

/// One sorted run being merged: its current batch, the batch's keys and the next row.
struct Cursor {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    batch: RecordBatch,
    rows: Rows,
    next: usize,
}

impl Cursor {
    fn new(
        mut batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
        key: &SortKey,
        converter: &RowConverter,
    ) -> Result<Option<Self>> {
        for batch in batches.by_ref() {
            let batch = batch?;
            if batch.num_rows() > 0 {
                let rows = key.rows(converter, &batch)?;
                return Ok(Some(Cursor {
                    batches,
                    batch,
                    rows,
                    next: 0,
                }));
            }
        }
        Ok(None)
    }
}

/// Merges the spilled runs and the rows still waiting, sending batches in key order.
fn merge(
    key: &SortKey,
    schema: &SchemaRef,
    spill: Spill,
    waiting: Vec<RecordBatch>,
    sender: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let converter = key.converter(schema)?;
    let mut sources: Vec<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> = Vec::new();
    for run in &spill.runs {
        let reader = FileReader::try_new(File::open(run.path())?, None)?;
        sources.push(Box::new(reader.map(|b| b.map_err(Error::from))));
    }
    if !waiting.is_empty() {
        let sorted = sort_run(key, &converter, schema, &waiting)?;
        let slices: Vec<Result<RecordBatch>> = (0..sorted.num_rows())
            .step_by(MERGE_BATCH_ROWS)
            .map(|start| Ok(sorted.slice(start, MERGE_BATCH_ROWS.min(sorted.num_rows() - start))))
            .collect();
        sources.push(Box::new(slices.into_iter()));
    }
    let mut cursors: Vec<Cursor> = Vec::new();
    for source in sources {
        if let Some(cursor) = Cursor::new(source, key, &converter)? {
            cursors.push(cursor);
        }
    }
    let mut picked: Vec<(usize, usize)> = Vec::with_capacity(MERGE_BATCH_ROWS);
    while !cursors.is_empty() {
        // The cursor with the smallest next row (few runs: a linear scan is enough).
        let mut best = 0;
        for i in 1..cursors.len() {
            let (a, b) = (&cursors[i], &cursors[best]);
            if a.rows.row(a.next) < b.rows.row(b.next) {
                best = i;
            }
        }
        picked.push((best, cursors[best].next));
        cursors[best].next += 1;
        let exhausted = cursors[best].next == cursors[best].batch.num_rows();
        if picked.len() == MERGE_BATCH_ROWS || exhausted {
            emit(&cursors, &mut picked, sender)?;
        }
        if exhausted {
            let cursor = cursors.swap_remove(best);
            if let Some(next) = Cursor::new(cursor.batches, key, &converter)? {
                cursors.push(next);
            }
        }
    }
    emit(&cursors, &mut picked, sender)
}

/// Sends the picked rows as one batch.
fn emit(
    cursors: &[Cursor],
    picked: &mut Vec<(usize, usize)>,
    sender: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    if picked.is_empty() {
        return Ok(());
    }
    let batches: Vec<&RecordBatch> = cursors.iter().map(|c| &c.batch).collect();
    let batch = interleave_record_batch(&batches, picked)?;
    picked.clear();
    sender
        .blocking_send(Ok(batch))
        .map_err(|_| Error::InvalidArgument("the sorted rows' reader went away".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Int64Type, Schema};

    fn stream_of(values: &[Vec<i64>]) -> (RecordBatchStream, SchemaRef) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let batches: Vec<Result<RecordBatch>> = values
            .iter()
            .map(|v| {
                let column: ArrayRef = Arc::new(arrow::array::Int64Array::from(v.clone()));
                Ok(RecordBatch::try_new(schema.clone(), vec![column])?)
            })
            .collect();
        (futures::stream::iter(batches).boxed(), schema)
    }

    async fn ordered(values: &[Vec<i64>], descending: bool, budget: usize) -> Vec<i64> {
        let (stream, schema) = stream_of(values);
        let snapshot = Snapshot::empty(schema, Vec::new());
        let clustering = Clustering::Sort(vec![SortColumn {
            column: "v".into(),
            descending,
        }]);
        let mut out = cluster_stream(stream, &clustering, &snapshot, &[], budget).unwrap();
        let mut seen = Vec::new();
        while let Some(batch) = out.next().await {
            let batch = batch.unwrap();
            seen.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
        }
        seen
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn runs_spilled_one_per_batch_merge_into_one_order() {
        let values: Vec<Vec<i64>> = (0..7)
            .map(|b| {
                (0..3000)
                    .map(|i| (i * 7919 + b * 104_729) % 20_000)
                    .collect()
            })
            .collect();
        let mut expected: Vec<i64> = values.iter().flatten().copied().collect();
        expected.sort_unstable();
        // A budget of one byte spills every batch as its own run.
        assert_eq!(ordered(&values, false, 1).await, expected);
        assert_eq!(ordered(&values, false, usize::MAX).await, expected);
        expected.reverse();
        assert_eq!(ordered(&values, true, 1).await, expected);
        assert!(ordered(&[], false, 1).await.is_empty());
    }

    #[test]
    fn z_values_interleave_the_scaled_bits_of_each_column() {
        let x: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![0, 10, 0, 10]));
        let y: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![0, 0, 10, 10]));
        let z = z_values(&[x, y], &[(0.0, 10.0), (0.0, 10.0)]).unwrap();
        let high = z[0].as_primitive::<arrow::datatypes::UInt64Type>().values();
        // (0,0) first, (10,10) last; x's bit leads y's at every level.
        assert_eq!(high[0], 0);
        assert!(high[1] > high[2], "x is the more significant of each pair");
        assert_eq!(high[3], u64::MAX);
    }
}
