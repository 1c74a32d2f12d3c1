//! Materialized views: a query over catalog tables whose result is stored as a dala
//! dataset, with the version of every source it read, so that its freshness is known and
//! a refresh recomputes it from one version of each source.

use std::collections::BTreeMap;
use std::time::Instant;

use dala_dataset::layout::parse_partition_values;
use dala_dataset::{
    Dataset, Engine, Operation, RecordBatchStream, Scalar, WriteMode, WriteOptions, col, lit,
};
use futures::StreamExt;

use crate::catalog::{Catalog, full_name};
use crate::error::{Error, Result};
use crate::model::{RefreshInfo, RefreshMode, ViewEntry, split_name};

/// How a view is created.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// Where the result goes (default: `<namespace>/<view>` beside the catalog file).
    pub location: Option<String>,
    /// Partition columns of the stored result (for incremental refresh: its `by`
    /// columns, which are used when this is empty).
    pub partition_by: Vec<String>,
    /// Full or incremental refresh.
    pub refresh: RefreshMode,
    /// What the view holds.
    pub description: Option<String>,
}

/// Whether a view is up to date with its sources.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewStatus {
    /// The view's full name.
    pub name: String,
    /// Each source: its full name, the version the view was computed from, its latest
    /// version (`None` when the source no longer exists).
    pub sources: Vec<(String, u64, Option<u64>)>,
    /// The last refresh.
    pub last_refresh: Option<RefreshInfo>,
}

impl ViewStatus {
    /// Whether every source is at the version the view was computed from.
    pub fn is_fresh(&self) -> bool {
        self.sources
            .iter()
            .all(|(_, read, latest)| Some(*read) == *latest)
    }

    /// Versions behind, per source (a dropped source counts as behind).
    pub fn behind(&self) -> Vec<(String, Option<u64>)> {
        self.sources
            .iter()
            .map(|(name, read, latest)| (name.clone(), latest.map(|l| l.saturating_sub(*read))))
            .collect()
    }
}

impl Catalog {
    /// Creates the view `name` (`namespace.view`) over `sql` and computes it (a full
    /// refresh). The catalog records it only once its result is stored.
    pub async fn create_view(&mut self, name: &str, sql: &str, options: ViewOptions) -> Result<()> {
        let (namespace, view) = full_name(name)?;
        self.reload().await?;
        if self.resolve_name(name).is_ok_and(|full| full == name) {
            return Err(Error::AlreadyExists {
                kind: "table",
                name: name.to_string(),
            });
        }
        let location = options.location.clone().unwrap_or_else(|| {
            let mut path: Vec<&str> = namespace.split('.').collect();
            path.push(view);
            path.join("/")
        });
        let mut partition_by = options.partition_by.clone();
        if let RefreshMode::Incremental { by, .. } = &options.refresh {
            if partition_by.is_empty() {
                partition_by = by.clone();
            }
            if &partition_by != by {
                return Err(Error::Query {
                    message: format!(
                        "an incremental view is partitioned by its `by` columns ({}), not {}",
                        by.join(", "),
                        partition_by.join(", ")
                    ),
                });
            }
        }
        let mut entry = ViewEntry {
            sql: sql.to_string(),
            location,
            partition_by,
            refresh: options.refresh.clone(),
            sources: BTreeMap::new(),
            last_refresh: None,
            description: options.description.clone(),
        };
        // Checked before anything is written.
        let planned = self.plan_query(sql, Engine::Duckdb).await?;
        if let RefreshMode::Incremental { by, .. } = &entry.refresh {
            for table in &planned.tables {
                let partitioning: Vec<&str> = table
                    .dataset
                    .snapshot()
                    .partitioning()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                if !by.iter().all(|b| partitioning.contains(&b.as_str())) {
                    return Err(Error::Query {
                        message: format!(
                            "incremental refresh by {} needs every source partitioned by it; \
                             {} is partitioned by [{}]",
                            by.join(", "),
                            table.name,
                            partitioning.join(", ")
                        ),
                    });
                }
            }
        }
        self.compute(&mut entry).await?;
        let entry = &entry;
        self.apply(|state| {
            crate::catalog::check_free(state, namespace, view)?;
            crate::catalog::add_namespace(state, namespace);
            if let Some(ns) = state.namespaces.get_mut(namespace) {
                ns.views.insert(view.to_string(), entry.clone());
            }
            Ok(())
        })
        .await
    }

    /// Brings the view up to date in one commit: a full recompute, or for an incremental
    /// view the partitions its sources' commits touched since the last refresh (a full
    /// recompute when that is cheaper or not possible; the result says why).
    pub async fn refresh(&mut self, name: &str) -> Result<RefreshInfo> {
        self.refresh_with(name, false).await
    }

    /// Recomputes the view in full, whatever its refresh mode, in one commit.
    pub async fn refresh_full(&mut self, name: &str) -> Result<RefreshInfo> {
        self.refresh_with(name, true).await
    }

    async fn refresh_with(&mut self, name: &str, force_full: bool) -> Result<RefreshInfo> {
        self.reload().await?;
        let full = self.resolve_name(name)?;
        let mut entry = self.view(&full)?.clone();
        let mode = if force_full {
            RefreshMode::Full
        } else {
            entry.refresh.clone()
        };
        let fallback = match mode.clone() {
            RefreshMode::Full => None,
            RefreshMode::Incremental { by, max_share } => {
                match self.changed_keys(&entry, &by).await? {
                    Changes::Keys(keys, sources) => {
                        let view = self
                            .load(&full)
                            .await
                            .map(|d| d.snapshot().partitions().len())
                            .unwrap_or(0);
                        if (keys.len() as f64) > max_share * (view.max(1) as f64) {
                            Some(format!(
                                "{} of {view} partitions changed (more than {:.0}%)",
                                keys.len(),
                                max_share * 100.0
                            ))
                        } else {
                            self.compute_keys(&mut entry, &by, keys, sources).await?
                        }
                    }
                    Changes::Full(reason) => Some(reason),
                }
            }
        };
        let incremental_done =
            matches!(mode, RefreshMode::Incremental { .. }) && fallback.is_none();
        if !incremental_done {
            self.compute(&mut entry).await?;
            if let Some(info) = &mut entry.last_refresh {
                info.fallback = fallback;
            }
        }
        let (namespace, view) = split_name(&full);
        let (namespace, view) = (namespace.unwrap_or_default().to_string(), view.to_string());
        let updated = entry.clone();
        dala_dataset::failpoint::hit("view:after-data");
        self.apply(|state| {
            let slot = state
                .namespaces
                .get_mut(&namespace)
                .and_then(|ns| ns.views.get_mut(&view))
                .ok_or_else(|| Error::NotFound {
                    kind: "view",
                    name: full.clone(),
                    suggestions: Vec::new(),
                })?;
            *slot = updated.clone();
            Ok(())
        })
        .await?;
        entry.last_refresh.ok_or_else(|| Error::Query {
            message: "the refresh recorded nothing".into(),
        })
    }

    /// The `by` values the sources' commits since the view's versions touched, or why
    /// only a full refresh is right.
    async fn changed_keys(&self, entry: &ViewEntry, by: &[String]) -> Result<Changes> {
        let mut keys: BTreeMap<Vec<String>, Vec<Scalar>> = BTreeMap::new();
        let mut sources = BTreeMap::new();
        for (source, read) in &entry.sources {
            let dataset = self.load(source).await?;
            sources.insert(source.clone(), dataset.clone());
            if dataset.version() == *read {
                continue;
            }
            let partitioning = dataset.snapshot().partitioning().to_vec();
            let Some(positions) = by
                .iter()
                .map(|b| partitioning.iter().position(|p| &p.name == b))
                .collect::<Option<Vec<usize>>>()
            else {
                return Ok(Changes::Full(format!(
                    "{source} is not partitioned by {}",
                    by.join(", ")
                )));
            };
            for version in read + 1..=dataset.version() {
                let commit = dataset.log_store().read_commit(version).await?;
                let rewrites_all = matches!(
                    commit.operation,
                    Operation::Overwrite | Operation::Create | Operation::Adopt
                );
                if rewrites_all || commit.schema.is_some() || commit.partitioning.is_some() {
                    return Ok(Changes::Full(format!(
                        "{source} version {} ({}) changed more than partitions",
                        commit.version, commit.operation
                    )));
                }
                for dir in &commit.partitions {
                    let values =
                        parse_partition_values(&partitioning, &format!("{dir}/f.parquet"))?;
                    let key: Vec<Scalar> = positions.iter().map(|i| values[*i].clone()).collect();
                    let text: Vec<String> = key
                        .iter()
                        .map(|v| v.to_partition_text().unwrap_or_default())
                        .collect();
                    keys.insert(text, key);
                }
            }
        }
        Ok(Changes::Keys(keys.into_values().collect(), sources))
    }

    /// Recomputes the view's rows for `keys` only, from the `sources` the keys were found
    /// in (at those versions), and replaces those partitions in one commit. Returns why a
    /// full refresh is needed instead, if the query reads a table that is not a source.
    async fn compute_keys(
        &self,
        entry: &mut ViewEntry,
        by: &[String],
        keys: Vec<Vec<Scalar>>,
        sources: BTreeMap<String, Dataset>,
    ) -> Result<Option<String>> {
        let versions: BTreeMap<String, u64> = sources
            .iter()
            .map(|(name, dataset)| (name.clone(), dataset.version()))
            .collect();
        let started = Instant::now();
        let location = self.resolve(&entry.result_entry())?;
        if keys.is_empty() {
            entry.sources = versions.clone();
            let rows = Dataset::open(&location).await?.snapshot().rows();
            entry.last_refresh = Some(refresh_info("incremental", started, rows, Some(0)));
            return Ok(None);
        }
        let filter = keys
            .iter()
            .map(|key| {
                by.iter()
                    .zip(key)
                    .map(|(b, v)| col(b.as_str()).eq(lit(v.clone())))
                    .reduce(|a, b| a.and(b))
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|alternatives| alternatives.into_iter().reduce(|a, b| a.or(b)))
            .ok_or_else(|| Error::Query {
                message: "no columns to refresh by".into(),
            })?;
        let sql = format!("SELECT * FROM ({}) AS dala_view WHERE {filter}", entry.sql);
        let mut planned = self.plan_query_with(&sql, Engine::Duckdb, sources).await?;
        for table in &mut planned.tables {
            if versions.get(&table.name) != Some(&table.dataset.version()) {
                return Ok(Some(format!(
                    "{} is not one of the view's recorded sources",
                    table.name
                )));
            }
            table.filter = Some(match table.filter.take() {
                Some(existing) => existing.and(filter.clone()),
                None => filter.clone(),
            });
        }
        let stream = self.run_planned(&planned, Engine::Duckdb, &[])?;
        let options = WriteOptions {
            mode: WriteMode::OverwritePartitions,
            partition_by: entry.partition_by.clone(),
            replace_partitions: keys.clone(),
            ..WriteOptions::default()
        };
        let dataset = write_stream(&location, stream, &options).await?;
        entry.sources = versions.clone();
        entry.last_refresh = Some(refresh_info(
            "incremental",
            started,
            dataset.snapshot().rows(),
            Some(keys.len()),
        ));
        Ok(None)
    }

    /// Whether the view is fresh, and how far behind each source it is.
    pub async fn status(&self, name: &str) -> Result<ViewStatus> {
        let full = self.resolve_name(name)?;
        let entry = self.view(&full)?;
        let mut sources = Vec::new();
        for (source, read) in &entry.sources {
            let latest = match self.load(source).await {
                Ok(dataset) => Some(dataset.version()),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            sources.push((source.clone(), *read, latest));
        }
        Ok(ViewStatus {
            name: full,
            sources,
            last_refresh: entry.last_refresh.clone(),
        })
    }

    /// The catalog entry of a view.
    pub fn view(&self, name: &str) -> Result<&ViewEntry> {
        let (namespace, view) = split_name(name);
        self.state()
            .namespaces
            .get(namespace.unwrap_or_default())
            .and_then(|ns| ns.views.get(view))
            .ok_or_else(|| Error::NotFound {
                kind: "view",
                name: name.to_string(),
                suggestions: crate::catalog::suggestions(name, self.list_views(None).iter()),
            })
    }

    /// Full names of the views, sorted; only those in `namespace` (and below) if given.
    pub fn list_views(&self, namespace: Option<&str>) -> Vec<String> {
        self.names_in(namespace, |ns| ns.views.keys())
    }

    /// Runs the view's query on one version of each source and stores the result,
    /// replacing the previous one in one commit; records the versions and the timing.
    async fn compute(&self, entry: &mut ViewEntry) -> Result<()> {
        let started = Instant::now();
        let planned = self.plan_query(&entry.sql, Engine::Duckdb).await?;
        let mut sources = BTreeMap::new();
        for table in &planned.tables {
            sources.insert(table.name.clone(), table.dataset.version());
        }
        let stream = self.run_planned(&planned, Engine::Duckdb, &[])?;
        let location = self.resolve(&entry.result_entry())?;
        let options = WriteOptions {
            mode: WriteMode::Overwrite,
            partition_by: entry.partition_by.clone(),
            ..WriteOptions::default()
        };
        let dataset = write_stream(&location, stream, &options).await?;
        entry.sources = sources;
        entry.last_refresh = Some(refresh_info(
            "full",
            started,
            dataset.snapshot().rows(),
            None,
        ));
        Ok(())
    }
}

/// What changed in a view's sources since its last refresh.
enum Changes {
    /// These `by` values, with the sources as they were read.
    Keys(Vec<Vec<Scalar>>, BTreeMap<String, Dataset>),
    /// A change only a full refresh handles, and why.
    Full(String),
}

fn refresh_info(kind: &str, started: Instant, rows: u64, partitions: Option<usize>) -> RefreshInfo {
    RefreshInfo {
        at_ms: chrono::Utc::now().timestamp_millis(),
        seconds: started.elapsed().as_secs_f64(),
        kind: kind.into(),
        fallback: None,
        partitions,
        rows,
    }
}

/// Writes a query's stream to the dataset at `location`. The engine streams from a
/// thread of its own; the writer pulls batch by batch (waiting on that thread, never on
/// this runtime).
async fn write_stream(
    location: &str,
    stream: RecordBatchStream,
    options: &WriteOptions,
) -> Result<Dataset> {
    let batches = futures::executor::block_on_stream(
        stream.map(|b| b.map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e)))),
    );
    let (dataset, _) = Dataset::builder(location).write(batches, options).await?;
    Ok(dataset)
}
