//! [`Catalog`]: named datasets in namespaces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use dala_cache::{Cache, CacheMode};
use dala_dataset::{Dataset, Engine, WriteOptions, WriteResult};
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};
use crate::log::CatalogLog;
use crate::model::{CatalogState, StoreCache, StoreEntry, TableEntry, check_name, split_name};
use crate::query::Engines;
use crate::results::ResultCache;

/// The environment variable that names the catalog (a path or URL of its JSON file).
pub const CATALOG_VARIABLE: &str = "DALA_CATALOG";

/// The catalog used when none is named: `catalog/catalog.json` under the current folder.
pub const DEFAULT_CATALOG: &str = "catalog/catalog.json";

/// How a table is created or registered.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// Where the dataset goes (default: `<namespace>/<table>` beside the catalog file, or
    /// inside `store`).
    pub location: Option<String>,
    /// The named store the location is inside.
    pub store: Option<String>,
    /// The table's default engine.
    pub default_engine: Option<Engine>,
    /// The table's write defaults.
    pub write: crate::model::WriteDefaults,
    /// What the table holds.
    pub description: Option<String>,
}

/// What `describe` reports about a table.
#[derive(Debug, Clone)]
pub struct TableDescription {
    /// The full name.
    pub name: String,
    /// Where the dataset is.
    pub location: String,
    /// The latest version.
    pub version: u64,
    /// Versions in the log (the latest plus one).
    pub versions: u64,
    /// Columns and types.
    pub schema: SchemaRef,
    /// Partition columns.
    pub partitioning: Vec<String>,
    /// Partitions holding files.
    pub partitions: usize,
    /// Data files.
    pub files: usize,
    /// Rows.
    pub rows: u64,
    /// Bytes of data files.
    pub bytes: u64,
    /// The catalog entry (for a view: its stored result's location).
    pub entry: TableEntry,
    /// The view's definition, when `name` is a view.
    pub view: Option<crate::model::ViewEntry>,
}

/// Named datasets in namespaces, kept in a JSON file that changes atomically.
#[derive(Debug)]
pub struct Catalog {
    log: CatalogLog,
    state: CatalogState,
    engines: Engines,
    results: Option<Arc<ResultCache>>,
    /// The caches of named stores that have cache settings, made on first use, with the
    /// settings each was made from.
    store_caches: Mutex<HashMap<String, (StoreCache, Arc<Cache>)>>,
}

impl Catalog {
    /// Keeps query answers in `cache` and serves a query from it while no table it reads
    /// has a new version (see [`ResultCache`]).
    pub fn with_result_cache(mut self, cache: Arc<ResultCache>) -> Self {
        self.results = Some(cache);
        self
    }

    /// The query-result cache, if the catalog has one.
    pub fn result_cache(&self) -> Option<&Arc<ResultCache>> {
        self.results.as_ref()
    }

    /// Opens the catalog whose file is at `location` (a path or URL). A catalog that does
    /// not exist yet is empty, and is created by its first change.
    pub async fn open(location: &str) -> Result<Catalog> {
        let log = CatalogLog::new(location)?;
        let state = log.load().await?.unwrap_or_default();
        Ok(Catalog {
            log,
            state,
            engines: Engines::default(),
            results: None,
            store_caches: Mutex::default(),
        })
    }

    /// Opens the catalog named by `DALA_CATALOG`, else [`DEFAULT_CATALOG`].
    pub async fn open_default() -> Result<Catalog> {
        let location =
            std::env::var(CATALOG_VARIABLE).unwrap_or_else(|_| DEFAULT_CATALOG.to_string());
        Catalog::open(&location).await
    }

    /// Creates the catalog file if it does not exist (an empty catalog at version 0).
    pub async fn init(location: &str) -> Result<Catalog> {
        let mut catalog = Catalog::open(location).await?;
        if catalog.log.load().await?.is_none() {
            catalog.state = catalog.log.commit(|_| Ok(())).await?;
        }
        Ok(catalog)
    }

    /// Where the catalog file is.
    pub fn location(&self) -> &str {
        &self.log.url
    }

    /// The catalog as last read or changed by this handle.
    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    pub(crate) fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Reads the latest state (other processes may have changed it).
    pub async fn reload(&mut self) -> Result<()> {
        self.state = self.log.load().await?.unwrap_or_default();
        Ok(())
    }

    /// Commits `change` to the latest state (retried if another process commits first).
    pub(crate) async fn apply<F>(&mut self, change: F) -> Result<()>
    where
        F: Fn(&mut CatalogState) -> Result<()>,
    {
        self.state = self.log.commit(change).await?;
        Ok(())
    }

    /// Creates a namespace (and its parents).
    pub async fn create_namespace(
        &mut self,
        name: &str,
        description: Option<String>,
    ) -> Result<()> {
        check_name(name)?;
        self.apply(|state| {
            if state.namespaces.contains_key(name) {
                return Err(Error::AlreadyExists {
                    kind: "namespace",
                    name: name.to_string(),
                });
            }
            add_namespace(state, name);
            if let Some(ns) = state.namespaces.get_mut(name) {
                ns.description = description.clone();
            }
            Ok(())
        })
        .await
    }

    /// Adds a named store (credentials are never stored). Its URL and cache settings are
    /// checked first: a store that could not be used is refused, naming the setting.
    pub async fn create_store(&mut self, name: &str, store: StoreEntry) -> Result<()> {
        check_name(name)?;
        let root = self.resolve_location(&store.url);
        dala_dataset::store::resolve_with(
            &root,
            &store_options(&store),
            &dala_dataset::store::CacheChoice::Off,
        )
        .map_err(|e| Error::InvalidSetting {
            store: name.to_string(),
            setting: "url".into(),
            message: e.to_string(),
        })?;
        if let Some(cache) = &store.cache {
            cache.options(name, self.log.local_dir.as_deref())?;
        }
        self.apply(|state| {
            if state.stores.contains_key(name) {
                return Err(Error::AlreadyExists {
                    kind: "store",
                    name: name.to_string(),
                });
            }
            state.stores.insert(name.to_string(), store.clone());
            Ok(())
        })
        .await
    }

    /// Removes a named store. Refused while tables live in it (the error names them); the
    /// store's files are left alone.
    pub async fn drop_store(&mut self, name: &str) -> Result<()> {
        self.apply(|state| {
            let users: Vec<String> = state
                .namespaces
                .iter()
                .flat_map(|(namespace, ns)| {
                    ns.tables
                        .iter()
                        .filter(|(_, entry)| entry.store.as_deref() == Some(name))
                        .map(move |(table, _)| format!("{namespace}.{table}"))
                })
                .collect();
            if !users.is_empty() {
                return Err(Error::InUse {
                    kind: "store",
                    name: name.to_string(),
                    users,
                });
            }
            match state.stores.remove(name) {
                Some(_) => Ok(()),
                None => Err(Error::NotFound {
                    kind: "store",
                    name: name.to_string(),
                    suggestions: suggestions(name, state.stores.keys()),
                }),
            }
        })
        .await
    }

    /// Writes `data` as a new dataset and registers it as `name` (`namespace.table`), with
    /// the table's write defaults. The name is checked first; the dataset is written
    /// before the catalog changes, so a failed write leaves the catalog as it was.
    pub async fn create_table<I>(
        &mut self,
        name: &str,
        data: I,
        options: TableOptions,
    ) -> Result<(Dataset, WriteResult)>
    where
        I: IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    {
        let (namespace, table) = full_name(name)?;
        self.reload().await?;
        check_free(&self.state, namespace, table)?;
        let entry = self.entry_for(namespace, table, &options);
        let location = self.resolve(&entry)?;
        let write = WriteOptions {
            mode: dala_dataset::WriteMode::Append,
            ..options.write.to_options()?
        };
        let (dataset, result) = self.builder(&entry, &location)?.write(data, &write).await?;
        self.insert_table(namespace, table, entry).await?;
        Ok((dataset, result))
    }

    /// Registers an existing dataset (or a hive folder, which dala adopts) as `name`.
    pub async fn register(
        &mut self,
        name: &str,
        location: &str,
        options: TableOptions,
    ) -> Result<()> {
        let (namespace, table) = full_name(name)?;
        let entry = TableEntry {
            location: location.to_string(),
            ..self.entry_for(namespace, table, &options)
        };
        self.open_entry(&entry).await?;
        self.insert_table(namespace, table, entry).await
    }

    async fn insert_table(
        &mut self,
        namespace: &str,
        table: &str,
        entry: TableEntry,
    ) -> Result<()> {
        let name = format!("{namespace}.{table}");
        self.apply(|state| insert_table(state, &name, entry.clone()))
            .await
    }

    fn entry_for(&self, namespace: &str, table: &str, options: &TableOptions) -> TableEntry {
        let location = options.location.clone().unwrap_or_else(|| {
            let mut path: Vec<&str> = namespace.split('.').collect();
            path.push(table);
            path.join("/")
        });
        TableEntry {
            location,
            store: options.store.clone(),
            default_engine: options.default_engine,
            write: options.write.clone(),
            description: options.description.clone(),
        }
    }

    /// How to record a dataset given as `location` (a URL, or a path from the current
    /// folder): a URL as it is; a path relative to the catalog file's folder when it is
    /// inside it (so the catalog folder can move), else absolute.
    pub fn location_for(&self, location: &str) -> Result<String> {
        if location.contains("://") {
            return Ok(location.to_string());
        }
        let absolute = std::path::absolute(location).map_err(|e| Error::InvalidName {
            name: location.to_string(),
            reason: e.to_string(),
        })?;
        if let Some(dir) = &self.log.local_dir
            && let Ok(inside) = absolute.strip_prefix(dir)
        {
            return Ok(inside.display().to_string());
        }
        Ok(absolute.display().to_string())
    }

    /// Opens a table entry's dataset at its latest version, through its named store's
    /// settings when it has one.
    pub async fn open_entry(&self, entry: &TableEntry) -> Result<Dataset> {
        let location = self.resolve(entry)?;
        Ok(self.builder(entry, &location)?.open().await?)
    }

    /// A dataset builder for `location` with the entry's store settings (endpoint,
    /// region, plain HTTP). Credentials come from the environment.
    fn builder(&self, entry: &TableEntry, location: &str) -> Result<dala_dataset::DatasetBuilder> {
        let mut builder = Dataset::builder(location);
        if let Some(name) = &entry.store {
            let store = self.store(name)?;
            for (key, value) in store_options(store) {
                builder = builder.with_storage_option(key, value);
            }
            // A store with cache settings reads through its own cache, or none when they
            // (or `DALA_CACHE=off`) turn it off.
            if store.cache.is_some() {
                builder = match self.store_cache(name)? {
                    Some(cache) => builder.with_cache(cache),
                    None => builder.without_cache(),
                };
            }
        }
        Ok(builder)
    }

    /// The cache of named store `name`, when the store has cache settings (made with
    /// them on first use, then shared by every table of the store); `None` when it has
    /// none, or they or `DALA_CACHE=off` turn the cache off.
    pub fn store_cache(&self, name: &str) -> Result<Option<Arc<Cache>>> {
        let Some(settings) = &self.store(name)?.cache else {
            return Ok(None);
        };
        if settings.off || CacheMode::from_env()? == CacheMode::Off {
            return Ok(None);
        }
        let mut caches = self
            .store_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((made_from, cache)) = caches.get(name)
            && made_from == settings
        {
            return Ok(Some(cache.clone()));
        }
        let options = settings.options(name, self.log.local_dir.as_deref())?;
        let cache = Cache::new(options).map_err(|e| Error::InvalidSetting {
            store: name.to_string(),
            setting: "cache".into(),
            message: e.to_string(),
        })?;
        caches.insert(name.to_string(), (settings.clone(), cache.clone()));
        Ok(Some(cache))
    }

    /// A named store.
    fn store(&self, name: &str) -> Result<&StoreEntry> {
        self.state.stores.get(name).ok_or_else(|| Error::NotFound {
            kind: "store",
            name: name.to_string(),
            suggestions: suggestions(name, self.state.stores.keys()),
        })
    }

    /// The dataset location of a table entry: in its store, absolute, or relative to the
    /// catalog file's folder.
    pub fn resolve(&self, entry: &TableEntry) -> Result<String> {
        if let Some(store) = &entry.store {
            let root = self.resolve_location(&self.store(store)?.url);
            return Ok(format!(
                "{}/{}",
                root.trim_end_matches('/'),
                entry.location.trim_start_matches('/')
            ));
        }
        Ok(self.resolve_location(&entry.location))
    }

    /// A recorded location (of a table or a store's root) as a URL or path: as it is
    /// when absolute, else under the catalog file's folder.
    fn resolve_location(&self, location: &str) -> String {
        if location.contains("://") || std::path::Path::new(location).is_absolute() {
            return location.to_string();
        }
        match &self.log.local_dir {
            Some(dir) => dir.join(location).display().to_string(),
            None => format!(
                "{}/{}",
                self.log.url.rsplit_once('/').map_or("", |(d, _)| d),
                location
            ),
        }
    }

    /// The full name (`namespace.table`) a name refers to: a full name as it is, or a
    /// short name that exactly one namespace holds.
    pub fn resolve_name(&self, name: &str) -> Result<String> {
        if let (Some(namespace), table) = split_name(name)
            && self
                .state
                .namespaces
                .get(namespace)
                .is_some_and(|ns| ns.tables.contains_key(table) || ns.views.contains_key(table))
        {
            return Ok(name.to_string());
        }
        if !name.contains('.') {
            let candidates: Vec<String> = self
                .list(None)
                .into_iter()
                .chain(self.list_views(None))
                .filter(|full| split_name(full).1 == name)
                .collect();
            match candidates.len() {
                1 => return Ok(candidates.into_iter().next().unwrap_or_default()),
                0 => {}
                _ => {
                    return Err(Error::Ambiguous {
                        name: name.to_string(),
                        candidates,
                    });
                }
            }
        }
        Err(Error::NotFound {
            kind: "table",
            name: name.to_string(),
            suggestions: suggestions(
                name,
                self.list(None).iter().chain(self.list_views(None).iter()),
            ),
        })
    }

    /// The catalog entry of a table.
    pub fn table(&self, name: &str) -> Result<&TableEntry> {
        let full = self.resolve_name(name)?;
        let (namespace, table) = split_name(&full);
        self.state
            .namespaces
            .get(namespace.unwrap_or_default())
            .and_then(|ns| ns.tables.get(table))
            .ok_or_else(|| Error::NotFound {
                kind: "table",
                name: name.to_string(),
                suggestions: Vec::new(),
            })
    }

    /// Opens a table's (or a view's) dataset at its latest version.
    pub async fn load(&self, name: &str) -> Result<Dataset> {
        let full = self.resolve_name(name)?;
        match self.table(&full) {
            Ok(entry) => self.open_entry(entry).await,
            Err(_) => {
                let entry = self.view(&full)?.result_entry();
                self.open_entry(&entry).await
            }
        }
    }

    /// Removes a table or a view from the catalog; with `purge`, deletes its dataset's files too
    /// (after the catalog no longer names it).
    pub async fn drop_table(&mut self, name: &str, purge: bool) -> Result<()> {
        self.reload().await?;
        let full = self.resolve_name(name)?;
        let location = match self.table(&full) {
            Ok(entry) => self.resolve(entry)?,
            Err(_) => self.resolve(&self.view(&full)?.result_entry())?,
        };
        let (namespace, table) = split_name(&full);
        let namespace = namespace.unwrap_or_default().to_string();
        let table = table.to_string();
        self.apply(|state| {
            let removed = state.namespaces.get_mut(&namespace).and_then(|ns| {
                ns.tables
                    .remove(&table)
                    .map(|_| ())
                    .or_else(|| ns.views.remove(&table).map(|_| ()))
            });
            match removed {
                Some(()) => Ok(()),
                None => Err(Error::NotFound {
                    kind: "table",
                    name: full.clone(),
                    suggestions: Vec::new(),
                }),
            }
        })
        .await?;
        if purge {
            let resolved = dala_dataset::store::resolve(&location, &HashMap::new())?;
            let store = resolved.store;
            let paths: Vec<_> = {
                use futures::TryStreamExt;
                store
                    .list(Some(&resolved.root))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await?
            };
            for path in paths {
                store.delete(&path).await?;
            }
        }
        Ok(())
    }

    /// Renames a table (its dataset stays where it is).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let (to_namespace, to_table) = full_name(to)?;
        self.reload().await?;
        let from = self.resolve_name(from)?;
        let (namespace, table) = split_name(&from);
        let (namespace, table) = (namespace.unwrap_or_default().to_string(), table.to_string());
        self.apply(|state| {
            check_free(state, to_namespace, to_table)?;
            let entry = state
                .namespaces
                .get_mut(&namespace)
                .and_then(|ns| ns.tables.remove(&table))
                .ok_or_else(|| Error::NotFound {
                    kind: "table",
                    name: from.clone(),
                    suggestions: Vec::new(),
                })?;
            add_namespace(state, to_namespace);
            if let Some(ns) = state.namespaces.get_mut(to_namespace) {
                ns.tables.insert(to_table.to_string(), entry);
            }
            Ok(())
        })
        .await
    }

    /// Full names of the tables, sorted; only those in `namespace` (and below) if given.
    pub fn list(&self, namespace: Option<&str>) -> Vec<String> {
        self.names_in(namespace, |ns| ns.tables.keys())
    }

    /// Full names of what `keys` picks from each namespace, in `namespace` (and below) if
    /// given.
    pub(crate) fn names_in<'a, K>(
        &'a self,
        namespace: Option<&str>,
        keys: impl Fn(&'a crate::model::Namespace) -> K,
    ) -> Vec<String>
    where
        K: Iterator<Item = &'a String>,
    {
        let mut names = Vec::new();
        for (ns_name, ns) in &self.state.namespaces {
            let inside = namespace.is_none_or(|wanted| {
                ns_name == wanted || ns_name.starts_with(&format!("{wanted}."))
            });
            if inside {
                names.extend(keys(ns).map(|name| format!("{ns_name}.{name}")));
            }
        }
        names
    }

    /// A table's (or a view's) schema, size and history.
    pub async fn describe(&self, name: &str) -> Result<TableDescription> {
        let full = self.resolve_name(name)?;
        let (entry, view) = match self.table(&full) {
            Ok(entry) => (entry.clone(), None),
            Err(_) => {
                let view = self.view(&full)?.clone();
                (view.result_entry(), Some(view))
            }
        };
        let location = self.resolve(&entry)?;
        let dataset = self.open_entry(&entry).await?;
        let snapshot = dataset.snapshot();
        Ok(TableDescription {
            name: full,
            location,
            version: snapshot.version(),
            versions: snapshot.version() + 1,
            schema: snapshot.schema(),
            partitioning: snapshot
                .partitioning()
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            partitions: snapshot.partitions().len(),
            files: snapshot.files().len(),
            rows: snapshot.rows(),
            bytes: snapshot.bytes(),
            entry,
            view,
        })
    }
}

/// A full table name split into namespace and table, checked.
pub(crate) fn full_name(name: &str) -> Result<(&str, &str)> {
    check_name(name)?;
    match split_name(name) {
        (Some(namespace), table) => Ok((namespace, table)),
        (None, _) => Err(Error::InvalidName {
            name: name.to_string(),
            reason: "a table needs a namespace: `namespace.table`".into(),
        }),
    }
}

/// Adds the table `name` (`namespace.table`), creating its namespaces.
pub(crate) fn insert_table(state: &mut CatalogState, name: &str, entry: TableEntry) -> Result<()> {
    let (namespace, table) = full_name(name)?;
    check_free(state, namespace, table)?;
    add_namespace(state, namespace);
    if let Some(ns) = state.namespaces.get_mut(namespace) {
        ns.tables.insert(table.to_string(), entry);
    }
    Ok(())
}

/// Fails with [`Error::AlreadyExists`] when `namespace.table` is taken.
pub(crate) fn check_free(state: &CatalogState, namespace: &str, table: &str) -> Result<()> {
    if state
        .namespaces
        .get(namespace)
        .is_some_and(|ns| ns.tables.contains_key(table) || ns.views.contains_key(table))
    {
        return Err(Error::AlreadyExists {
            kind: "table",
            name: format!("{namespace}.{table}"),
        });
    }
    Ok(())
}

/// Adds `name` and its parent namespaces where missing.
pub(crate) fn add_namespace(state: &mut CatalogState, name: &str) {
    let mut prefix = String::new();
    for segment in name.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(segment);
        state.namespaces.entry(prefix.clone()).or_default();
    }
}

/// Up to three names close to `name`.
pub(crate) fn suggestions<'a>(name: &str, names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = names
        .map(|candidate| {
            let short = split_name(candidate).1;
            let score = strsim::jaro_winkler(name, candidate)
                .max(strsim::jaro_winkler(split_name(name).1, short));
            (score, candidate)
        })
        .filter(|(score, _)| *score > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

/// The object-store options a named store's settings give (endpoint, region, plain HTTP);
/// credentials come from the environment.
fn store_options(store: &StoreEntry) -> HashMap<String, String> {
    let mut options = HashMap::new();
    if let Some(endpoint) = &store.endpoint {
        options.insert("aws_endpoint".to_string(), endpoint.clone());
    }
    if let Some(region) = &store.region {
        options.insert("aws_region".to_string(), region.clone());
    }
    if store.allow_http {
        options.insert("aws_allow_http".to_string(), "true".to_string());
    }
    options
}
