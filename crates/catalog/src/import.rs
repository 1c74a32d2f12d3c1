//! Importing a PyDala2 catalog (`catalog.yml`): its `filesystem:` entries become named
//! stores (without credentials) and its nested `tables:` (any mapping with a `path`) become
//! tables in dotted namespaces, with their partitioning, timestamp column and write
//! arguments as write defaults. Everything lands in one catalog change.

use std::path::Path;

use serde_json::Value;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::model::{StoreEntry, TableEntry, WriteDefaults, check_name};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Stores added, by name.
    pub stores: Vec<String>,
    /// Tables added, by full name.
    pub tables: Vec<String>,
    /// Entries left out, each with the reason.
    pub skipped: Vec<(String, String)>,
    /// Things the user should know (credentials not imported, options not understood).
    pub warnings: Vec<String>,
}

impl Catalog {
    /// Imports the PyDala2 catalog file at `path` (a local YAML file). Relative paths in
    /// it are relative to its folder, as PyDala2 reads them. Names already in this catalog
    /// are skipped and reported; nothing is changed when the file cannot be read.
    pub async fn import_pydala(&mut self, path: &Path) -> Result<ImportReport> {
        let invalid = |message: String| Error::InvalidCatalog {
            location: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let yaml: Value = serde_saphyr::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let mut report = ImportReport::default();
        let mut stores = Vec::new();
        if let Some(filesystems) = yaml.get("filesystem").and_then(Value::as_object) {
            for (name, fs) in filesystems {
                match store_entry(fs, &base) {
                    Ok((store, warnings)) => {
                        report.warnings.extend(
                            warnings
                                .into_iter()
                                .map(|w| format!("filesystem {name}: {w}")),
                        );
                        stores.push((name.clone(), store));
                    }
                    Err(reason) => report.skipped.push((format!("filesystem {name}"), reason)),
                }
            }
        }
        let mut tables = Vec::new();
        if let Some(root) = yaml.get("tables").and_then(Value::as_object) {
            collect_tables(root, &mut Vec::new(), &base, &mut tables, &mut report);
        }
        self.reload().await?;
        let state = self.state();
        stores.retain(|(name, _)| {
            let taken = state.stores.contains_key(name);
            if taken {
                report.skipped.push((
                    format!("filesystem {name}"),
                    "a store by that name exists".into(),
                ));
            }
            !taken
        });
        tables.retain(|(name, _)| {
            let taken = self.resolve_name(name).is_ok_and(|full| full == *name);
            if taken {
                report
                    .skipped
                    .push((name.clone(), "a table by that name exists".into()));
            }
            !taken
        });
        report.stores = stores.iter().map(|(n, _)| n.clone()).collect();
        report.tables = tables.iter().map(|(n, _)| n.clone()).collect();
        if stores.is_empty() && tables.is_empty() {
            return Ok(report);
        }
        self.apply(|state| {
            for (name, store) in &stores {
                state.stores.insert(name.clone(), store.clone());
            }
            for (name, entry) in &tables {
                crate::catalog::insert_table(state, name, entry.clone())?;
            }
            Ok(())
        })
        .await?;
        Ok(report)
    }
}

/// A PyDala2 filesystem as a store: `file`/`local` roots are folders (relative to the YAML
/// file's folder), `s3` roots are buckets; keys and secrets are not imported.
fn store_entry(fs: &Value, base: &Path) -> std::result::Result<(StoreEntry, Vec<String>), String> {
    let text = |key: &str| fs.get(key).and_then(Value::as_str).map(str::to_string);
    let protocol = text("protocol").unwrap_or_else(|| "file".into());
    let bucket = text("bucket").unwrap_or_default();
    let mut warnings = Vec::new();
    for secret in [
        "key",
        "secret",
        "token",
        "access_key",
        "secret_key",
        "password",
    ] {
        if fs.get(secret).is_some() {
            warnings.push(format!(
                "`{secret}` was not imported: dala takes credentials from the environment (AWS_*)"
            ));
        }
    }
    let store = match protocol.as_str() {
        "file" | "local" => StoreEntry {
            url: base.join(&bucket).display().to_string(),
            ..StoreEntry::default()
        },
        "s3" | "s3a" => {
            let endpoint = text("endpoint_url").or_else(|| {
                fs.get("client_kwargs")
                    .and_then(|c| c.get("endpoint_url"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            StoreEntry {
                url: format!("s3://{}", bucket.trim_start_matches("s3://")),
                allow_http: endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
                endpoint,
                region: text("region").or_else(|| text("region_name")),
                cache: None,
            }
        }
        other => return Err(format!("protocol {other:?} is not supported (file or s3)")),
    };
    Ok((store, warnings))
}

/// Walks PyDala2's nested `tables:`: a mapping with `path` is a table, any other mapping a
/// namespace.
fn collect_tables(
    node: &serde_json::Map<String, Value>,
    prefix: &mut Vec<String>,
    base: &Path,
    out: &mut Vec<(String, TableEntry)>,
    report: &mut ImportReport,
) {
    for (key, value) in node {
        prefix.push(key.clone());
        let name = prefix.join(".");
        match value.as_object() {
            Some(table) if table.contains_key("path") => {
                match table_entry(table, base, report, &name) {
                    Ok(entry) if prefix.len() >= 2 && check_name(&name).is_ok() => {
                        out.push((name.clone(), entry));
                    }
                    Ok(_) => report.skipped.push((
                        name.clone(),
                        "needs a namespace and a name of letters, digits, `_` or `-`".into(),
                    )),
                    Err(reason) => report.skipped.push((name.clone(), reason)),
                }
            }
            Some(namespace) => collect_tables(namespace, prefix, base, out, report),
            None => {}
        }
        prefix.pop();
    }
}

fn table_entry(
    table: &serde_json::Map<String, Value>,
    base: &Path,
    report: &mut ImportReport,
    name: &str,
) -> std::result::Result<TableEntry, String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let format = text(table.get("format")).unwrap_or_else(|| "parquet".into());
    if !format.eq_ignore_ascii_case("parquet") {
        return Err(format!("format {format:?}: dala manages Parquet datasets"));
    }
    let path = text(table.get("path")).ok_or("`path` is not text")?;
    let store = text(table.get("filesystem"));
    let location = if store.is_some() || path.contains("://") || Path::new(&path).is_absolute() {
        path
    } else {
        base.join(&path).display().to_string()
    };
    let args = table.get("write_args").and_then(Value::as_object);
    let arg = |key: &str| args.and_then(|a| a.get(key));
    let mode = match text(arg("mode")).as_deref() {
        None => None,
        Some("delta") => Some("insert".to_string()),
        Some(m @ ("append" | "overwrite")) => Some(m.to_string()),
        Some(other) => {
            report
                .warnings
                .push(format!("{name}: write mode {other:?} was not imported"));
            None
        }
    };
    let mut partition_by = list(arg("partition_by"));
    if partition_by.is_empty() {
        partition_by = list(table.get("partitioning_columns"));
    }
    let write = WriteDefaults {
        mode,
        key: list(arg("delta_subset")),
        partition_by,
        compression: text(arg("compression")),
        sort_by: list(arg("sort_by")),
        timestamp_column: text(table.get("timestamp_column")),
    };
    if write.to_options().is_err() {
        report.warnings.push(format!(
            "{name}: write arguments dala cannot use were left out"
        ));
        return Ok(TableEntry {
            location,
            store,
            ..TableEntry::default()
        });
    }
    Ok(TableEntry {
        location,
        store,
        write,
        description: text(table.get("description")),
        ..TableEntry::default()
    })
}
