//! Dtype optimization: every data column narrowed to the smallest type that holds each of
//! its values exactly, found from the file index where it is complete, else by a scan.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{cast, max, min};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, UInt64Type};
use dala_dataset::{
    Dataset, Operation, PROP_WRITE_DEFAULTS, RewriteOptions, Scalar, WriteDefaults, WriteOptions,
    cast_exact,
};
use futures::StreamExt;
use serde::{Serialize, Serializer};

use crate::compact::{bytes, widest};
use crate::error::{Error, Result, check_plan_version};

/// What [`plan_dtypes`] looks at and how the rewrite writes.
#[derive(Debug, Clone)]
pub struct DtypeOptions {
    /// Columns to optimize (empty: every data column). Partition columns are never changed.
    pub include: Vec<String>,
    /// Columns to leave alone.
    pub exclude: Vec<String>,
    /// Types chosen by hand, used instead of the narrowest; every value must still fit.
    pub types: BTreeMap<String, DataType>,
    /// Whether integers that are never negative may become unsigned (default true).
    pub unsigned: bool,
    /// Strings with at most this many distinct values (default 65 536)...
    pub dictionary_max_values: usize,
    /// ...that are at most this share of the column's values (default 0.5) are
    /// dictionary-encoded in every file.
    pub dictionary_max_share: f64,
    /// Writer settings of the rewritten files.
    pub write: WriteOptions,
}

impl Default for DtypeOptions {
    fn default() -> Self {
        DtypeOptions {
            include: Vec::new(),
            exclude: Vec::new(),
            types: BTreeMap::new(),
            unsigned: true,
            dictionary_max_values: 1 << 16,
            dictionary_max_share: 0.5,
            write: WriteOptions::default(),
        }
    }
}

/// Where a column's facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// The file index's statistics, complete for the column.
    Index,
    /// A scan of the column.
    Scan,
}

/// The plan for one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDtype {
    /// The column.
    pub column: String,
    /// Its type now.
    #[serde(serialize_with = "display")]
    pub before: DataType,
    /// Its type after the rewrite.
    #[serde(serialize_with = "display")]
    pub after: DataType,
    /// Dictionary-encoded in every file after the rewrite (a low-cardinality string).
    pub dictionary: bool,
    /// Every value is null (flagged; the type is kept).
    pub all_null: bool,
    /// `after` was chosen by hand.
    pub forced: bool,
    /// The smallest and largest value of an integer column, as text.
    pub range: Option<(String, String)>,
    /// Distinct values of a string column (unset when above the dictionary limit).
    pub distinct: Option<usize>,
    /// Where the facts came from.
    pub evidence: Evidence,
    /// Compressed bytes of the column in the files now.
    pub bytes: u64,
}

impl ColumnDtype {
    /// Whether the rewrite changes the column.
    pub fn changes(&self) -> bool {
        self.before != self.after || self.dictionary
    }
}

/// What a dtype optimization would change.
#[derive(Debug, Clone, Serialize)]
pub struct DtypePlan {
    /// The version the plan was made from.
    pub version: u64,
    /// Rows in the dataset.
    pub rows: u64,
    /// Files in the dataset (all rewritten when anything changes).
    pub files: usize,
    /// Bytes of them.
    pub bytes: u64,
    /// The columns looked at.
    pub columns: Vec<ColumnDtype>,
    #[serde(skip)]
    schema: SchemaRef,
    #[serde(skip)]
    options: DtypeOptions,
}

impl DtypePlan {
    /// Columns whose type or encoding changes.
    pub fn changed(&self) -> impl Iterator<Item = &ColumnDtype> {
        self.columns.iter().filter(|c| c.changes())
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changed().next().is_none()
    }

    /// The data schema after the rewrite.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl fmt::Display for DtypePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dtype optimization of version {}: {} of {} columns change; {} files ({}, {} rows) {}",
            self.version,
            self.changed().count(),
            self.columns.len(),
            self.files,
            bytes(self.bytes),
            self.rows,
            if self.is_empty() {
                "stay as they are"
            } else {
                "are rewritten in one commit"
            },
        )?;
        let width = widest(self.columns.iter().map(|c| c.column.as_str()));
        for c in &self.columns {
            let mut notes = Vec::new();
            if c.forced {
                notes.push("chosen by hand".to_string());
            }
            if c.all_null {
                notes.push("all null".to_string());
            }
            if c.dictionary {
                notes.push("dictionary-encoded".to_string());
            }
            if let Some((lo, hi)) = &c.range {
                notes.push(format!("values {lo}..={hi}"));
            }
            if let Some(n) = c.distinct {
                notes.push(format!("{n} distinct"));
            }
            let evidence = match c.evidence {
                Evidence::Index => "index",
                Evidence::Scan => "scan",
            };
            writeln!(
                f,
                "  {:width$}  {:>17} -> {:17}  {:>10}  {evidence:5}  {}",
                c.column,
                c.before.to_string(),
                if c.before == c.after {
                    "(same)".to_string()
                } else {
                    c.after.to_string()
                },
                bytes(c.bytes),
                notes.join(", "),
            )?;
        }
        Ok(())
    }
}

/// Bytes of one column before and after.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnBytes {
    /// The column.
    pub column: String,
    /// Its type before.
    #[serde(serialize_with = "display")]
    pub before: DataType,
    /// Its type after.
    #[serde(serialize_with = "display")]
    pub after: DataType,
    /// Compressed bytes before.
    pub bytes_before: u64,
    /// Compressed bytes after.
    pub bytes_after: u64,
}

/// What a dtype optimization did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DtypeReport {
    /// The version committed (none when nothing changed).
    pub version: Option<u64>,
    /// Files replaced.
    pub files_removed: u64,
    /// Files written.
    pub files_added: u64,
    /// Bytes of the files replaced.
    pub bytes_before: u64,
    /// Bytes of the files written.
    pub bytes_after: u64,
    /// Per column.
    pub columns: Vec<ColumnBytes>,
}

impl fmt::Display for DtypeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(version) = self.version else {
            return writeln!(f, "nothing to change");
        };
        writeln!(
            f,
            "version {version}: {} files became {}; {} -> {}",
            self.files_removed,
            self.files_added,
            bytes(self.bytes_before),
            bytes(self.bytes_after)
        )?;
        let width = widest(self.columns.iter().map(|c| c.column.as_str()));
        for c in &self.columns {
            writeln!(
                f,
                "  {:width$}  {:>17} -> {:17}  {:>10} -> {}",
                c.column,
                c.before.to_string(),
                c.after.to_string(),
                bytes(c.bytes_before),
                bytes(c.bytes_after)
            )?;
        }
        Ok(())
    }
}

fn display<S: Serializer>(value: &DataType, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Plans the narrowest lossless type of each chosen column of `dataset`: integers to the
/// smallest signed or unsigned width that holds their smallest and largest value, `Float64`
/// to `Float32` where every value comes back exactly, timestamps to the coarsest unit that
/// loses nothing, `Date64` to `Date32` when every value is a whole day, and strings with
/// few distinct values to dictionary encoding. All-null columns are flagged. Facts come
/// from the file index where its statistics are complete (integer ranges, null counts),
/// else from one scan of the columns that need it. A hand-chosen type (`types`) that a
/// value does not fit is an error, with nothing changed.
pub async fn plan_dtypes(dataset: &Dataset, options: &DtypeOptions) -> Result<DtypePlan> {
    if !(0.0..=1.0).contains(&options.dictionary_max_share) {
        return Err(Error::InvalidOption(format!(
            "dictionary_max_share must be between 0 and 1, not {}",
            options.dictionary_max_share
        )));
    }
    let snapshot = dataset.snapshot();
    let data = snapshot.data_schema().clone();
    let partitions: Vec<&str> = snapshot
        .partitioning()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    for name in options
        .include
        .iter()
        .chain(&options.exclude)
        .chain(options.types.keys())
    {
        if partitions.contains(&name.as_str()) {
            return Err(Error::InvalidOption(format!(
                "{name} is a partition column: its values live in the paths, not the files"
            )));
        }
        if data.field_with_name(name).is_err() {
            return Err(Error::Dataset(dala_dataset::Error::UnknownColumn {
                column: name.clone(),
                context: Some("named in the dtype options".into()),
            }));
        }
    }
    let chosen: Vec<usize> = (0..data.fields().len())
        .filter(|&i| {
            let name = data.field(i).name();
            (options.include.is_empty() || options.include.contains(name))
                && !options.exclude.contains(name)
        })
        .collect();

    let rows = snapshot.rows();
    let mut probes: Vec<Probe> = chosen
        .iter()
        .map(|&i| Probe::new(i, data.field(i), options, snapshot))
        .collect();
    let scanned: Vec<String> = probes
        .iter()
        .filter(|p| p.evidence == Evidence::Scan)
        .map(|p| p.name.clone())
        .collect();
    if !scanned.is_empty() && rows > 0 {
        let mut stream = dataset.scan().with_columns(scanned.clone()).stream()?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            for probe in probes.iter_mut().filter(|p| p.evidence == Evidence::Scan) {
                let Some(column) = batch.column_by_name(&probe.name) else {
                    continue;
                };
                probe.observe(column)?;
            }
        }
    }
    let column_bytes = column_bytes(dataset, snapshot.files().cloned().collect()).await?;
    let columns: Vec<ColumnDtype> = probes
        .into_iter()
        .map(|p| p.conclude(rows, options, &column_bytes))
        .collect();
    let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
    for c in &columns {
        if let Some(field) = fields.iter_mut().find(|f| f.name() == &c.column) {
            *field = field.clone().with_data_type(c.after.clone());
        }
    }
    Ok(DtypePlan {
        version: snapshot.version(),
        rows,
        files: snapshot.files().len(),
        bytes: snapshot.bytes(),
        columns,
        schema: Arc::new(Schema::new_with_metadata(fields, data.metadata().clone())),
        options: options.clone(),
    })
}

/// Rewrites every file of the plan's version with the new types, in one commit that
/// conflicts with any concurrent change of the data; dictionary-encoded columns are also
/// recorded in the dataset's write defaults, so later writes keep them. A value that does
/// not fit a new type fails the rewrite with nothing changed. `dataset` must be at the
/// plan's version.
pub async fn execute_dtypes(dataset: &Dataset, plan: &DtypePlan) -> Result<DtypeReport> {
    if plan.is_empty() {
        return Ok(DtypeReport::default());
    }
    check_plan_version(dataset, plan.version)?;
    let snapshot = dataset.snapshot();
    let mut defaults = WriteDefaults::of(snapshot.properties())?;
    let mut write = plan.options.write.clone();
    for c in plan.columns.iter().filter(|c| c.dictionary) {
        defaults
            .columns
            .entry(c.column.clone())
            .or_default()
            .dictionary = Some(true);
        write
            .columns
            .entry(c.column.clone())
            .or_default()
            .dictionary = Some(true);
    }
    let mut properties = BTreeMap::new();
    if plan.columns.iter().any(|c| c.dictionary) {
        properties.insert(PROP_WRITE_DEFAULTS.to_string(), defaults.to_property());
    }
    let paths: Vec<String> = snapshot.files().map(|f| f.path.clone()).collect();
    let rewrite = RewriteOptions {
        write,
        operation: Operation::Optimize,
        schema: Some(plan.schema.clone()),
        properties,
        ..RewriteOptions::default()
    };
    let (after, result) = dataset.rewrite_files(&paths, &rewrite).await?;
    let Some(version) = result.version else {
        return Ok(DtypeReport::default());
    };
    let added: Vec<_> = after
        .snapshot()
        .files()
        .filter(|f| f.added_version == version)
        .cloned()
        .collect();
    let bytes_after = column_bytes(&after, added).await?;
    Ok(DtypeReport {
        version: Some(version),
        files_removed: result.files_removed,
        files_added: result.files_added,
        bytes_before: snapshot.bytes(),
        bytes_after: result.bytes_written,
        columns: plan
            .columns
            .iter()
            .map(|c| ColumnBytes {
                column: c.column.clone(),
                before: c.before.clone(),
                after: c.after.clone(),
                bytes_before: c.bytes,
                bytes_after: bytes_after.get(&c.column).copied().unwrap_or(0),
            })
            .collect(),
    })
}

/// Compressed bytes per top-level column over `files`, from their footers.
pub(crate) async fn column_bytes(
    dataset: &Dataset,
    files: Vec<dala_dataset::FileEntry>,
) -> Result<BTreeMap<String, u64>> {
    let mut footers = futures::stream::iter(files)
        .map(|file| async move { dataset.file_metadata(&file).await })
        .buffer_unordered(16);
    let mut totals = BTreeMap::new();
    while let Some(metadata) = footers.next().await {
        let metadata = metadata?;
        for row_group in metadata.row_groups() {
            for chunk in row_group.columns() {
                let name = chunk
                    .column_path()
                    .parts()
                    .first()
                    .cloned()
                    .unwrap_or_default();
                *totals.entry(name).or_insert(0) += chunk.compressed_size().max(0) as u64;
            }
        }
    }
    Ok(totals)
}

/// What is learnt about one column, from the index or by a scan.
struct Probe {
    name: String,
    data_type: DataType,
    evidence: Evidence,
    /// Integer range.
    range: Option<(i128, i128)>,
    /// Nulls seen.
    nulls: u64,
    /// Narrower types still possible (floats, timestamps, dates), each with whether
    /// every value so far fits it.
    candidates: Vec<(DataType, bool)>,
    /// A hand-chosen type, checked on every value.
    forced: Option<DataType>,
    /// Distinct strings, until there are too many.
    distinct: Option<HashSet<String>>,
    distinct_limit: usize,
}

impl Probe {
    fn new(
        index: usize,
        field: &Field,
        options: &DtypeOptions,
        snapshot: &dala_dataset::Snapshot,
    ) -> Probe {
        let data_type = field.data_type().clone();
        let forced = options.types.get(field.name()).cloned();
        let candidates = match &data_type {
            DataType::Float64 => vec![(DataType::Float32, true)],
            DataType::Timestamp(unit, tz) => [
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
            ]
            .into_iter()
            .filter(|u| u < unit)
            .map(|u| (DataType::Timestamp(u, tz.clone()), true))
            .collect(),
            DataType::Date64 => vec![(DataType::Date32, true)],
            _ => Vec::new(),
        };
        let string = matches!(
            data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        let mut probe = Probe {
            name: field.name().clone(),
            data_type,
            evidence: Evidence::Scan,
            range: None,
            nulls: 0,
            candidates,
            forced,
            distinct: string.then(HashSet::new),
            distinct_limit: options.dictionary_max_values,
        };
        // Integer ranges and null counts are exact in the index when every file has them.
        if probe.forced.is_none()
            && probe.candidates.is_empty()
            && probe.distinct.is_none()
            && let Some((range, nulls)) = index_facts(snapshot, index)
        {
            probe.range = range;
            probe.nulls = nulls;
            probe.evidence = Evidence::Index;
        }
        probe
    }

    fn observe(&mut self, column: &ArrayRef) -> Result<()> {
        self.nulls += column.null_count() as u64;
        if let Some(forced) = &self.forced {
            cast_exact(&self.name, column, forced)?;
        }
        if self.data_type.is_integer() && column.null_count() < column.len() {
            let (lo, hi) = integer_range(column)?;
            self.range = Some(match self.range {
                Some((a, b)) => (a.min(lo), b.max(hi)),
                None => (lo, hi),
            });
        }
        for (candidate, fits) in &mut self.candidates {
            if *fits {
                *fits = cast_exact(&self.name, column, candidate).is_ok();
            }
        }
        if let Some(seen) = self.distinct.as_mut() {
            let strings = cast(column, &DataType::Utf8)?;
            for value in strings.as_string::<i32>().iter().flatten() {
                if !seen.contains(value) {
                    if seen.len() >= self.distinct_limit {
                        self.distinct = None;
                        break;
                    }
                    seen.insert(value.to_string());
                }
            }
        }
        Ok(())
    }

    fn conclude(
        self,
        rows: u64,
        options: &DtypeOptions,
        column_bytes: &BTreeMap<String, u64>,
    ) -> ColumnDtype {
        let all_null = rows > 0 && self.nulls >= rows;
        let mut after = self.data_type.clone();
        if let Some(forced) = &self.forced {
            after = forced.clone();
        } else if !all_null {
            if let Some((lo, hi)) = self.range {
                let narrow = narrowest_integer(lo, hi, options.unsigned);
                if bit_width(&narrow) < bit_width(&self.data_type) {
                    after = narrow;
                }
            }
            // Candidates run from the coarsest (or narrowest) to the finest.
            if let Some((candidate, _)) = self.candidates.iter().find(|(_, fits)| *fits) {
                after = candidate.clone();
            }
        }
        let values = rows.saturating_sub(self.nulls);
        let distinct = self.distinct.as_ref().map(HashSet::len);
        let dictionary = !all_null
            && self.forced.is_none()
            && distinct.is_some_and(|n| n as f64 <= options.dictionary_max_share * values as f64);
        ColumnDtype {
            range: self.range.map(|(lo, hi)| (lo.to_string(), hi.to_string())),
            bytes: column_bytes.get(&self.name).copied().unwrap_or(0),
            column: self.name,
            before: self.data_type,
            after,
            dictionary,
            all_null,
            forced: self.forced.is_some(),
            distinct,
            evidence: self.evidence,
        }
    }
}

/// The range and null count of data column `index` from the file index, when every file
/// has them.
fn index_facts(
    snapshot: &dala_dataset::Snapshot,
    index: usize,
) -> Option<(Option<(i128, i128)>, u64)> {
    let integer = snapshot.data_schema().field(index).data_type().is_integer();
    let mut range: Option<(i128, i128)> = None;
    let mut nulls = 0;
    for file in snapshot.files() {
        let stats = file.stats.get(index)?.as_ref()?;
        let file_nulls = stats.null_count?;
        nulls += file_nulls;
        if file_nulls >= file.rows {
            continue;
        }
        if !integer {
            continue;
        }
        let lo = as_i128(stats.min.as_ref()?)?;
        let hi = as_i128(stats.max.as_ref()?)?;
        range = Some(match range {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
    }
    Some((range, nulls))
}

fn as_i128(scalar: &Scalar) -> Option<i128> {
    match scalar {
        Scalar::Int(v) => Some(i128::from(*v)),
        Scalar::UInt(v) => Some(i128::from(*v)),
        _ => None,
    }
}

/// The smallest and largest value of an integer array with at least one value.
fn integer_range(column: &ArrayRef) -> Result<(i128, i128)> {
    let range = if column.data_type() == &DataType::UInt64 {
        let values = column.as_primitive::<UInt64Type>();
        (min(values).map(i128::from), max(values).map(i128::from))
    } else {
        let wide = cast(column, &DataType::Int64)?;
        let values = wide.as_primitive::<Int64Type>();
        (min(values).map(i128::from), max(values).map(i128::from))
    };
    match range {
        (Some(lo), Some(hi)) => Ok((lo, hi)),
        _ => Ok((0, 0)),
    }
}

/// The narrowest integer type holding `lo..=hi`.
fn narrowest_integer(lo: i128, hi: i128, unsigned: bool) -> DataType {
    if unsigned && lo >= 0 {
        return if hi <= i128::from(u8::MAX) {
            DataType::UInt8
        } else if hi <= i128::from(u16::MAX) {
            DataType::UInt16
        } else if hi <= i128::from(u32::MAX) {
            DataType::UInt32
        } else {
            DataType::UInt64
        };
    }
    let fits = |min: i64, max: i64| lo >= i128::from(min) && hi <= i128::from(max);
    if fits(i8::MIN.into(), i8::MAX.into()) {
        DataType::Int8
    } else if fits(i16::MIN.into(), i16::MAX.into()) {
        DataType::Int16
    } else if fits(i32::MIN.into(), i32::MAX.into()) {
        DataType::Int32
    } else {
        DataType::Int64
    }
}

fn bit_width(data_type: &DataType) -> usize {
    data_type.primitive_width().map_or(usize::MAX, |w| w * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_go_to_the_narrowest_width_that_holds_their_range() {
        assert_eq!(narrowest_integer(1, 2, true), DataType::UInt8);
        assert_eq!(narrowest_integer(-1, 2, true), DataType::Int8);
        assert_eq!(narrowest_integer(0, 256, true), DataType::UInt16);
        assert_eq!(narrowest_integer(0, 256, false), DataType::Int16);
        assert_eq!(narrowest_integer(-129, 0, true), DataType::Int16);
        assert_eq!(narrowest_integer(0, 6_000_000, true), DataType::UInt32);
        assert_eq!(
            narrowest_integer(i128::from(i64::MIN), 0, true),
            DataType::Int64
        );
    }

    #[test]
    fn scanned_batches_keep_only_the_candidates_every_value_fits() {
        let field = Field::new("f", DataType::Float64, true);
        let mut probe = Probe {
            name: "f".into(),
            data_type: DataType::Float64,
            evidence: Evidence::Scan,
            range: None,
            nulls: 0,
            candidates: vec![(DataType::Float32, true)],
            forced: None,
            distinct: None,
            distinct_limit: 0,
        };
        let halves: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![0.5, 1.25]));
        probe.observe(&halves).unwrap();
        assert!(probe.candidates[0].1);
        let tenth: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![0.1]));
        probe.observe(&tenth).unwrap();
        assert!(!probe.candidates[0].1);
        let plan = probe.conclude(3, &DtypeOptions::default(), &BTreeMap::new());
        assert_eq!(plan.after, *field.data_type());
    }
}
