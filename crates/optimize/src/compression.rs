//! The compression and row-group advisor: a sample of each column is written with every
//! candidate codec, with and without a dictionary, and read back; the smallest setting
//! that decodes about as fast as the fastest is recommended, with a row-group size for the
//! access pattern and bloom filters for high-cardinality filter columns. Applying the
//! advice stores it as the dataset's write defaults and rewrites the files with it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use arrow::row::{RowConverter, SortField};
use dala_dataset::{ColumnOptions, CompressionSpec, Dataset, PROP_WRITE_DEFAULTS, WriteDefaults};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Serialize, Serializer};

use crate::compact::{
    CompactOptions, CompactionReport, GroupOutcome, bytes, execute_compaction, plan_compaction,
    widest,
};
use crate::dtypes::column_bytes;
use crate::error::{Error, Result, check_plan_version};

/// How the dataset is read, which decides the row-group size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessPattern {
    /// Queries read a small part (by partition, range or key): smaller row groups prune
    /// better.
    #[default]
    Selective,
    /// Queries read whole columns: larger row groups cost less per row.
    FullScan,
}

impl std::str::FromStr for AccessPattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "selective" => Ok(AccessPattern::Selective),
            "full-scan" | "full" => Ok(AccessPattern::FullScan),
            other => Err(Error::InvalidOption(format!(
                "unknown access pattern {other:?} (selective or full-scan)"
            ))),
        }
    }
}

/// What [`plan_compression`] tries and how the advice is applied.
#[derive(Debug, Clone)]
pub struct CompressionOptions {
    /// How the dataset is read (default selective).
    pub access: AccessPattern,
    /// Rows sampled (default 262 144), taken from files spread over the dataset.
    pub sample_rows: usize,
    /// Codecs tried (default snappy, lz4, zstd 1, 3 and 9, gzip, brotli).
    pub codecs: Vec<CompressionSpec>,
    /// A setting may decode this many times slower than the column's fastest and still
    /// be chosen for being smaller (default 1.25).
    pub max_decode_slowdown: f64,
    /// Columns queries filter on: those with many distinct values get a bloom filter.
    pub filter_columns: Vec<String>,
    /// Columns advised on (empty: all data columns).
    pub include: Vec<String>,
    /// Columns left alone.
    pub exclude: Vec<String>,
    /// Time a full scan before and after applying (default true).
    pub measure_scans: bool,
    /// File sizes, commits per partition group, concurrency and memory of the rewrite.
    pub rewrite: CompactOptions,
}

impl Default for CompressionOptions {
    fn default() -> Self {
        let codecs = [
            "snappy", "lz4", "zstd:1", "zstd:3", "zstd:9", "gzip:6", "brotli:1",
        ]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
        CompressionOptions {
            access: AccessPattern::default(),
            sample_rows: 1 << 18,
            codecs,
            max_decode_slowdown: 1.25,
            filter_columns: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            measure_scans: true,
            rewrite: CompactOptions {
                rewrite_all: true,
                ..CompactOptions::default()
            },
        }
    }
}

/// One setting tried on a column's sample.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The codec.
    #[serde(serialize_with = "display")]
    pub compression: CompressionSpec,
    /// Dictionary encoding on.
    pub dictionary: bool,
    /// Bytes of the sample written so.
    pub bytes: u64,
    /// Time to read the sample back (the best of three).
    #[serde(serialize_with = "seconds")]
    pub decode: Duration,
}

impl fmt::Display for Trial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.compression,
            if self.dictionary { "+dict" } else { "" }
        )
    }
}

/// The advice for one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnAdvice {
    /// The column.
    pub column: String,
    /// Its type.
    pub data_type: String,
    /// Its compressed bytes in the files now.
    pub bytes_now: u64,
    /// Every setting tried.
    pub trials: Vec<Trial>,
    /// The index of the chosen one in `trials`.
    pub chosen: usize,
    /// Distinct values as a share of the sample's values.
    pub distinct_share: f64,
    /// A bloom filter is advised (a filter column with many distinct values).
    pub bloom_filter: bool,
}

impl ColumnAdvice {
    /// The chosen setting.
    pub fn choice(&self) -> &Trial {
        &self.trials[self.chosen]
    }
}

/// The advisor's recommendation for a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct CompressionPlan {
    /// The version sampled.
    pub version: u64,
    /// Rows in the dataset.
    pub rows: u64,
    /// Rows sampled.
    pub sample_rows: usize,
    /// Bytes of the data files now.
    pub bytes_now: u64,
    /// Bytes expected after the rewrite (the sample's bytes scaled to the dataset).
    pub bytes_estimated: u64,
    /// The access pattern advised for.
    pub access: AccessPattern,
    /// Rows per row group advised.
    pub row_group_size: usize,
    /// Per column.
    pub columns: Vec<ColumnAdvice>,
    #[serde(skip)]
    options: CompressionOptions,
}

impl CompressionPlan {
    /// The advice as the dataset's write defaults.
    pub fn defaults(&self) -> WriteDefaults {
        WriteDefaults {
            row_group_size: Some(self.row_group_size),
            columns: self
                .columns
                .iter()
                .map(|c| {
                    let choice = c.choice();
                    let settings = ColumnOptions {
                        compression: Some(choice.compression),
                        dictionary: Some(choice.dictionary),
                        bloom_filter: c.bloom_filter.then_some(true),
                    };
                    (c.column.clone(), settings)
                })
                .collect(),
        }
    }
}

impl fmt::Display for CompressionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "compression advice for version {} ({} rows, {} sampled; {:?} access): \
             {} now, about {} after; row groups of {} rows",
            self.version,
            self.rows,
            self.sample_rows,
            self.access,
            bytes(self.bytes_now),
            bytes(self.bytes_estimated),
            self.row_group_size
        )?;
        let width = widest(self.columns.iter().map(|c| c.column.as_str()));
        for c in &self.columns {
            let choice = c.choice();
            let smallest = c.trials.iter().min_by_key(|t| t.bytes);
            let fastest = c.trials.iter().min_by_key(|t| t.decode);
            let other = |t: Option<&Trial>| {
                t.map(|t| format!("{t} {} {:.1} ms", bytes(t.bytes), millis(t.decode)))
                    .unwrap_or_default()
            };
            writeln!(
                f,
                "  {:width$}  {:>10} now  ->  {:14} {:>10} {:6.1} ms{}   (smallest {}; fastest {})",
                c.column,
                bytes(c.bytes_now),
                choice.to_string(),
                bytes(choice.bytes),
                millis(choice.decode),
                if c.bloom_filter { " +bloom" } else { "" },
                other(smallest),
                other(fastest),
            )?;
        }
        Ok(())
    }
}

/// What applying the advice did.
#[derive(Debug, Clone, Serialize)]
pub struct CompressionReport {
    /// The version that stored the write defaults.
    pub defaults_version: u64,
    /// The rewrite.
    pub rewrite: CompactionReport,
    /// Bytes of the data files before.
    pub bytes_before: u64,
    /// Bytes of the data files after.
    pub bytes_after: u64,
    /// A full scan before, if measured.
    #[serde(serialize_with = "seconds_opt")]
    pub scan_before: Option<Duration>,
    /// A full scan after, if measured.
    #[serde(serialize_with = "seconds_opt")]
    pub scan_after: Option<Duration>,
}

impl fmt::Display for CompressionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.rewrite)?;
        write!(
            f,
            "bytes {} -> {}",
            bytes(self.bytes_before),
            bytes(self.bytes_after)
        )?;
        if let (Some(before), Some(after)) = (self.scan_before, self.scan_after) {
            write!(
                f,
                "; full scan {:.0} ms -> {:.0} ms",
                millis(before),
                millis(after)
            )?;
        }
        writeln!(f)
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn display<S: Serializer>(
    value: &CompressionSpec,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn seconds<S: Serializer>(value: &Duration, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

fn seconds_opt<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        Some(d) => serializer.serialize_f64(d.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

/// Samples `dataset` and measures, per column, the bytes and decode time of every codec
/// in `options` with and without a dictionary; recommends the smallest setting that
/// decodes within `max_decode_slowdown` of the column's fastest (or no slower than the
/// column's setting now), a row-group size for the access pattern (about 16 MiB of
/// compressed rows for selective reads, 128 MiB for full scans, within 32 768..=262 144
/// and 131 072..=1 048 576 rows), and bloom filters for filter columns whose sampled
/// values are at least half distinct.
pub async fn plan_compression(
    dataset: &Dataset,
    options: &CompressionOptions,
) -> Result<CompressionPlan> {
    if options.codecs.is_empty() || options.sample_rows == 0 {
        return Err(Error::InvalidOption(
            "at least one codec and one sampled row are needed".into(),
        ));
    }
    if options.max_decode_slowdown < 1.0 {
        return Err(Error::InvalidOption(format!(
            "max_decode_slowdown must be at least 1, not {}",
            options.max_decode_slowdown
        )));
    }
    let snapshot = dataset.snapshot();
    let data = snapshot.data_schema().clone();
    for name in options
        .include
        .iter()
        .chain(&options.exclude)
        .chain(&options.filter_columns)
    {
        if data.field_with_name(name).is_err() {
            return Err(Error::Dataset(dala_dataset::Error::UnknownColumn {
                column: name.clone(),
                context: Some("named in the compression options (data columns only)".into()),
            }));
        }
    }
    let columns: Vec<Field> = data
        .fields()
        .iter()
        .filter(|f| {
            (options.include.is_empty() || options.include.contains(f.name()))
                && !options.exclude.contains(f.name())
        })
        .map(|f| f.as_ref().clone())
        .collect();
    let sample = sample(dataset, &columns, options.sample_rows).await?;
    let sampled = sample.first().map_or(0, |c| c.len());
    let now = column_bytes(dataset, snapshot.files().cloned().collect()).await?;

    let current = current_settings(dataset).await?;
    let options_for_trials = options.clone();
    let fields = columns.clone();
    let advice = tokio::task::spawn_blocking(move || {
        fields
            .iter()
            .zip(&sample)
            .map(|(field, values)| {
                let now = current.get(field.name()).copied();
                advise(field, values, now, &options_for_trials)
            })
            .collect::<Result<Vec<_>>>()
    })
    .await
    .map_err(|e| Error::InvalidOption(format!("the advisor's trials failed: {e}")))??;

    let rows = snapshot.rows();
    let scale = if sampled == 0 {
        0.0
    } else {
        rows as f64 / sampled as f64
    };
    let mut columns_advice = Vec::with_capacity(advice.len());
    let mut estimated = 0u64;
    let mut sample_bytes = 0u64;
    for (field, advice) in columns.iter().zip(advice) {
        let bloom = options.filter_columns.contains(field.name())
            && advice.distinct_share >= 0.5
            && !field.data_type().is_floating();
        let chosen = &advice.trials[advice.chosen];
        let bytes_now = now.get(field.name()).copied().unwrap_or(0);
        sample_bytes += chosen.bytes;
        // The bytes now, scaled by how the chosen setting compares with the one now on the
        // sample, keep the files' own layout (partitions, row groups) in the estimate.
        estimated += match advice.now.map(|i| &advice.trials[i]) {
            Some(like_now) if like_now.bytes > 0 && bytes_now > 0 => {
                (bytes_now as f64 * chosen.bytes as f64 / like_now.bytes as f64) as u64
            }
            _ => (chosen.bytes as f64 * scale) as u64,
        };
        columns_advice.push(ColumnAdvice {
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
            bytes_now,
            trials: advice.trials,
            chosen: advice.chosen,
            distinct_share: advice.distinct_share,
            bloom_filter: bloom,
        });
    }
    // Columns left out of the advice keep their bytes.
    let advised: HashSet<&str> = columns.iter().map(|f| f.name().as_str()).collect();
    estimated += now
        .iter()
        .filter(|(c, _)| !advised.contains(c.as_str()))
        .map(|(_, b)| *b)
        .sum::<u64>();
    let row_bytes = if sampled == 0 {
        1.0
    } else {
        (sample_bytes as f64 / sampled as f64).max(1.0 / 64.0)
    };
    let (target, lo, hi) = match options.access {
        AccessPattern::Selective => (16.0 * 1024.0 * 1024.0, 1 << 15, 1 << 18),
        AccessPattern::FullScan => (128.0 * 1024.0 * 1024.0, 1 << 17, 1 << 20),
    };
    let row_group_size = ((target / row_bytes) as usize).clamp(lo, hi) / 1024 * 1024;
    Ok(CompressionPlan {
        version: snapshot.version(),
        rows,
        sample_rows: sampled,
        bytes_now: snapshot.bytes(),
        bytes_estimated: estimated,
        access: options.access,
        row_group_size,
        columns: columns_advice,
        options: options.clone(),
    })
}

/// Stores the advice as the dataset's write defaults ([`PROP_WRITE_DEFAULTS`], over
/// defaults already there) in one commit, then rewrites every file with it through a
/// compaction (per partition group, each its own commit; `on_group` is called as each
/// ends). Files a concurrent writer adds meanwhile are written with the new defaults too.
/// With `measure_scans`, a full scan is timed before and after.
pub async fn execute_compression(
    dataset: &mut Dataset,
    plan: &CompressionPlan,
    on_group: &(dyn Fn(&GroupOutcome) + Sync),
) -> Result<CompressionReport> {
    check_plan_version(dataset, plan.version)?;
    let bytes_before = dataset.snapshot().bytes();
    let scan_before = match plan.options.measure_scans {
        true => Some(full_scan(dataset).await?),
        false => None,
    };
    let mut defaults = WriteDefaults::of(dataset.snapshot().properties())?;
    let advice = plan.defaults();
    defaults.row_group_size = advice.row_group_size;
    for (column, settings) in advice.columns {
        let entry = defaults.columns.entry(column).or_default();
        entry.compression = settings.compression;
        entry.dictionary = settings.dictionary;
        entry.bloom_filter = settings.bloom_filter.or(entry.bloom_filter);
    }
    let set = dataset
        .set_properties(BTreeMap::from([(
            PROP_WRITE_DEFAULTS.to_string(),
            defaults.to_property(),
        )]))
        .await?;
    let defaults_version = set.version.unwrap_or(dataset.version());
    let rewrite = CompactOptions {
        rewrite_all: true,
        ..plan.options.rewrite.clone()
    };
    let compaction = plan_compaction(dataset, &rewrite)?;
    let report = execute_compaction(dataset, &compaction, on_group).await?;
    dataset.reload().await?;
    let scan_after = match plan.options.measure_scans {
        true => Some(full_scan(dataset).await?),
        false => None,
    };
    Ok(CompressionReport {
        defaults_version,
        rewrite: report,
        bytes_before,
        bytes_after: dataset.snapshot().bytes(),
        scan_before,
        scan_after,
    })
}

/// The time to read every row of every column.
async fn full_scan(dataset: &Dataset) -> Result<Duration> {
    let started = Instant::now();
    let mut stream = dataset.scan().stream()?;
    while let Some(batch) = stream.next().await {
        batch?;
    }
    Ok(started.elapsed())
}

/// Up to `rows` rows of `columns`, from files spread over the dataset, one array per
/// column.
async fn sample(dataset: &Dataset, columns: &[Field], rows: usize) -> Result<Vec<ArrayRef>> {
    let snapshot = dataset.snapshot();
    let files: Vec<_> = snapshot.files().collect();
    let mut chosen = Vec::new();
    if !files.is_empty() {
        let per_file = (snapshot.rows() / files.len() as u64).max(1);
        let needed = (rows as u64).div_ceil(per_file).max(1) as usize;
        let stride = (files.len() / needed).max(1);
        chosen = files.iter().step_by(stride).map(|f| (*f).clone()).collect();
    }
    let names: Vec<String> = columns.iter().map(|f| f.name().clone()).collect();
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); columns.len()];
    if !names.is_empty() && !chosen.is_empty() {
        let scan = dataset
            .scan()
            .with_files(chosen)
            .with_columns(names.clone())
            .with_limit(rows);
        let mut stream = scan.stream()?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            for (part, name) in parts.iter_mut().zip(&names) {
                if let Some(column) = batch.column_by_name(name) {
                    part.push(column.clone());
                }
            }
        }
    }
    parts
        .into_iter()
        .zip(columns)
        .map(|(part, field)| {
            if part.is_empty() {
                return Ok(arrow::array::new_empty_array(field.data_type()));
            }
            let refs: Vec<&dyn Array> = part.iter().map(|a| a.as_ref()).collect();
            Ok(arrow::compute::concat(&refs)?)
        })
        .collect()
}

/// How a column is written now: its codec (level unknown: footers do not record it) and
/// whether it has a dictionary.
type Current = (std::mem::Discriminant<Compression>, bool);

/// Every setting tried on one column's sample, the index of the chosen one, and the share
/// of distinct values. The chosen setting is the smallest of those that decode within
/// `max_decode_slowdown` of the fastest, or no slower than the setting the column has now
/// (so the advice never makes a column larger to make it slower).
fn advise(
    field: &Field,
    values: &ArrayRef,
    current: Option<Current>,
    options: &CompressionOptions,
) -> Result<Advice> {
    let mut trials = Vec::with_capacity(options.codecs.len() * 2);
    for compression in &options.codecs {
        for dictionary in [true, false] {
            let (bytes, decode) = trial(field, values, *compression, dictionary)?;
            trials.push(Trial {
                compression: *compression,
                dictionary,
                bytes,
                decode,
            });
        }
    }
    let fastest = trials.iter().map(|t| t.decode).min().unwrap_or_default();
    // A little slack keeps timer noise on tiny columns from deciding.
    let mut allowed = fastest.mul_f64(options.max_decode_slowdown) + Duration::from_micros(200);
    let now = current.and_then(|(codec, dictionary)| {
        trials.iter().position(|t| {
            t.dictionary == dictionary
                && t.compression
                    .to_parquet()
                    .is_ok_and(|c| std::mem::discriminant(&c) == codec)
        })
    });
    if let Some(now) = now {
        allowed = allowed.max(trials[now].decode);
    }
    let chosen = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.decode <= allowed)
        .min_by_key(|(_, t)| (t.bytes, t.decode))
        .map_or(0, |(i, _)| i);
    Ok(Advice {
        distinct_share: distinct_share(values)?,
        trials,
        chosen,
        now,
    })
}

/// What [`advise`] found for one column.
struct Advice {
    trials: Vec<Trial>,
    chosen: usize,
    /// The trial like the column's setting now, if one was.
    now: Option<usize>,
    distinct_share: f64,
}

/// How each column of the dataset's first file is written.
async fn current_settings(dataset: &Dataset) -> Result<BTreeMap<String, Current>> {
    let Some(file) = dataset.snapshot().files().next().cloned() else {
        return Ok(BTreeMap::new());
    };
    let footer = dataset.file_metadata(&file).await?;
    let mut settings = BTreeMap::new();
    if let Some(row_group) = footer.row_groups().first() {
        for chunk in row_group.columns() {
            let name = chunk.column_path().string();
            let dictionary = chunk.dictionary_page_offset().is_some();
            settings.insert(
                name,
                (std::mem::discriminant(&chunk.compression()), dictionary),
            );
        }
    }
    Ok(settings)
}

/// The bytes of `values` written as one Parquet column with `compression` and
/// `dictionary`, and the best of three times to read them back.
fn trial(
    field: &Field,
    values: &ArrayRef,
    compression: CompressionSpec,
    dictionary: bool,
) -> Result<(u64, Duration)> {
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let batch = RecordBatch::try_new(schema.clone(), vec![values.clone()])?;
    let properties = WriterProperties::builder()
        .set_compression(compression.to_parquet()?)
        .set_dictionary_enabled(dictionary)
        .set_max_row_group_row_count(Some(values.len().max(1)))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(properties))
        .map_err(dala_dataset::Error::from)?;
    writer.write(&batch).map_err(dala_dataset::Error::from)?;
    writer.close().map_err(dala_dataset::Error::from)?;
    let encoded = ::bytes::Bytes::from(buffer);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.clone())
            .and_then(|b| b.with_batch_size(8192).build())
            .map_err(dala_dataset::Error::from)?;
        for batch in reader {
            batch?;
        }
        best = best.min(started.elapsed());
    }
    Ok((encoded.len() as u64, best))
}

/// Distinct values as a share of the non-null values.
fn distinct_share(values: &ArrayRef) -> Result<f64> {
    let present = values.len() - values.null_count();
    if present == 0 {
        return Ok(0.0);
    }
    let converter = RowConverter::new(vec![SortField::new(values.data_type().clone())])?;
    let rows = converter.convert_columns(std::slice::from_ref(values))?;
    let distinct: HashSet<&[u8]> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| values.is_valid(*i))
        .map(|(_, r)| r.data())
        .collect();
    Ok(distinct.len() as f64 / present as f64)
}
