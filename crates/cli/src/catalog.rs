//! `dala catalog …` and `dala query`: named datasets and SQL over them.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use dala_catalog::{
    Catalog, QueryOptions, RefreshMode, StoreCache, StoreEntry, TableOptions, ViewOptions,
};
use dala_dataset::{Engine, Scalar};

use crate::Format;
use crate::output;

/// Catalog commands.
#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Create the catalog file if it does not exist.
    Init,
    /// List the tables (of one namespace and those below it).
    List {
        /// Only this namespace.
        namespace: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Show a table: location, version, rows, files, bytes, partitions and schema.
    Show {
        /// The table (`namespace.table`, or a short name one namespace holds).
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Name an existing dataset (or adopt a folder of hive Parquet) as `namespace.table`.
    Register {
        /// The name to give it.
        name: String,
        /// The dataset path or URL.
        dataset: String,
        /// What the table holds.
        #[arg(long)]
        description: Option<String>,
        /// The table's default engine.
        #[arg(long)]
        engine: Option<Engine>,
        /// The named store the dataset lives in; the dataset is then a path inside it.
        #[arg(long)]
        store: Option<String>,
    },
    /// Named stores: roots that tables live in, with their endpoint, region and cache.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Import a PyDala2 catalog (`catalog.yml`): filesystems become stores (without
    /// credentials), tables keep their paths, partitioning and write arguments.
    Import {
        /// The PyDala2 catalog file.
        file: PathBuf,
    },
    /// Remove a table from the catalog.
    Drop {
        /// The table.
        name: String,
        /// Delete the dataset's files too.
        #[arg(long)]
        purge: bool,
    },
    /// Rename a table (its files stay where they are).
    Rename {
        /// The table.
        from: String,
        /// Its new name.
        to: String,
    },
}

/// Named-store commands.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Add a named store. Credentials are never written into the catalog: they come from
    /// the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, …).
    Add {
        /// Its name.
        name: String,
        /// Its root: a folder, or a URL such as `s3://bucket/prefix`.
        url: String,
        /// S3 endpoint (for S3-compatible servers).
        #[arg(long)]
        endpoint: Option<String>,
        /// S3 region.
        #[arg(long)]
        region: Option<String>,
        /// Allow plain HTTP to the endpoint.
        #[arg(long)]
        allow_http: bool,
        /// Read the store's tables without any cache.
        #[arg(long, conflicts_with_all = ["cache_memory", "cache_dir", "cache_disk", "cache_block", "cache_ttl"])]
        no_cache: bool,
        /// Memory tier budget of the store's cache (`512MiB`, …).
        #[arg(long)]
        cache_memory: Option<String>,
        /// SSD tier directory of the store's cache (relative to the catalog's folder).
        #[arg(long)]
        cache_dir: Option<String>,
        /// SSD tier budget (`20GiB`, …).
        #[arg(long)]
        cache_disk: Option<String>,
        /// Size of the blocks that ranges are cached in.
        #[arg(long)]
        cache_block: Option<String>,
        /// Seconds before a mutable object (`_last_checkpoint`, …) is checked again.
        #[arg(long)]
        cache_ttl: Option<f64>,
    },
    /// List the named stores.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Remove a named store (refused while tables live in it; its files stay).
    Drop {
        /// The store.
        name: String,
    },
}

/// View commands.
#[derive(Subcommand)]
pub enum ViewCommand {
    /// Create a materialized view over catalog tables and compute it.
    Create {
        /// Its name (`namespace.view`).
        name: String,
        /// The query.
        sql: String,
        /// Partition columns of the stored result, comma-separated.
        #[arg(long, value_delimiter = ',')]
        partition_by: Vec<String>,
        /// Refresh incrementally by these partition columns of every source (the view is
        /// partitioned by them too), comma-separated.
        #[arg(long, value_delimiter = ',')]
        incremental_by: Vec<String>,
        /// What the view holds.
        #[arg(long)]
        description: Option<String>,
    },
    /// Bring a view up to date with the latest version of its sources (incrementally
    /// when it was created so).
    Refresh {
        /// The view.
        name: String,
        /// Recompute everything, even for an incremental view.
        #[arg(long)]
        full: bool,
    },
    /// Whether a view is fresh: versions behind per source, last refresh.
    Status {
        /// The view.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Remove a view (with --purge, its stored result too).
    Drop {
        /// The view.
        name: String,
        /// Delete the stored result's files too.
        #[arg(long)]
        purge: bool,
    },
}

/// How lists and descriptions print.
#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// JSON, for scripts.
    Json,
}

/// `dala query`.
#[derive(Args)]
pub struct QueryArgs {
    /// The SQL; tables are catalog names such as `sales.orders`.
    sql: String,
    /// duckdb (default) or polars (in builds with the `polars` feature).
    #[arg(long)]
    engine: Option<Engine>,
    /// Values for the query's placeholders (`?` or `$1`), in order; bound as text, which
    /// the engine casts to the placeholder's type.
    #[arg(long = "param")]
    params: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to this file instead of standard output (required for parquet).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Runs a catalog command on the catalog at `location`.
pub async fn run(location: &str, command: CatalogCommand) -> Result<()> {
    let mut catalog = Catalog::open(location).await?;
    match command {
        CatalogCommand::Init => {
            let catalog = Catalog::init(location).await?;
            println!(
                "catalog {} at version {}",
                catalog.location(),
                catalog.state().version
            );
        }
        CatalogCommand::List { namespace, format } => {
            let mut rows = Vec::new();
            for name in catalog.list(namespace.as_deref()) {
                let entry = catalog.table(&name)?;
                rows.push((
                    "table",
                    catalog.resolve(entry)?,
                    entry.description.clone(),
                    name,
                ));
            }
            for name in catalog.list_views(namespace.as_deref()) {
                let view = catalog.view(&name)?;
                let location = catalog.resolve(&view.result_entry())?;
                rows.push(("view", location, view.description.clone(), name));
            }
            rows.sort_by(|a, b| a.3.cmp(&b.3));
            match format {
                ListFormat::Json => {
                    let tables: Vec<_> = rows
                        .iter()
                        .map(|(kind, location, description, name)| {
                            serde_json::json!({
                                "name": name, "kind": kind, "location": location,
                                "description": description,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&tables)?);
                }
                ListFormat::Table => {
                    let mut table = comfy_table::Table::new();
                    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
                    table.set_header(["name", "kind", "location", "description"]);
                    for (kind, location, description, name) in rows {
                        table.add_row([
                            name,
                            kind.to_string(),
                            location,
                            description.unwrap_or_default(),
                        ]);
                    }
                    println!("{table}");
                }
            }
        }
        CatalogCommand::Show { name, format } => {
            let d = catalog.describe(&name).await?;
            match format {
                ListFormat::Json => {
                    let columns: Vec<_> = d
                        .schema
                        .fields()
                        .iter()
                        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                        .collect();
                    let json = serde_json::json!({
                        "name": d.name, "location": d.location, "version": d.version,
                        "versions": d.versions, "rows": d.rows, "files": d.files,
                        "bytes": d.bytes, "partitions": d.partitions,
                        "partitioning": d.partitioning, "columns": columns,
                        "entry": d.entry, "view": d.view,
                    });
                    println!("{}", serde_json::to_string_pretty(&json)?);
                }
                ListFormat::Table => {
                    let kind = if d.view.is_some() { "view:" } else { "table:" };
                    println!("{kind:<12}{}", d.name);
                    println!("location:   {}", d.location);
                    println!("version:    {} ({} versions)", d.version, d.versions);
                    println!("files:      {}", d.files);
                    println!("rows:       {}", d.rows);
                    println!("bytes:      {}", d.bytes);
                    println!(
                        "partitions: {} by [{}]",
                        d.partitions,
                        d.partitioning.join(", ")
                    );
                    if let Some(description) = &d.entry.description {
                        println!("about:      {description}");
                    }
                    if let Some(view) = &d.view {
                        println!("sql:        {}", view.sql);
                        match &view.refresh {
                            RefreshMode::Full => println!("refresh:    full"),
                            RefreshMode::Incremental { by, max_share } => println!(
                                "refresh:    incremental by [{}] (full above {:.0}% of partitions)",
                                by.join(", "),
                                max_share * 100.0
                            ),
                        }
                        for (source, version) in &view.sources {
                            println!("source:     {source} at version {version}");
                        }
                    }
                    println!("schema:");
                    for field in d.schema.fields() {
                        println!("  {}: {}", field.name(), field.data_type());
                    }
                }
            }
        }
        CatalogCommand::Register {
            name,
            dataset,
            description,
            engine,
            store,
        } => {
            // Inside a store, the dataset is a path under its root, recorded as given.
            let location = match &store {
                Some(_) => dataset.clone(),
                None => catalog.location_for(&dataset)?,
            };
            let options = TableOptions {
                description,
                default_engine: engine,
                store,
                ..TableOptions::default()
            };
            catalog.register(&name, &location, options).await?;
            println!(
                "registered {name} (catalog version {})",
                catalog.state().version
            );
        }
        CatalogCommand::Store(command) => store(&mut catalog, command).await?,
        CatalogCommand::Import { file } => {
            let report = catalog.import_pydala(&file).await?;
            for store in &report.stores {
                println!("store  {store}");
            }
            for table in &report.tables {
                println!("table  {table}");
            }
            for (what, why) in &report.skipped {
                println!("skipped {what}: {why}");
            }
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "imported {} stores and {} tables from {}",
                report.stores.len(),
                report.tables.len(),
                file.display()
            );
        }
        CatalogCommand::Drop { name, purge } => {
            catalog.drop_table(&name, purge).await?;
            println!(
                "dropped {name}{}",
                if purge { " and its files" } else { "" }
            );
        }
        CatalogCommand::Rename { from, to } => {
            catalog.rename(&from, &to).await?;
            println!("renamed {from} to {to}");
        }
    }
    Ok(())
}

/// Runs a `dala catalog store` command.
async fn store(catalog: &mut Catalog, command: StoreCommand) -> Result<()> {
    match command {
        StoreCommand::Add {
            name,
            url,
            endpoint,
            region,
            allow_http,
            no_cache,
            cache_memory,
            cache_dir,
            cache_disk,
            cache_block,
            cache_ttl,
        } => {
            let cache = StoreCache {
                off: no_cache,
                memory: cache_memory,
                dir: cache_dir,
                disk: cache_disk,
                block: cache_block,
                ttl_seconds: cache_ttl,
            };
            let entry = StoreEntry {
                url: catalog.location_for(&url)?,
                endpoint,
                region,
                allow_http,
                cache: (cache != StoreCache::default()).then_some(cache),
            };
            catalog.create_store(&name, entry).await?;
            println!(
                "added store {name} (catalog version {})",
                catalog.state().version
            );
        }
        StoreCommand::List { format } => {
            let stores = &catalog.state().stores;
            match format {
                ListFormat::Json => {
                    let list: Vec<_> = stores
                        .iter()
                        .map(|(name, store)| {
                            let mut json = serde_json::to_value(store)?;
                            json["name"] = serde_json::Value::from(name.as_str());
                            Ok(json)
                        })
                        .collect::<Result<_>>()?;
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
                ListFormat::Table => {
                    let mut table = comfy_table::Table::new();
                    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
                    table.set_header(["name", "url", "endpoint", "region", "cache"]);
                    for (name, store) in stores {
                        let cache = match &store.cache {
                            None => "default".to_string(),
                            Some(cache) if cache.off => "off".to_string(),
                            Some(cache) => serde_json::to_string(cache)?,
                        };
                        table.add_row([
                            name.clone(),
                            store.url.clone(),
                            store.endpoint.clone().unwrap_or_default(),
                            store.region.clone().unwrap_or_default(),
                            cache,
                        ]);
                    }
                    println!("{table}");
                }
            }
        }
        StoreCommand::Drop { name } => {
            catalog.drop_store(&name).await?;
            println!("dropped store {name}");
        }
    }
    Ok(())
}

/// Runs `dala query` on the catalog at `location`.
pub async fn query(location: &str, args: QueryArgs) -> Result<()> {
    let catalog = Catalog::open(location).await?;
    let options = QueryOptions {
        engine: args.engine,
        params: args.params.into_iter().map(Scalar::Utf8).collect(),
        ..QueryOptions::default()
    };
    let stream = catalog.query_with(&args.sql, &options).await?;
    output::write_stream(stream, None, args.format, args.output.as_deref()).await
}

/// Runs a view command on the catalog at `location`.
pub async fn view(location: &str, command: ViewCommand) -> Result<()> {
    let mut catalog = Catalog::open(location).await?;
    match command {
        ViewCommand::Create {
            name,
            sql,
            partition_by,
            incremental_by,
            description,
        } => {
            let refresh = if incremental_by.is_empty() {
                RefreshMode::Full
            } else {
                RefreshMode::Incremental {
                    by: incremental_by,
                    max_share: 0.5,
                }
            };
            let options = ViewOptions {
                partition_by,
                refresh,
                description,
                ..ViewOptions::default()
            };
            catalog.create_view(&name, &sql, options).await?;
            let status = catalog.status(&name).await?;
            let rows = status.last_refresh.map_or(0, |r| r.rows);
            println!("created {name}: {rows} rows");
        }
        ViewCommand::Refresh { name, full } => {
            let info = if full {
                catalog.refresh_full(&name).await?
            } else {
                catalog.refresh(&name).await?
            };
            let partitions = info
                .partitions
                .map(|p| format!(", {p} partitions recomputed"))
                .unwrap_or_default();
            println!(
                "refreshed {name} ({}{partitions}): {} rows in {:.2}s",
                info.kind, info.rows, info.seconds
            );
            if let Some(reason) = &info.fallback {
                println!("full refresh because {reason}");
            }
        }
        ViewCommand::Status { name, format } => {
            let status = catalog.status(&name).await?;
            match format {
                ListFormat::Json => {
                    let sources: Vec<_> = status
                        .sources
                        .iter()
                        .map(|(source, read, latest)| {
                            serde_json::json!({"source": source, "read": read, "latest": latest})
                        })
                        .collect();
                    let json = serde_json::json!({
                        "view": status.name,
                        "fresh": status.is_fresh(),
                        "sources": sources,
                        "last_refresh": status.last_refresh.as_ref().map(|r| serde_json::json!({
                            "at_ms": r.at_ms, "seconds": r.seconds, "kind": r.kind, "rows": r.rows,
                        })),
                    });
                    println!("{}", serde_json::to_string_pretty(&json)?);
                }
                ListFormat::Table => {
                    let fresh = if status.is_fresh() { "fresh" } else { "stale" };
                    println!("view:    {} ({fresh})", status.name);
                    for (source, read, latest) in &status.sources {
                        match latest {
                            Some(latest) => println!(
                                "source:  {source} read at version {read}, latest {latest} ({} behind)",
                                latest.saturating_sub(*read)
                            ),
                            None => {
                                println!("source:  {source} read at version {read}, now dropped")
                            }
                        }
                    }
                    if let Some(r) = &status.last_refresh {
                        let at = chrono::DateTime::from_timestamp_millis(r.at_ms)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                            .unwrap_or_default();
                        println!(
                            "refresh: {} at {at}, {:.2}s, {} rows",
                            r.kind, r.seconds, r.rows
                        );
                    }
                }
            }
        }
        ViewCommand::Drop { name, purge } => {
            catalog.view(&catalog.resolve_name(&name)?)?;
            catalog.drop_table(&name, purge).await?;
            println!(
                "dropped {name}{}",
                if purge { " and its files" } else { "" }
            );
        }
    }
    Ok(())
}
