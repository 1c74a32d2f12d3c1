//! Merges and deletes. `insert`, `update` and `upsert` match input rows to dataset rows by
//! key; `delete` removes the rows a filter matches. Each rewrites only the files that hold
//! affected rows, and commits once.
//!
//! A merge works in three steps, over as few files as the index allows:
//! 1. Candidates: the files whose partition values and key statistics may hold one of the
//!    input's keys ([`KeyProbe`]). No other file is opened.
//! 2. Matching: the candidates' key columns are read and matched against the input.
//! 3. Rewriting (`update`, `upsert`): files with a matched row that changes are read in
//!    full, their changed rows compared, and written again without the rows replaced; then
//!    the input rows that are new or changed are written.
//!
//! The input of a merge is held in memory, deduplicated by key (the last row wins); the
//! dataset's files are streamed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch, UInt32Array};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};
use futures::{StreamExt, TryStreamExt, stream};

use crate::conform::conform;
use crate::error::{Error, Result};
use crate::filter::{Expr, StatsSource};
use crate::log::LogStore;
use crate::scalar::Scalar;
use crate::scan::ScanBuilder;
use crate::snapshot::{FileEntry, Snapshot};
use crate::write::FileWriter;

/// Candidate files read at once while matching keys.
const MATCH_CONCURRENCY: usize = 8;
/// Matched files compared at once; each may be kept in memory while it is (see
/// [`READ_ONCE_FILE_BYTES`]).
const COMPARE_CONCURRENCY: usize = 4;

/// What a merge or delete removed and counted; the files it wrote are the writer's.
#[derive(Debug, Default)]
pub(crate) struct Rewrite {
    /// Files replaced or dropped.
    pub remove: Vec<FileEntry>,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    pub rows_deleted: u64,
    pub rows_unchanged: u64,
}

/// Which files may hold one of a set of keys, judged by partition values and statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyProbe {
    columns: Vec<ProbeColumn>,
}

#[derive(Debug, Clone, PartialEq)]
struct ProbeColumn {
    name: String,
    /// Distinct non-null values, sorted.
    values: Vec<Scalar>,
    has_null: bool,
}

impl KeyProbe {
    /// The probe for the keys in `key` columns of `rows`.
    pub fn new(key: &[String], rows: &RecordBatch) -> Result<Self> {
        let mut columns = Vec::with_capacity(key.len());
        for name in key {
            let array = rows
                .column_by_name(name)
                .ok_or_else(|| Error::UnknownColumn {
                    column: name.clone(),
                    context: Some("key column missing from the input".into()),
                })?;
            let mut values = Vec::with_capacity(array.len());
            for i in 0..array.len() {
                if array.is_valid(i) {
                    values.push(Scalar::from_array(array.as_ref(), i)?);
                }
            }
            values.sort_by(|a, b| a.compare(b).unwrap_or(std::cmp::Ordering::Equal));
            values.dedup();
            columns.push(ProbeColumn {
                name: name.clone(),
                has_null: array.null_count() > 0,
                values,
            });
        }
        Ok(KeyProbe { columns })
    }

    /// The key columns.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// Whether a file (or a partition) described by `stats` may hold one of the keys.
    /// Each key column is judged on its own, so this can say yes for a file that holds
    /// none; it never says no for a file that holds one.
    pub fn may_hold(&self, stats: &dyn StatsSource) -> bool {
        self.columns.iter().all(|c| c.may_hold(stats))
    }
}

impl ProbeColumn {
    fn may_hold(&self, stats: &dyn StatsSource) -> bool {
        let nulls = stats.null_count(&self.name);
        if self.has_null && nulls != Some(0) {
            return true;
        }
        if nulls.is_some() && nulls == stats.row_count() {
            return false; // every value is null, and no key is
        }
        // Parquet's statistics leave NaN out of a float column's bounds, so a NaN key (the
        // greatest value, last) may be in any file.
        if (self.values.last()).is_some_and(|v| matches!(v, Scalar::Float(f) if f.is_nan())) {
            return true;
        }
        let (min, max) = (stats.min(&self.name), stats.max(&self.name));
        let first = match &min {
            Some(min) => self
                .values
                .partition_point(|v| v.compare(min) == Some(std::cmp::Ordering::Less)),
            None => 0,
        };
        match (self.values.get(first), &max) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(max)) => v.compare(max) != Some(std::cmp::Ordering::Greater),
        }
    }
}

/// The key columns of a merge: the ones asked for, or for `insert` without any, every
/// column of the dataset (the whole row).
pub(crate) fn resolve_key(
    key: &[String],
    schema: &SchemaRef,
    input: &SchemaRef,
) -> Result<Vec<String>> {
    let key: Vec<String> = if key.is_empty() {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        key.to_vec()
    };
    for name in &key {
        if schema.field_with_name(name).is_err() {
            return Err(Error::UnknownColumn {
                column: name.clone(),
                context: Some("key column missing from the dataset".into()),
            });
        }
        if input.field_with_name(name).is_err() {
            return Err(Error::UnknownColumn {
                column: name.clone(),
                context: Some("key column missing from the input".into()),
            });
        }
    }
    Ok(key)
}

/// Rows of `key` columns as comparable bytes (nulls equal to nulls).
fn key_rows(converter: &RowConverter, batch: &RecordBatch, key: &[String]) -> Result<Rows> {
    let columns = key
        .iter()
        .map(|k| {
            batch
                .column_by_name(k)
                .cloned()
                .ok_or_else(|| Error::UnknownColumn {
                    column: k.clone(),
                    context: Some("key column".into()),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(converter.convert_columns(&columns)?)
}

fn converter_for(schema: &SchemaRef, columns: &[String]) -> Result<RowConverter> {
    let fields = columns
        .iter()
        .map(|c| {
            let field = schema
                .field_with_name(c)
                .map_err(|_| Error::UnknownColumn {
                    column: c.clone(),
                    context: None,
                })?;
            Ok(SortField::new(field.data_type().clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RowConverter::new(fields)?)
}

/// Keeps the last row of each key, in input order.
pub(crate) fn dedup_last(batch: &RecordBatch, key: &[String]) -> Result<RecordBatch> {
    let converter = converter_for(&batch.schema(), key)?;
    let rows = key_rows(&converter, batch, key)?;
    let mut last: HashMap<&[u8], u32> = HashMap::with_capacity(batch.num_rows());
    for (i, row) in rows.iter().enumerate() {
        last.insert(row.data(), i as u32);
    }
    if last.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    let mut keep: Vec<u32> = last.into_values().collect();
    keep.sort_unstable();
    Ok(take_record_batch(batch, &UInt32Array::from(keep))?)
}

/// The input of a merge: every batch conformed to `schema` (see [`conform`]), as one
/// batch, deduplicated by `key`.
pub(crate) fn prepare_input(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    partitions: &[String],
    key: &[String],
    missing_as_null: bool,
) -> Result<RecordBatch> {
    let conformed = batches
        .iter()
        .map(|b| conform(b, schema, partitions, missing_as_null))
        .collect::<Result<Vec<_>>>()?;
    let input = concat_batches(schema, &conformed)?;
    for name in key {
        let nullable = schema
            .field_with_name(name)
            .map(|f| f.is_nullable())
            .unwrap_or(true);
        let nulls = input.column_by_name(name).map_or(0, |c| c.null_count());
        if !nullable && nulls > 0 {
            return Err(Error::InvalidArgument(format!(
                "key column `{name}` is not nullable but the input has {nulls} nulls in it"
            )));
        }
    }
    dedup_last(&input, key)
}

/// Drops rows equal, on some columns, to a row seen before in the same write.
pub(crate) struct Unique {
    columns: Vec<String>,
    converter: Option<RowConverter>,
    seen: std::collections::HashSet<Box<[u8]>>,
}

impl Unique {
    /// Compares rows on `columns` (all columns when empty).
    pub fn new(columns: Vec<String>) -> Self {
        Unique {
            columns,
            converter: None,
            seen: std::collections::HashSet::new(),
        }
    }

    /// The rows of `batch` not seen before.
    pub fn filter(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.columns.is_empty() {
            self.columns = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
        }
        let converter = match &self.converter {
            Some(c) => c,
            None => self
                .converter
                .insert(converter_for(&batch.schema(), &self.columns)?),
        };
        let rows = key_rows(converter, batch, &self.columns)?;
        let keep: BooleanArray = rows
            .iter()
            .map(|row| Some(self.seen.insert(row.data().into())))
            .collect();
        if keep.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        Ok(filter_record_batch(batch, &keep)?)
    }
}

/// Finds the rows of dataset batches whose key is one of the input's.
struct Matcher<'a> {
    key: &'a [String],
    converter: &'a RowConverter,
    /// Input rows by their encoded key.
    index: &'a HashMap<&'a [u8], u32>,
    prefilter: Option<IntegerKeys>,
}

impl Matcher<'_> {
    /// Appends `(offset + row, input row)` for each row of `batch` whose key matches.
    fn matches(&self, batch: &RecordBatch, offset: u32, found: &mut Vec<(u32, u32)>) -> Result<()> {
        // Rows whose first key column can match, when that is cheap to tell.
        match self.prefilter.as_ref().and_then(|p| p.rows(batch)) {
            Some(rows) if rows.is_empty() => {}
            Some(rows) => {
                let indices = UInt32Array::from(rows);
                let some = take_record_batch(batch, &indices)?;
                let keys = key_rows(self.converter, &some, self.key)?;
                for (row, i) in keys.iter().zip(indices.values()) {
                    if let Some(&source) = self.index.get(row.data()) {
                        found.push((offset + i, source));
                    }
                }
            }
            None => {
                let keys = key_rows(self.converter, batch, self.key)?;
                for (i, row) in keys.iter().enumerate() {
                    if let Some(&source) = self.index.get(row.data()) {
                        found.push((offset + i as u32, source));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A matched dataset row: its row in the batch, whether it equals its input row, and that
/// input row.
type RowMatch = (u32, bool, u32);

/// Compares matched dataset rows with their input rows, in full.
struct RowComparer {
    converter: RowConverter,
    /// The input rows, encoded.
    input: Rows,
    /// Every column, in the dataset's order.
    columns: Vec<String>,
}

impl RowComparer {
    /// Which rows of `batch` a rewrite keeps: all but the matched rows that differ from
    /// their input row; with what [`RowComparer::compare`] found.
    fn keep(
        &self,
        matcher: &Matcher<'_>,
        batch: &RecordBatch,
    ) -> Result<(Vec<bool>, Vec<RowMatch>)> {
        let found = self.compare(matcher, batch)?;
        let mut keep = vec![true; batch.num_rows()];
        for &(row, same, _) in &found {
            keep[row as usize] = same;
        }
        Ok((keep, found))
    }

    /// For each row of `batch` whose key matches: its row, whether it equals its input
    /// row, and that input row.
    fn compare(&self, matcher: &Matcher<'_>, batch: &RecordBatch) -> Result<Vec<RowMatch>> {
        let mut found = Vec::new();
        matcher.matches(batch, 0, &mut found)?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let rows = UInt32Array::from_iter_values(found.iter().map(|f| f.0));
        let some = take_record_batch(batch, &rows)?;
        let columns: Vec<_> = self
            .columns
            .iter()
            .filter_map(|c| some.column_by_name(c).cloned())
            .collect();
        let encoded = self.converter.convert_columns(&columns)?;
        Ok(found
            .iter()
            .enumerate()
            .map(|(j, &(row, source))| {
                (
                    row,
                    encoded.row(j) == self.input.row(source as usize),
                    source,
                )
            })
            .collect())
    }
}

/// Bits of [`IntegerKeys`]' bucket hash: 2^16 buckets, 8 KiB.
const BUCKET_BITS: u32 = 16;

/// The values of an integer key column, to find the few rows of a batch that can match
/// before their keys are encoded.
struct IntegerKeys {
    column: String,
    values: HashSet<i64, foldhash::fast::RandomState>,
    /// One bit per hash bucket of the values ([`IntegerKeys::bucket`]): most values that
    /// are not keys are told apart by one bit, before the set is asked.
    buckets: Vec<u64>,
    /// The smallest and largest value (none when every key is null).
    range: Option<(i64, i64)>,
    nulls: bool,
}

impl IntegerKeys {
    /// For `column` of `input`, if it is a signed integer column.
    fn new(input: &RecordBatch, column: &str) -> Option<Self> {
        let array = input.column_by_name(column)?;
        let array = integers(array)?;
        let values: HashSet<i64, _> = array.iter().flatten().collect();
        let range = values
            .iter()
            .min()
            .copied()
            .zip(values.iter().max().copied());
        let mut buckets = vec![0u64; 1 << (BUCKET_BITS - 6)];
        for &v in &values {
            let b = Self::bucket(v);
            buckets[b >> 6] |= 1 << (b & 63);
        }
        Some(IntegerKeys {
            column: column.to_string(),
            values,
            buckets,
            range,
            nulls: array.null_count() > 0,
        })
    }

    /// The bucket of a value: the top [`BUCKET_BITS`] bits of a multiplicative hash.
    fn bucket(v: i64) -> usize {
        ((v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BUCKET_BITS)) as usize
    }

    /// The rows of `batch` whose value is one of the keys' (None: not an integer column).
    fn rows(&self, batch: &RecordBatch) -> Option<Vec<u32>> {
        let array = integers(batch.column_by_name(&self.column)?)?;
        let (lo, hi) = self.range.unwrap_or((1, 0));
        let key = |v: i64| {
            let b = Self::bucket(v);
            v >= lo
                && v <= hi
                && self.buckets[b >> 6] & (1 << (b & 63)) != 0
                && self.values.contains(&v)
        };
        let values = array.values().iter();
        let rows = match array.nulls().filter(|n| n.null_count() > 0) {
            None => values
                .enumerate()
                .filter(|&(_, &v)| key(v))
                .map(|(i, _)| i as u32)
                .collect(),
            Some(valid) => values
                .zip(valid.iter())
                .enumerate()
                .filter(|&(_, (&v, valid))| if valid { key(v) } else { self.nulls })
                .map(|(i, _)| i as u32)
                .collect(),
        };
        Some(rows)
    }
}

/// A signed integer array as `Int64`.
fn integers(array: &arrow::array::ArrayRef) -> Option<arrow::array::Int64Array> {
    use arrow::datatypes::DataType;
    match array.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            arrow::compute::cast(array, &DataType::Int64)
                .ok()?
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .cloned()
        }
        _ => None,
    }
}

/// One matched file, compared with the input.
struct Compared {
    file: FileEntry,
    /// Its batches with the rows each keeps, when the file was read whole and small enough
    /// to keep while it was compared.
    kept: Option<Vec<(RecordBatch, Vec<bool>)>>,
    /// For each of its rows with a matched key: whether it equals its input row, and that
    /// input row.
    matches: Vec<(bool, u32)>,
}

/// How an input row relates to the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// No dataset row has its key.
    None,
    /// A dataset row with its key differs from it.
    Changed,
    /// A dataset row with its key equals it.
    Same,
}

/// Files up to this size (compressed, as stored), and up to a 32nd of the writer's memory
/// budget, that hold a matched key are read once by a merge, their rows kept in memory
/// while they are compared; larger ones are compared on the row groups that may hold a key
/// and read again when a row changed.
const READ_ONCE_FILE_BYTES: u64 = 8 << 20;

/// Matches `input` (conformed and deduplicated) against `snapshot` by `key` and writes
/// what `mode` asks for through `writer`.
pub(crate) async fn merge(
    log: &LogStore,
    snapshot: &Arc<Snapshot>,
    input: &RecordBatch,
    key: &[String],
    mode: crate::options::WriteMode,
    writer: &mut FileWriter<'_>,
) -> Result<(Rewrite, KeyProbe)> {
    use crate::options::WriteMode;
    tracing::debug!(input = input.num_rows(), "merge: start");
    let schema = snapshot.schema();
    let probe = KeyProbe::new(key, input)?;
    let key_converter = converter_for(&schema, key)?;
    let input_keys = key_rows(&key_converter, input, key)?;
    let index: HashMap<&[u8], u32> = input_keys
        .iter()
        .enumerate()
        .map(|(i, row)| (row.data(), i as u32))
        .collect();

    // 1. Candidates; 2. matching, reading only the key columns of the row groups that
    // may hold a key: (file, [(row in what was read, input row)]).
    let candidates: Vec<FileEntry> = snapshot
        .files()
        .filter(|f| probe.may_hold(&snapshot.stats_view(f, false)))
        .cloned()
        .collect();
    let matcher = Matcher {
        key,
        converter: &key_converter,
        index: &index,
        prefilter: IntegerKeys::new(input, &key[0]),
    };
    let probe = Arc::new(probe);
    let matched: Vec<(FileEntry, Vec<(u32, u32)>)> = stream::iter(candidates)
        .map(|file| {
            let (matcher, probe) = (&matcher, probe.clone());
            async move {
                let scan = ScanBuilder::new(log.clone(), snapshot.clone())
                    .with_files(vec![file.clone()])
                    .with_columns(key.iter().cloned())
                    .with_key_probe(probe)
                    .with_concurrency(1);
                let mut batches = scan.stream()?;
                let mut found = Vec::new();
                let mut offset = 0u32;
                while let Some(batch) = batches.next().await {
                    let batch = batch?;
                    matcher.matches(&batch, offset, &mut found)?;
                    offset += batch.num_rows() as u32;
                }
                Ok::<_, Error>((file, found))
            }
        })
        .buffered(MATCH_CONCURRENCY)
        .try_filter(|(_, found)| std::future::ready(!found.is_empty()))
        .try_collect()
        .await?;
    tracing::debug!(
        files = snapshot.files().len(),
        files_with_matches = matched.len(),
        "merge: keys matched"
    );

    let mut state = vec![Match::None; input.num_rows()];
    let mut rewrite = Rewrite::default();
    if mode == WriteMode::Insert {
        for (_, found) in &matched {
            for &(_, source) in found {
                state[source as usize] = Match::Same;
            }
        }
    } else {
        // 3. The matched rows are compared in full; files with a changed row are written
        // again without those rows. A small file is read whole once, its batches kept
        // (with which rows stay) until the comparison tells whether it changed; a larger
        // one is compared on the row groups that may hold a key and read again if it did.
        let all: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let converter = converter_for(&schema, &all)?;
        let compare = RowComparer {
            input: converter.convert_columns(input.columns())?,
            converter,
            columns: all,
        };
        let read_once_bytes = READ_ONCE_FILE_BYTES.min(writer.memory_budget() as u64 / 32);
        let (compare, matcher) = (&compare, &matcher);
        // Files are compared a few at a time (their reads and decoding overlap), and their
        // outcomes taken in order.
        let mut compared = stream::iter(matched)
            .map(|(file, _)| {
                let probe = probe.clone();
                async move {
                    let read_once = file.size <= read_once_bytes;
                    let mut scan = ScanBuilder::new(log.clone(), snapshot.clone())
                        .with_files(vec![file.clone()])
                        .with_concurrency(1);
                    if !read_once {
                        scan = scan.with_key_probe(probe);
                    }
                    let mut batches = scan.stream()?;
                    let mut outcome = Compared {
                        file,
                        kept: read_once.then(Vec::new),
                        matches: Vec::new(),
                    };
                    while let Some(batch) = batches.next().await {
                        let batch = batch?;
                        let (keep, found) = compare.keep(matcher, &batch)?;
                        outcome
                            .matches
                            .extend(found.into_iter().map(|(_, same, source)| (same, source)));
                        if let Some(kept) = &mut outcome.kept {
                            kept.push((batch, keep));
                        }
                    }
                    Ok::<_, Error>(outcome)
                }
            })
            .buffered(COMPARE_CONCURRENCY);
        while let Some(outcome) = compared.next().await {
            let Compared {
                file,
                kept,
                matches,
            } = outcome?;
            let mut changed = false;
            for (same, source) in matches {
                let state = &mut state[source as usize];
                if same {
                    *state = Match::Same;
                } else {
                    if *state == Match::None {
                        *state = Match::Changed;
                    }
                    changed = true;
                }
            }
            if !changed {
                continue;
            }
            match kept {
                Some(kept) => {
                    for (batch, keep) in kept {
                        let keep = BooleanArray::from(keep);
                        writer.write(filter_record_batch(&batch, &keep)?).await?;
                    }
                }
                None => {
                    let mut batches = read_file(log, snapshot, &file, None)?;
                    while let Some(batch) = batches.next().await {
                        let batch = batch?;
                        let keep = BooleanArray::from(compare.keep(matcher, &batch)?.0);
                        writer.write(filter_record_batch(&batch, &keep)?).await?;
                    }
                }
            }
            rewrite.remove.push(file);
        }
    }
    let probe = Arc::try_unwrap(probe).unwrap_or_else(|shared| shared.as_ref().clone());

    let write = |m: Match| match mode {
        WriteMode::Insert => m == Match::None,
        WriteMode::Update => m == Match::Changed,
        _ => m != Match::Same,
    };
    tracing::debug!("merge: files rewritten");
    let mask = BooleanArray::from(state.iter().map(|&m| write(m)).collect::<Vec<_>>());
    let new_rows = filter_record_batch(input, &mask)?;
    writer.write(new_rows).await?;
    for m in &state {
        match m {
            Match::None if mode != WriteMode::Update => rewrite.rows_inserted += 1,
            Match::Changed => rewrite.rows_updated += 1,
            Match::Same => rewrite.rows_unchanged += 1,
            Match::None => {}
        }
    }
    Ok((rewrite, probe))
}

/// Removes the rows `filter` (bound to the snapshot's schema) matches: files it matches
/// whole are dropped unread, files it matches in part are written again without them.
pub(crate) async fn delete(
    log: &LogStore,
    snapshot: &Arc<Snapshot>,
    filter: &Expr,
    writer: &mut FileWriter<'_>,
) -> Result<Rewrite> {
    let plan = ScanBuilder::new(log.clone(), snapshot.clone())
        .with_filter(filter.clone())
        .plan()?;
    let filter = plan.filter.clone().unwrap_or_else(|| filter.clone());
    let columns: Vec<String> = filter.columns().into_iter().collect();
    let mut rewrite = Rewrite::default();
    for file in plan.files {
        if filter.must_match(&snapshot.stats_view(&file, false)) {
            rewrite.rows_deleted += file.rows;
            rewrite.remove.push(file);
            continue;
        }
        let mut keep = Vec::with_capacity(file.rows as usize);
        let mut batches = read_file(log, snapshot, &file, Some(&columns))?;
        while let Some(batch) = batches.next().await {
            let matches = filter.evaluate(&batch?)?;
            keep.extend((0..matches.len()).map(|i| !(matches.is_valid(i) && matches.value(i))));
        }
        let deleted = keep.iter().filter(|k| !**k).count() as u64;
        if deleted == 0 {
            continue;
        }
        rewrite.rows_deleted += deleted;
        if deleted < file.rows {
            copy_kept_rows(log, snapshot, &file, &BooleanBuffer::from(keep), writer).await?;
        }
        rewrite.remove.push(file);
    }
    Ok(rewrite)
}

/// Streams one file's rows in order (all columns, or `columns`), partition columns included.
fn read_file(
    log: &LogStore,
    snapshot: &Arc<Snapshot>,
    file: &FileEntry,
    columns: Option<&[String]>,
) -> Result<crate::scan::RecordBatchStream> {
    let mut scan = ScanBuilder::new(log.clone(), snapshot.clone())
        .with_files(vec![file.clone()])
        .with_concurrency(1);
    if let Some(columns) = columns {
        scan = scan.with_columns(columns.iter().cloned());
    }
    scan.stream()
}

/// Writes the rows of `file` that `keep` marks through `writer`.
async fn copy_kept_rows(
    log: &LogStore,
    snapshot: &Arc<Snapshot>,
    file: &FileEntry,
    keep: &BooleanBuffer,
    writer: &mut FileWriter<'_>,
) -> Result<()> {
    let mut batches = read_file(log, snapshot, file, None)?;
    let mut offset = 0usize;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        let rows = batch.num_rows();
        if offset + rows > keep.len() {
            break;
        }
        let mask = BooleanArray::new(keep.slice(offset, rows), None);
        writer.write(filter_record_batch(&batch, &mask)?).await?;
        offset += rows;
    }
    if offset as u64 != file.rows || offset != keep.len() {
        return Err(Error::CorruptFile {
            path: file.path.clone(),
            message: format!(
                "the index records {} rows but {offset} were read",
                file.rows
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(values: Vec<Option<i64>>) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, true)]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(values))]).unwrap()
    }

    #[test]
    fn integer_keys_find_exactly_the_rows_holding_a_key() {
        let keys = batch(vec![Some(-5), Some(7), Some(1 << 40), Some(7)]);
        let keys = IntegerKeys::new(&keys, "id").unwrap();
        // Every other value, in and out of the keys' range, is not a key.
        let data: Vec<Option<i64>> = (-100_000..100_000)
            .map(Some)
            .chain([Some(1 << 40), None, Some(i64::MIN), Some(i64::MAX)])
            .collect();
        let rows = keys.rows(&batch(data.clone())).unwrap();
        let found: Vec<Option<i64>> = rows.iter().map(|&r| data[r as usize]).collect();
        assert_eq!(found, vec![Some(-5), Some(7), Some(1 << 40)]);
    }

    #[test]
    fn integer_keys_match_nulls_only_when_a_key_is_null() {
        let data = batch(vec![Some(1), None, Some(2)]);
        let without = IntegerKeys::new(&batch(vec![Some(2)]), "id").unwrap();
        assert_eq!(without.rows(&data).unwrap(), vec![2]);
        let with = IntegerKeys::new(&batch(vec![None, Some(1)]), "id").unwrap();
        assert_eq!(with.rows(&data).unwrap(), vec![0, 1]);
        let only_null = IntegerKeys::new(&batch(vec![None]), "id").unwrap();
        assert_eq!(only_null.rows(&data).unwrap(), vec![1]);
    }

    #[test]
    fn integer_keys_read_narrower_integer_columns() {
        let schema = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
        let data = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int32Array::from(vec![3, 4, 5]))],
        )
        .unwrap();
        let keys = IntegerKeys::new(&batch(vec![Some(4)]), "id").unwrap();
        assert_eq!(keys.rows(&data).unwrap(), vec![1]);
    }
}
