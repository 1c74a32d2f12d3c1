//! Options of writes: mode, partitioning, compression and layout of the Parquet files.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a write combines its input with the rows already in the dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WriteMode {
    /// Add the input's rows.
    #[default]
    Append,
    /// Replace every row with the input's.
    Overwrite,
    /// Replace the partitions the input has rows for; leave the others alone.
    OverwritePartitions,
    /// Add the input rows whose key is not in the dataset; leave present keys alone.
    /// Without [`WriteOptions::key`], the key is the whole row.
    Insert,
    /// Replace the rows whose key is in the input with the input's row; ignore input rows
    /// with new keys.
    Update,
    /// Update the rows whose key is in the input and insert the others.
    Upsert,
}

/// How a write treats an input whose columns differ from the dataset's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SchemaMode {
    /// The input has exactly the dataset's columns; a type is cast when that loses nothing
    /// (`Int32` into `Int64`); anything else is a `SchemaMismatch` naming the column.
    #[default]
    Strict,
    /// New input columns are added to the dataset (nullable); a column whose input type is
    /// wider is widened (`Int32` to `Int64`, `Float32` to `Float64`, timestamps to the finer
    /// unit); a nullable column the input lacks is filled with nulls. Files already written
    /// are not rewritten: scans fill the columns they lack with nulls and cast the others.
    /// Narrowing or incompatible changes are refused, naming the column.
    Merge,
}

impl FromStr for SchemaMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "strict" => Ok(SchemaMode::Strict),
            "merge" => Ok(SchemaMode::Merge),
            other => Err(Error::InvalidArgument(format!(
                "unknown schema mode {other:?} (expected strict or merge)"
            ))),
        }
    }
}

impl fmt::Display for SchemaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaMode::Strict => "strict",
            SchemaMode::Merge => "merge",
        })
    }
}

impl WriteMode {
    /// Whether the mode matches input rows to dataset rows by key.
    pub fn is_merge(self) -> bool {
        matches!(
            self,
            WriteMode::Insert | WriteMode::Update | WriteMode::Upsert
        )
    }
}

impl FromStr for WriteMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "append" => Ok(WriteMode::Append),
            "overwrite" => Ok(WriteMode::Overwrite),
            "overwrite-partitions" => Ok(WriteMode::OverwritePartitions),
            "insert" => Ok(WriteMode::Insert),
            "update" => Ok(WriteMode::Update),
            "upsert" => Ok(WriteMode::Upsert),
            other => Err(Error::InvalidArgument(format!(
                "unknown write mode {other:?} (expected append, overwrite, \
                 overwrite-partitions, insert, update or upsert)"
            ))),
        }
    }
}

impl fmt::Display for WriteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::OverwritePartitions => "overwrite-partitions",
            WriteMode::Insert => "insert",
            WriteMode::Update => "update",
            WriteMode::Upsert => "upsert",
        })
    }
}

/// A compression codec with an optional level, written `zstd:3`, `snappy`, `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CompressionSpec {
    /// The codec.
    pub codec: Codec,
    /// The level, for codecs that have one.
    pub level: Option<i32>,
}

/// A Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// No compression.
    None,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstd,
    /// LZ4 (raw).
    Lz4,
    /// Gzip.
    Gzip,
    /// Brotli.
    Brotli,
}

impl Default for CompressionSpec {
    fn default() -> Self {
        CompressionSpec {
            codec: Codec::Zstd,
            level: Some(3),
        }
    }
}

impl CompressionSpec {
    /// The Parquet writer setting.
    pub fn to_parquet(&self) -> Result<Compression> {
        let bad = |e: parquet::errors::ParquetError| {
            Error::InvalidArgument(format!("compression {self}: {e}"))
        };
        Ok(match self.codec {
            Codec::None => Compression::UNCOMPRESSED,
            Codec::Snappy => Compression::SNAPPY,
            Codec::Lz4 => Compression::LZ4_RAW,
            Codec::Zstd => Compression::ZSTD(match self.level {
                Some(l) => ZstdLevel::try_new(l).map_err(bad)?,
                None => ZstdLevel::default(),
            }),
            Codec::Gzip => Compression::GZIP(match self.level {
                Some(l) => GzipLevel::try_new(u32::try_from(l).unwrap_or(u32::MAX)).map_err(bad)?,
                None => GzipLevel::default(),
            }),
            Codec::Brotli => Compression::BROTLI(match self.level {
                Some(l) => {
                    BrotliLevel::try_new(u32::try_from(l).unwrap_or(u32::MAX)).map_err(bad)?
                }
                None => BrotliLevel::default(),
            }),
        })
    }
}

impl FromStr for CompressionSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => {
                let level = l.parse().map_err(|_| {
                    Error::InvalidArgument(format!("compression level {l:?} is not a number"))
                })?;
                (n, Some(level))
            }
            None => (s, None),
        };
        let codec = match name.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Codec::None,
            "snappy" => Codec::Snappy,
            "zstd" => Codec::Zstd,
            "lz4" | "lz4_raw" => Codec::Lz4,
            "gzip" => Codec::Gzip,
            "brotli" => Codec::Brotli,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown compression {other:?} (none, snappy, zstd, lz4, gzip, brotli)"
                )));
            }
        };
        let spec = CompressionSpec { codec, level };
        spec.to_parquet()?;
        Ok(spec)
    }
}

impl TryFrom<String> for CompressionSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<CompressionSpec> for String {
    fn from(c: CompressionSpec) -> String {
        c.to_string()
    }
}

impl fmt::Display for CompressionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.codec {
            Codec::None => "none",
            Codec::Snappy => "snappy",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
            Codec::Gzip => "gzip",
            Codec::Brotli => "brotli",
        };
        match self.level {
            Some(l) => write!(f, "{name}:{l}"),
            None => f.write_str(name),
        }
    }
}

/// A column to sort by, with its direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortColumn {
    /// The column.
    pub column: String,
    /// Largest first.
    #[serde(default)]
    pub descending: bool,
}

impl FromStr for SortColumn {
    type Err = Error;
    /// `col`, `col:asc` or `col:desc`.
    fn from_str(s: &str) -> Result<Self> {
        let (column, descending) = match s.rsplit_once(':') {
            Some((c, "desc")) => (c, true),
            Some((c, "asc")) => (c, false),
            _ => (s, false),
        };
        Ok(SortColumn {
            column: column.to_string(),
            descending,
        })
    }
}

/// Writer settings of one column, over the write's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnOptions {
    /// The column's codec and level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionSpec>,
    /// Dictionary encoding always (`true`) or never (`false`); unset, the writer decides
    /// per file from a sample (see [`WriteOptions::dictionary`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dictionary: Option<bool>,
    /// A bloom filter for the column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloom_filter: Option<bool>,
}

/// Property: the dataset's own writer settings, as JSON: `{"row_group_size": rows,
/// "columns": {name: ColumnOptions}}`. Writes, merges, deletes and rewrites of the dataset
/// use them where the write's options leave a setting at its default (see
/// [`WriteOptions::with_dataset_defaults`]). The compression advisor of `dala-optimize`
/// sets it.
pub const PROP_WRITE_DEFAULTS: &str = "write.defaults";

/// The writer settings a dataset keeps for itself (the [`PROP_WRITE_DEFAULTS`] property).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriteDefaults {
    /// Rows per row group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_group_size: Option<usize>,
    /// Settings per column.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnOptions>,
}

impl WriteDefaults {
    /// Reads the property's value.
    pub fn parse(value: &str) -> Result<Self> {
        serde_json::from_str(value)
            .map_err(|e| Error::InvalidArgument(format!("property {PROP_WRITE_DEFAULTS}: {e}")))
    }

    /// The defaults a dataset with `properties` keeps (none when it has no
    /// [`PROP_WRITE_DEFAULTS`] property, or an empty one).
    pub fn of(properties: &BTreeMap<String, String>) -> Result<Self> {
        match properties.get(PROP_WRITE_DEFAULTS) {
            Some(value) if !value.is_empty() => Self::parse(value),
            _ => Ok(Self::default()),
        }
    }

    /// The property's value.
    pub fn to_property(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Which statistics the Parquet files carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatisticsLevel {
    /// None: files cannot be pruned by their contents.
    None,
    /// Per column chunk (row group).
    Chunk,
    /// Per page as well, with a page index.
    #[default]
    Page,
}

/// Options of a write. Every field has a default; see [`WriteOptions::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WriteOptions {
    /// How the input combines with the dataset.
    pub mode: WriteMode,
    /// Partition columns, in order (the first write sets them; later writes may leave
    /// this empty to use the dataset's).
    pub partition_by: Vec<String>,
    /// Key columns that match input rows to dataset rows in the `insert`, `update` and
    /// `upsert` modes. Nulls in a key match nulls. Empty for `insert` means the whole row
    /// (every column the input and the dataset share); `update` and `upsert` need a key.
    pub key: Vec<String>,
    /// The timestamp (or date) column that partition columns named `year`, `month`,
    /// `week`, `day`, `hour` or `date` are derived from when the input lacks them. Recorded
    /// with the dataset when it is created, so later writes derive them too.
    pub timestamp_column: Option<String>,
    /// Drop duplicate input rows before writing: rows equal on these columns (all columns
    /// when empty) after the first are dropped. The rows seen are remembered for the whole
    /// write, so memory grows with the distinct rows of the input.
    pub unique: Option<Vec<String>>,
    /// What to do when the input's columns differ from the dataset's (default strict).
    pub schema_mode: SchemaMode,
    /// Compression codec and level (default zstd level 3).
    pub compression: CompressionSpec,
    /// Rows per row group (default 131 072).
    pub row_group_size: usize,
    /// Rows per file; a full file is closed and another begun.
    pub max_rows_per_file: Option<usize>,
    /// Approximate bytes per file before another is begun (default 128 MiB).
    pub target_file_size: u64,
    /// Sort the rows of each file by these columns. Rows wait in memory until their file
    /// is written whole, so with the memory budget exceeded a partition's rows go to
    /// several (each sorted) files.
    pub sort_by: Vec<SortColumn>,
    /// Statistics level (default page, with a page index).
    pub statistics: StatisticsLevel,
    /// Columns that get a bloom filter.
    pub bloom_filter_columns: Vec<String>,
    /// Settings of single columns (codec, dictionary, bloom filter), over the ones above.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnOptions>,
    /// Dictionary-encode columns where it pays (default true): in each file, a column is
    /// dictionary-encoded when at most half of its first 4096 values are distinct.
    pub dictionary: bool,
    /// Files open for writing at once across partitions (default 128); the largest is
    /// closed when a new one would exceed this.
    pub max_open_files: usize,
    /// Memory budget of a write (default 256 MiB): rows waiting to be encoded, rows being
    /// encoded, and encoded bytes not yet stored. Past half of it, the largest partitions'
    /// rows are encoded early, as row groups smaller than `row_group_size`.
    pub max_buffered_bytes: usize,
    /// Free-form metadata recorded in the commit.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Dataset properties this commit sets: `checkpoint.interval` (commits between
    /// checkpoints, default 100) and `retention.seconds` (keep removed files for vacuum
    /// instead of deleting them when the commit lands).
    pub properties: BTreeMap<String, String>,
    /// With `overwrite-partitions`: partitions to replace even when the input has no rows
    /// for them (each the values of the partition columns, in order), so that one commit
    /// can also empty them. Not recorded in the log's options.
    #[serde(skip)]
    pub replace_partitions: Vec<Vec<crate::scalar::Scalar>>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            mode: WriteMode::Append,
            partition_by: Vec::new(),
            key: Vec::new(),
            timestamp_column: None,
            unique: None,
            schema_mode: SchemaMode::Strict,
            compression: CompressionSpec::default(),
            row_group_size: 131_072,
            max_rows_per_file: None,
            target_file_size: 128 * 1024 * 1024,
            sort_by: Vec::new(),
            statistics: StatisticsLevel::Page,
            bloom_filter_columns: Vec::new(),
            columns: BTreeMap::new(),
            dictionary: true,
            max_open_files: 128,
            max_buffered_bytes: 256 * 1024 * 1024,
            metadata: BTreeMap::new(),
            properties: BTreeMap::new(),
            replace_partitions: Vec::new(),
        }
    }
}

impl WriteOptions {
    /// Sets the mode.
    pub fn with_mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the partition columns.
    pub fn with_partition_by<S: Into<String>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.partition_by = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the schema mode.
    pub fn with_schema_mode(mut self, mode: SchemaMode) -> Self {
        self.schema_mode = mode;
        self
    }

    /// Sets the key columns of the merge modes.
    pub fn with_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.key = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the rows per row group.
    pub fn with_row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows;
        self
    }

    /// Sets the rows per file.
    pub fn with_max_rows_per_file(mut self, rows: usize) -> Self {
        self.max_rows_per_file = Some(rows);
        self
    }

    /// These options with the dataset's own writer settings ([`PROP_WRITE_DEFAULTS`] in
    /// `properties`) filled in: the row-group size when these leave it at its default, and
    /// the settings of every column these do not set themselves.
    pub fn with_dataset_defaults(&self, properties: &BTreeMap<String, String>) -> Result<Self> {
        let defaults = WriteDefaults::of(properties)?;
        let mut options = self.clone();
        if let Some(rows) = defaults.row_group_size
            && options.row_group_size == WriteOptions::default().row_group_size
        {
            options.row_group_size = rows;
        }
        for (column, settings) in defaults.columns {
            options.columns.entry(column).or_insert(settings);
        }
        Ok(options)
    }

    /// Checks the options that can be checked without the data.
    pub fn validate(&self) -> Result<()> {
        if self.row_group_size == 0 {
            return Err(Error::InvalidArgument(
                "row_group_size must be at least 1".into(),
            ));
        }
        if self.max_rows_per_file == Some(0) {
            return Err(Error::InvalidArgument(
                "max_rows_per_file must be at least 1".into(),
            ));
        }
        if self.max_open_files == 0 {
            return Err(Error::InvalidArgument(
                "max_open_files must be at least 1".into(),
            ));
        }
        self.compression.to_parquet()?;
        for settings in self.columns.values() {
            if let Some(compression) = &settings.compression {
                compression.to_parquet()?;
            }
        }
        for (key, value) in &self.properties {
            crate::snapshot::check_property(key, value)?;
        }
        if matches!(self.mode, WriteMode::Update | WriteMode::Upsert) && self.key.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} needs key columns to match rows by",
                self.mode
            )));
        }
        if let Some(duplicate) = self
            .key
            .iter()
            .enumerate()
            .find_map(|(i, k)| self.key[..i].contains(k).then_some(k))
        {
            return Err(Error::InvalidArgument(format!(
                "key column {duplicate:?} is named twice"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_specs_parse_and_print() {
        let spec: CompressionSpec = "zstd:9".parse().unwrap();
        assert_eq!(spec.to_string(), "zstd:9");
        assert!("zstd:99".parse::<CompressionSpec>().is_err());
        assert!("lzo".parse::<CompressionSpec>().is_err());
        assert_eq!("snappy".parse::<CompressionSpec>().unwrap().level, None);
    }

    #[test]
    fn options_round_trip_through_json_with_defaults() {
        let options: WriteOptions =
            serde_json::from_str(r#"{"partition_by":["year"],"compression":"snappy"}"#).unwrap();
        assert_eq!(options.partition_by, vec!["year"]);
        assert_eq!(
            options.row_group_size,
            WriteOptions::default().row_group_size
        );
        let back: WriteOptions =
            serde_json::from_str(&serde_json::to_string(&options).unwrap()).unwrap();
        assert_eq!(back, options);
    }
}
