//! What a catalog file holds: namespaces of tables, named stores and the catalog's
//! defaults, as JSON (read and written with serde_json). Credentials are never stored:
//! stores name an endpoint, a region or a profile, and the keys come from the environment.

use std::collections::BTreeMap;

use dala_dataset::{CompressionSpec, Engine, SortColumn, WriteMode, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole catalog at one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogState {
    /// Bumped by every change.
    #[serde(default)]
    pub version: u64,
    /// The engine queries use unless told otherwise (DuckDB when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_engine: Option<Engine>,
    /// Namespaces by dotted name (`sales`, `sales.eu`).
    #[serde(default)]
    pub namespaces: BTreeMap<String, Namespace>,
    /// Named stores that table locations can be relative to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, StoreEntry>,
}

/// A namespace: tables by their short name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// What the namespace is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tables by short name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableEntry>,
    /// Materialized views by short name (names are shared with tables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub views: BTreeMap<String, ViewEntry>,
}

/// A materialized view: a query whose result is stored as a dala dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewEntry {
    /// The query, over catalog tables.
    pub sql: String,
    /// Where the result is stored (resolved like a table's location).
    pub location: String,
    /// Partition columns of the stored result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<String>,
    /// How a refresh recomputes the view.
    #[serde(default)]
    pub refresh: RefreshMode,
    /// The version of every source table the stored result was computed from.
    #[serde(default)]
    pub sources: BTreeMap<String, u64>,
    /// The last refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<RefreshInfo>,
    /// What the view holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ViewEntry {
    /// The view's stored result as a table entry (its location; its description).
    pub fn result_entry(&self) -> TableEntry {
        TableEntry {
            location: self.location.clone(),
            description: self.description.clone(),
            ..TableEntry::default()
        }
    }
}

/// How a view is refreshed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", deny_unknown_fields)]
pub enum RefreshMode {
    /// Recompute everything.
    #[default]
    Full,
    /// Recompute only the values of `by` (partition columns of every source, and of the
    /// view) that commits since the last refresh touched; everything when they are more
    /// than `max_share` of the view's partitions.
    Incremental {
        /// The columns changes are tracked by.
        by: Vec<String>,
        /// The share of partitions above which a full refresh is cheaper (default 0.5).
        #[serde(default = "default_max_share")]
        max_share: f64,
    },
}

fn default_max_share() -> f64 {
    0.5
}

/// When and how a view was last refreshed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshInfo {
    /// When it finished (milliseconds since the Unix epoch).
    pub at_ms: i64,
    /// How long it took.
    pub seconds: f64,
    /// `full` or `incremental`.
    pub kind: String,
    /// Why a refresh asked to be incremental was full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Partitions recomputed by an incremental refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<usize>,
    /// Rows in the view after it.
    pub rows: u64,
}

/// A named dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The dataset: a URL, an absolute path, a path relative to the catalog file's folder,
    /// or a path inside `store`.
    pub location: String,
    /// The named store `location` is inside, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The engine scans and queries of this table use unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_engine: Option<Engine>,
    /// How writes through the catalog go unless told otherwise.
    #[serde(default, skip_serializing_if = "WriteDefaults::is_empty")]
    pub write: WriteDefaults,
    /// What the table holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A table's write defaults (each unset field keeps dala's own default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteDefaults {
    /// `append`, `overwrite`, `overwrite-partitions`, `insert`, `update` or `upsert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Key columns of merges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Partition columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<String>,
    /// Codec and level, e.g. `zstd:3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Sort columns of each file (`col` or `col:desc`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort_by: Vec<String>,
    /// The timestamp column derived partitions come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_column: Option<String>,
}

impl WriteDefaults {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &WriteDefaults::default()
    }

    /// The write options these defaults give, checking every value.
    pub fn to_options(&self) -> Result<WriteOptions> {
        let invalid = |field: &str, e: dala_dataset::Error| Error::InvalidCatalog {
            location: "write defaults".into(),
            message: format!("{field}: {e}"),
        };
        let mut options = WriteOptions {
            key: self.key.clone(),
            partition_by: self.partition_by.clone(),
            timestamp_column: self.timestamp_column.clone(),
            ..WriteOptions::default()
        };
        if let Some(mode) = &self.mode {
            options.mode = mode.parse::<WriteMode>().map_err(|e| invalid("mode", e))?;
        }
        if let Some(compression) = &self.compression {
            options.compression = compression
                .parse::<CompressionSpec>()
                .map_err(|e| invalid("compression", e))?;
        }
        options.sort_by = self
            .sort_by
            .iter()
            .map(|s| s.parse::<SortColumn>().map_err(|e| invalid("sort_by", e)))
            .collect::<Result<_>>()?;
        options.validate().map_err(|e| invalid("options", e))?;
        Ok(options)
    }
}

/// A named store: where table locations can live, and how to reach it. No credentials:
/// those come from the environment (`AWS_*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreEntry {
    /// The root: a local folder or a URL such as `s3://bucket/prefix`.
    pub url: String,
    /// S3 endpoint (for S3-compatible servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Allow plain HTTP to the endpoint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
    /// The cache that reads of the store's tables go through. Without it, the
    /// process-wide cache applies as the environment (`DALA_CACHE`) says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<StoreCache>,
}

/// A named store's cache (`dala_cache`): a memory tier and an optional SSD tier. A setting
/// left out takes its `DALA_CACHE_*` environment value, else the default; byte sizes are
/// written as `512MiB`, `20GiB` or a plain number of bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreCache {
    /// Read the store without any cache (`DALA_CACHE=off` does so for every store).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub off: bool,
    /// Byte budget of the memory tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Directory of the SSD tier (relative to the catalog file's folder when relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Byte budget of the SSD tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// Size of the blocks that ranges are cached in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
    /// Seconds before a mutable object (`_last_checkpoint`, …) is checked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<f64>,
}

impl StoreCache {
    /// The cache options of store `store`: the environment's, changed by the settings
    /// given here. `base` is the folder a relative SSD directory is under.
    pub fn options(
        &self,
        store: &str,
        base: Option<&std::path::Path>,
    ) -> Result<dala_cache::CacheOptions> {
        let invalid = |setting: &str, message: String| Error::InvalidSetting {
            store: store.to_string(),
            setting: setting.to_string(),
            message,
        };
        let bytes = |setting: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    dala_cache::parse_bytes(v).map_err(|m| invalid(setting, format!("{v:?}: {m}")))
                })
                .transpose()
        };
        let mut options = dala_cache::CacheOptions::from_env()
            .map_err(|e| invalid("environment", e.to_string()))?;
        if let Some(memory) = bytes("memory", &self.memory)? {
            options.memory_bytes = memory;
        }
        if let Some(dir) = &self.dir {
            let dir = std::path::Path::new(dir);
            let dir = match base {
                Some(base) if dir.is_relative() => base.join(dir),
                _ => dir.to_path_buf(),
            };
            let budget = options.disk.as_ref().map(|d| d.bytes);
            let mut disk = dala_cache::DiskOptions::new(dir);
            disk.bytes = budget.unwrap_or(disk.bytes);
            options.disk = Some(disk);
        }
        if let Some(budget) = bytes("disk", &self.disk)? {
            match &mut options.disk {
                Some(disk) => disk.bytes = budget,
                None => {
                    return Err(invalid(
                        "disk",
                        "an SSD budget needs an SSD directory (`dir`, or DALA_CACHE_DIR)".into(),
                    ));
                }
            }
        }
        if let Some(block) = bytes("block", &self.block)? {
            options.block_size = block;
        }
        if let Some(seconds) = self.ttl_seconds {
            options.revalidate_after = std::time::Duration::try_from_secs_f64(seconds)
                .map_err(|e| invalid("ttl_seconds", format!("{seconds}: {e}")))?;
        }
        options
            .validate()
            .map_err(|e| invalid("cache", e.to_string()))?;
        Ok(options)
    }
}

/// Checks a dotted name: segments of letters, digits, `_` and `-`, not starting with a digit
/// or `-`.
pub fn check_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    for segment in name.split('.') {
        let mut chars = segment.chars();
        match chars.next() {
            None => return Err(invalid("an empty segment between dots")),
            Some(c) if !(c.is_alphabetic() || c == '_') => {
                return Err(invalid("a segment must start with a letter or `_`"));
            }
            _ => {}
        }
        if !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid("use letters, digits, `_` and `-` between dots"));
        }
    }
    Ok(())
}

/// `a.b.c` as namespace `a.b` and table `c` (a name without a dot has no namespace).
pub fn split_name(name: &str) -> (Option<&str>, &str) {
    match name.rsplit_once('.') {
        Some((namespace, table)) => (Some(namespace), table),
        None => (None, name),
    }
}
