//! Materialized views: a query over catalog tables whose result is stored as a dala
//! dataset, with the version of every source it read, so that its freshness is known and
//! a refresh recomputes it from one version of each source.

use std::collections::BTreeMap;
use std::time::Instant;

use dala_dataset::{Dataset, Engine, WriteMode, WriteOptions};
use futures::StreamExt;

use crate::catalog::{Catalog, full_name};
use crate::error::{Error, Result};
use crate::model::{RefreshInfo, TableEntry, ViewEntry, split_name};

/// How a view is created.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// Where the result goes (default: `<namespace>/<view>` beside the catalog file).
    pub location: Option<String>,
    /// Partition columns of the stored result.
    pub partition_by: Vec<String>,
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
        let mut entry = ViewEntry {
            sql: sql.to_string(),
            location,
            partition_by: options.partition_by.clone(),
            sources: BTreeMap::new(),
            last_refresh: None,
            description: options.description.clone(),
        };
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

    /// Recomputes the view from the latest version of every source, replacing its stored
    /// result in one commit.
    pub async fn refresh(&mut self, name: &str) -> Result<RefreshInfo> {
        self.reload().await?;
        let full = self.resolve_name(name)?;
        let mut entry = self.view(&full)?.clone();
        self.compute(&mut entry).await?;
        let (namespace, view) = split_name(&full);
        let (namespace, view) = (namespace.unwrap_or_default().to_string(), view.to_string());
        let updated = entry.clone();
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
                suggestions: crate::catalog::suggestions(name, self.list_views().iter()),
            })
    }

    /// Full names of the views, sorted.
    pub fn list_views(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (namespace, ns) in &self.state().namespaces {
            names.extend(ns.views.keys().map(|v| format!("{namespace}.{v}")));
        }
        names
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
        let location = self.resolve(&TableEntry {
            location: entry.location.clone(),
            ..TableEntry::default()
        })?;
        let options = WriteOptions {
            mode: WriteMode::Overwrite,
            partition_by: entry.partition_by.clone(),
            ..WriteOptions::default()
        };
        // The engine streams from a thread of its own; the writer pulls batch by batch
        // (waiting on that thread, never on this runtime).
        let batches = futures::executor::block_on_stream(
            stream.map(|b| b.map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e)))),
        );
        let (dataset, _) = Dataset::builder(&location).write(batches, &options).await?;
        entry.sources = sources;
        entry.last_refresh = Some(RefreshInfo {
            at_ms: chrono::Utc::now().timestamp_millis(),
            seconds: started.elapsed().as_secs_f64(),
            kind: "full".into(),
            rows: dataset.snapshot().rows(),
        });
        Ok(())
    }
}
