//! The catalog end to end: names, atomic changes shared by processes, and SQL over tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::rows;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use dala_catalog::{
    Catalog, Error, QueryOptions, ResultCache, TableOptions, ViewOptions, WriteDefaults,
};
use dala_dataset::{Scalar, WriteOptions};
use futures::TryStreamExt;

fn orders(first: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n).collect();
    let customers: Vec<String> = ids
        .iter()
        .map(|i| ["O'Brien", "Zoë", "Ng"][*i as usize % 3].to_string())
        .collect();
    let years: Vec<i64> = ids.iter().map(|i| 2020 + i % 3).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, false),
        Field::new("year", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(customers)),
            Arc::new(Int64Array::from(years)),
        ],
    )
    .unwrap()
}

/// Writes `n` orders from `first` as a dataset at `dir/path`; returns its location.
async fn write_orders(dir: &tempfile::TempDir, path: &str, first: i64, n: i64) -> String {
    let location = dir.path().join(path).display().to_string();
    dala_dataset::Dataset::write_to(
        &location,
        vec![Ok(orders(first, n))],
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    location
}

fn by_year() -> TableOptions {
    TableOptions {
        write: WriteDefaults {
            partition_by: vec!["year".into()],
            ..WriteDefaults::default()
        },
        ..TableOptions::default()
    }
}

fn location(dir: &tempfile::TempDir) -> String {
    dir.path()
        .join("catalog/catalog.json")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_are_named_listed_described_renamed_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::init(&location(&dir)).await.unwrap();
    assert_eq!(catalog.state().version, 0);
    catalog
        .create_table("sales.eu.orders", vec![Ok(orders(0, 30))], by_year())
        .await
        .unwrap();
    // Stored beside the catalog file, under the namespace's folders.
    assert!(dir.path().join("catalog/sales/eu/orders/_dala").exists());
    assert_eq!(catalog.list(None), vec!["sales.eu.orders".to_string()]);
    assert_eq!(
        catalog.list(Some("sales")),
        vec!["sales.eu.orders".to_string()]
    );
    assert!(catalog.list(Some("hr")).is_empty());
    assert!(catalog.state().namespaces.contains_key("sales"));

    let described = catalog.describe("orders").await.unwrap();
    assert_eq!(described.name, "sales.eu.orders");
    assert_eq!((described.rows, described.partitions), (30, 3));
    assert_eq!(described.partitioning, vec!["year".to_string()]);
    assert_eq!(
        catalog
            .load("sales.eu.orders")
            .await
            .unwrap()
            .snapshot()
            .rows(),
        30
    );

    // An existing dataset is registered where it is; a second one with the same short name
    // makes the short name ambiguous.
    let elsewhere = write_orders(&dir, "lake/orders", 100, 5).await;
    catalog
        .register("archive.orders", &elsewhere, TableOptions::default())
        .await
        .unwrap();
    match catalog.describe("orders").await.unwrap_err() {
        Error::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 2),
        other => panic!("{other}"),
    }
    match catalog.describe("sales.eu.ordres").await.unwrap_err() {
        Error::NotFound { suggestions, .. } => {
            assert_eq!(suggestions[0], "sales.eu.orders");
        }
        other => panic!("{other}"),
    }

    // A failed change leaves the catalog as it was.
    let version = catalog.state().version;
    for error in [
        catalog
            .register("archive.orders", &elsewhere, TableOptions::default())
            .await
            .unwrap_err(),
        catalog
            .register("bad name.x", &elsewhere, TableOptions::default())
            .await
            .unwrap_err(),
        catalog
            .register("nonamespace", &elsewhere, TableOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                error,
                Error::AlreadyExists { .. } | Error::InvalidName { .. }
            ),
            "{error}"
        );
    }
    let reopened = Catalog::open(&location(&dir)).await.unwrap();
    assert_eq!(reopened.state().version, version);

    catalog
        .rename("archive.orders", "archive.old_orders")
        .await
        .unwrap();
    assert_eq!(
        catalog.list(Some("archive")),
        vec!["archive.old_orders".to_string()]
    );
    catalog
        .drop_table("archive.old_orders", false)
        .await
        .unwrap();
    assert!(std::path::Path::new(&elsewhere).join("_dala").exists());
    catalog.drop_table("sales.eu.orders", true).await.unwrap();
    assert!(!dir.path().join("catalog/sales/eu/orders/_dala").exists());
    assert!(catalog.list(None).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_changes_all_land_and_a_stale_file_is_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir);
    Catalog::init(&path).await.unwrap();
    let lake = dir.path().join("lake/t").display().to_string();
    dala_dataset::Dataset::write_to(&lake, vec![Ok(orders(0, 3))], &WriteOptions::default())
        .await
        .unwrap();
    // Eight handles, as eight processes would, register different tables at once.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (path, lake) = (path.clone(), lake.clone());
            tokio::spawn(async move {
                let mut catalog = Catalog::open(&path).await.unwrap();
                catalog
                    .register(&format!("ns.t{i}"), &lake, TableOptions::default())
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let catalog = Catalog::open(&path).await.unwrap();
    assert_eq!(catalog.list(Some("ns")).len(), 8);
    assert_eq!(catalog.state().version, 8);

    // A crash after the log entry but before the readable copy: readers still see it.
    let stale = std::fs::read_to_string(
        dir.path()
            .join("catalog/_catalog_log/00000000000000000003.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("catalog/catalog.json"), stale).unwrap();
    let catalog = Catalog::open(&path).await.unwrap();
    assert_eq!(catalog.state().version, 8);
    assert_eq!(catalog.list(Some("ns")).len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_keeps_its_newest_entries_and_loses_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = location(&dir);
    let mut catalog = Catalog::init(&path).await.unwrap();
    let changes = dala_catalog::KEEP_LOG_ENTRIES + 2 * dala_catalog::PRUNE_EVERY + 5;
    for i in 0..changes {
        catalog
            .create_namespace(&format!("ns{i}"), None)
            .await
            .unwrap();
    }
    let log = dir.path().join("catalog/_catalog_log");
    let mut entries: Vec<u64> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".json").parse().unwrap()
        })
        .collect();
    entries.sort_unstable();
    let latest = *entries.last().unwrap();
    assert_eq!(latest, changes);
    // Pruned, oldest first, to the newest entries only.
    let kept = entries.len() as u64;
    assert!(
        kept >= dala_catalog::KEEP_LOG_ENTRIES,
        "{kept} entries kept"
    );
    assert!(
        kept <= dala_catalog::KEEP_LOG_ENTRIES + dala_catalog::PRUNE_EVERY,
        "{kept} kept"
    );
    assert_eq!(entries, (latest + 1 - kept..=latest).collect::<Vec<_>>());

    // A catalog file left far behind (whose next entries are pruned) still loads the
    // latest state, and the next change builds on it.
    let old = std::fs::read_to_string(log.join(format!("{:020}.json", entries[0]))).unwrap();
    std::fs::write(dir.path().join("catalog/catalog.json"), old).unwrap();
    let mut catalog = Catalog::open(&path).await.unwrap();
    assert_eq!(catalog.state().version, latest);
    catalog.create_namespace("last", None).await.unwrap();
    let catalog = Catalog::open(&path).await.unwrap();
    assert_eq!(catalog.state().version, latest + 1);
    assert_eq!(catalog.state().namespaces.len() as u64, changes + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_reads_catalog_tables_by_name_with_bound_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::init(&location(&dir)).await.unwrap();
    catalog
        .create_table("sales.orders", vec![Ok(orders(0, 30))], by_year())
        .await
        .unwrap();
    catalog
        .create_table(
            "sales.returns",
            vec![Ok(orders(0, 6))],
            TableOptions::default(),
        )
        .await
        .unwrap();

    // Dotted, quoted and short names; a join, a CTE, a window function.
    assert_eq!(
        rows(&catalog, "SELECT count(*) FROM sales.orders", vec![]).await,
        vec!["30"]
    );
    assert_eq!(
        rows(
            &catalog,
            "SELECT count(*) FROM \"sales\".\"orders\" WHERE year = 2021",
            vec![]
        )
        .await,
        vec!["10"]
    );
    assert_eq!(
        rows(
            &catalog,
            "WITH r AS (SELECT id FROM returns) \
             SELECT count(*) FROM orders o JOIN r ON o.id = r.id",
            vec![]
        )
        .await,
        vec!["6"]
    );
    assert_eq!(
        rows(
            &catalog,
            "SELECT id, row_number() OVER (PARTITION BY year ORDER BY id) AS n \
             FROM sales.orders WHERE orders.id < 4 ORDER BY id",
            vec![]
        )
        .await,
        vec!["0|1", "1|1", "2|1", "3|2"]
    );
    // Values bind as values: a quote in one is data, not SQL.
    assert_eq!(
        rows(
            &catalog,
            "SELECT count(*) FROM sales.orders WHERE customer = ? AND year = ?",
            vec![Scalar::Utf8("O'Brien".into()), Scalar::Int(2020)]
        )
        .await,
        vec!["10"]
    );
    // One table read twice: two scans of one dataset at one version.
    let planned = catalog
        .plan_query(
            "SELECT * FROM sales.orders a JOIN orders b USING (id)",
            dala_dataset::Engine::Duckdb,
        )
        .await
        .unwrap();
    assert_eq!(planned.tables.len(), 2);
    assert_eq!(
        planned.tables[0].dataset.version(),
        planned.tables[1].dataset.version()
    );

    // Conditions on one table reach dala's planning: only 2021's partition is read.
    let planned = catalog
        .plan_query(
            "SELECT count(*) FROM sales.orders o JOIN sales.returns r ON o.id = r.id \
             WHERE o.year = 2021 AND r.id < 5 AND o.customer <> r.customer",
            dala_dataset::Engine::Duckdb,
        )
        .await
        .unwrap();
    let orders = &planned.tables[0];
    assert_eq!(
        orders.filter.as_ref().unwrap().to_string(),
        "\"year\" = 2021"
    );
    let request = orders
        .dataset
        .scan()
        .with_filter(orders.filter.clone().unwrap())
        .request()
        .unwrap();
    assert!(!request.files.is_empty());
    assert!(
        request
            .files
            .iter()
            .all(|f| f.entry.partition_values == vec![Scalar::Int(2021)])
    );
    assert_eq!(
        planned.tables[1].filter.as_ref().unwrap().to_string(),
        "\"id\" < 5"
    );
    // Under an outer join a condition on the inner side is not pushed (it would change
    // which rows find no match), and the answer stays right.
    let outer = "SELECT count(*) FROM sales.orders o LEFT JOIN sales.returns r \
                 ON o.id = r.id WHERE r.id IS NULL";
    let planned = catalog
        .plan_query(outer, dala_dataset::Engine::Duckdb)
        .await
        .unwrap();
    assert!(planned.tables.iter().all(|t| t.filter.is_none()));
    assert_eq!(rows(&catalog, outer, vec![]).await, vec!["24"]);
    assert_eq!(
        rows(
            &catalog,
            "SELECT count(*) FROM sales.orders o JOIN sales.returns r ON o.id = r.id \
             WHERE o.year = 2021 AND r.id < 5",
            vec![]
        )
        .await,
        vec!["2"]
    );

    // Bad input: typed errors that name it.
    let error = catalog
        .query("SELECT * FROM sales.ordrs")
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&error, Error::NotFound { name, suggestions, .. }
            if name == "sales.ordrs" && suggestions.contains(&"sales.orders".to_string())),
        "{error}"
    );
    let error = catalog
        .query("SELEC * FROM sales.orders")
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&error, Error::Query { message } if message.contains("SELEC")),
        "{error}"
    );
    let error = match catalog.query("SELECT colour FROM sales.orders").await {
        Err(e) => e,
        Ok(stream) => Error::from(stream.try_collect::<Vec<_>>().await.err().unwrap()),
    };
    assert!(error.to_string().contains("colour"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_answer_is_served_until_a_table_it_read_changes() {
    let dir = tempfile::tempdir().unwrap();
    let results = ResultCache::new(64 << 20);
    let mut catalog = Catalog::init(&location(&dir))
        .await
        .unwrap()
        .with_result_cache(results.clone());
    catalog
        .create_table("sales.orders", vec![Ok(orders(0, 30))], by_year())
        .await
        .unwrap();
    let sql = "SELECT year, count(*) FROM sales.orders WHERE id >= ? GROUP BY year ORDER BY year";
    let ten = vec![Scalar::Int(10)];
    let first = rows(&catalog, sql, ten.clone()).await;
    assert_eq!(first, vec!["2020|6", "2021|7", "2022|7"]);
    // The same SQL with other spacing and keyword case, and the same parameter: cached.
    let respelled =
        "select year, count(*)\n  from sales.orders\n where id >= ?  group by year order by year";
    assert_eq!(rows(&catalog, respelled, ten.clone()).await, first);
    assert_eq!((results.stats().hits, results.stats().misses), (1, 1));
    // Another parameter is another answer.
    assert_eq!(
        rows(&catalog, sql, vec![Scalar::Int(25)]).await,
        vec!["2020|1", "2021|2", "2022|2"]
    );
    assert_eq!(results.stats().misses, 2);

    // A commit to the table: the next query reads the new version.
    let mut orders_table = catalog.load("sales.orders").await.unwrap();
    orders_table
        .write(
            [Ok(orders(30, 3))],
            &WriteOptions::default().with_partition_by(["year"]),
        )
        .await
        .unwrap();
    let after = rows(&catalog, sql, ten.clone()).await;
    assert_ne!(after, first);
    assert_eq!(results.stats().misses, 3);

    // Skipping the cache runs the query and keeps nothing.
    let options = QueryOptions {
        params: ten,
        skip_result_cache: true,
        ..QueryOptions::default()
    };
    assert_eq!(common::rows_with(&catalog, sql, &options).await, after);
    assert_eq!((results.stats().hits, results.stats().misses), (1, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_in_a_named_store_live_under_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::init(&location(&dir)).await.unwrap();
    let store = dala_catalog::StoreEntry {
        url: "memory://catalog-store-test/lake".into(),
        ..Default::default()
    };
    catalog.create_store("mem", store).await.unwrap();
    let options = TableOptions {
        store: Some("mem".into()),
        ..by_year()
    };
    catalog
        .create_table("sales.orders", vec![Ok(orders(0, 9))], options)
        .await
        .unwrap();
    let entry = catalog.table("sales.orders").unwrap().clone();
    assert_eq!(
        catalog.resolve(&entry).unwrap(),
        "memory://catalog-store-test/lake/sales/orders"
    );
    assert_eq!(
        catalog
            .load("sales.orders")
            .await
            .unwrap()
            .snapshot()
            .rows(),
        9
    );
    // SQL over a table in an object store: dala reads it, DuckDB answers.
    assert_eq!(
        rows(
            &catalog,
            "SELECT year, count(*) FROM sales.orders GROUP BY year ORDER BY year",
            vec![]
        )
        .await,
        vec!["2020|3", "2021|3", "2022|3"]
    );
    // The file names the store; no credentials are written.
    let text = std::fs::read_to_string(dir.path().join("catalog/catalog.json")).unwrap();
    assert!(text.contains("\"store\": \"mem\"") && !text.to_lowercase().contains("secret"));

    // A relative root is under the catalog file's folder, wherever the process runs.
    let store = dala_catalog::StoreEntry {
        url: "lake".into(),
        ..Default::default()
    };
    catalog.create_store("lake", store).await.unwrap();
    let options = TableOptions {
        store: Some("lake".into()),
        ..by_year()
    };
    catalog
        .create_table("sales.local", vec![Ok(orders(0, 300))], options)
        .await
        .unwrap();
    assert!(dir.path().join("catalog/lake/sales/local/_dala").is_dir());
    let dataset = catalog.load("sales.local").await.unwrap();
    assert_eq!(dataset.snapshot().rows(), 300);

    // A store with an unusable URL is refused, naming it.
    let error = catalog
        .create_store(
            "ftp",
            dala_catalog::StoreEntry {
                url: "ftp://host/x".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("store `ftp`") && error.contains("url"),
        "{error}"
    );

    // Dropping a store that a table lives in is refused, naming the table.
    let error = catalog.drop_store("lake").await.unwrap_err();
    assert!(
        matches!(&error, dala_catalog::Error::InUse { users, .. } if users == &["sales.local"]),
        "{error}"
    );
    assert!(catalog.state().stores.contains_key("lake"));
    catalog.drop_table("sales.local", false).await.unwrap();
    catalog.drop_store("lake").await.unwrap();
    assert!(!catalog.state().stores.contains_key("lake"));
    let error = catalog.drop_store("lake").await.unwrap_err();
    assert!(matches!(
        error,
        dala_catalog::Error::NotFound { kind: "store", .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_store_reads_through_the_cache_its_settings_describe() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::init(&location(&dir)).await.unwrap();
    let store = dala_catalog::StoreEntry {
        url: dir.path().join("lake").display().to_string(),
        cache: Some(dala_catalog::StoreCache {
            memory: Some("8MiB".into()),
            dir: Some("cache".into()),
            disk: Some("64MiB".into()),
            block: Some("64KiB".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    catalog.create_store("lake", store).await.unwrap();
    let options = TableOptions {
        store: Some("lake".into()),
        ..by_year()
    };
    catalog
        .create_table("sales.orders", vec![Ok(orders(0, 300))], options)
        .await
        .unwrap();
    let sum = async |catalog: &Catalog| {
        let batches = catalog
            .load("sales.orders")
            .await
            .unwrap()
            .scan()
            .with_filter_str("year = 2021")
            .unwrap()
            .collect()
            .await
            .unwrap();
        batches.iter().map(|b| b.num_rows()).sum::<usize>()
    };

    // The settings made one cache for the store: a relative SSD directory lives beside
    // the catalog file, and the budgets are the store's.
    let cache = catalog.store_cache("lake").unwrap().unwrap();
    assert!(Arc::ptr_eq(
        &cache,
        &catalog.store_cache("lake").unwrap().unwrap()
    ));
    let stats = cache.stats();
    assert_eq!(
        (
            stats.memory_budget,
            stats.disk_budget,
            cache.options().block_size
        ),
        (8 << 20, 64 << 20, 64 << 10)
    );
    assert!(dir.path().join("catalog/cache").is_dir());

    // The first read fetches from the store; the second is served from memory.
    assert_eq!(sum(&catalog).await, 100);
    let cold = cache.stats().counts;
    assert!(cold.misses > 0 && cold.store_requests > 0, "{cold:?}");
    assert_eq!(sum(&catalog).await, 100);
    let warm = cache.stats().counts;
    assert_eq!(warm.misses, cold.misses, "{warm:?}");
    assert!(warm.memory_hits > cold.memory_hits, "{warm:?}");

    // Another catalog handle (as another process would) finds the blocks on the SSD.
    let again = Catalog::open(&location(&dir)).await.unwrap();
    let fresh = again.store_cache("lake").unwrap().unwrap();
    assert!(!Arc::ptr_eq(&cache, &fresh));
    assert_eq!(sum(&again).await, 100);
    assert!(fresh.stats().counts.disk_hits > 0, "{:?}", fresh.stats());

    // `off` reads the store without a cache; a bad setting names the store and setting.
    let mut settings = catalog.state().stores["lake"].clone();
    settings.cache.as_mut().unwrap().off = true;
    catalog
        .create_store("plain", settings.clone())
        .await
        .unwrap();
    assert!(catalog.store_cache("plain").unwrap().is_none());
    settings.cache = Some(dala_catalog::StoreCache {
        memory: Some("lots".into()),
        ..Default::default()
    });
    let error = catalog
        .create_store("bad", settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("store `bad`") && error.contains("memory") && error.contains("lots"),
        "{error}"
    );
    assert!(!catalog.state().stores.contains_key("bad"));

    // A hand-edited catalog can still hold a bad setting: using the store names it.
    let mut state = catalog.state().clone();
    let mut bad = state.stores["lake"].clone();
    bad.cache.as_mut().unwrap().memory = Some("lots".into());
    state.stores.insert("edited".into(), bad);
    std::fs::write(
        dir.path().join("catalog/catalog.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    let edited = Catalog::open(&location(&dir)).await.unwrap();
    let error = edited.store_cache("edited").unwrap_err().to_string();
    assert!(
        error.contains("store `edited`") && error.contains("lots"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pydala2_catalog_is_imported_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("catalog.yml");
    let customers = dir.path().join("elsewhere/customers").display().to_string();
    std::fs::write(
        &yaml,
        format!(
            "filesystem:
  local:
    protocol: file
    bucket: data
  s3lake:
    protocol: s3
    bucket: lake
    key: AKIAEXAMPLE
    secret: very-secret-value
    client_kwargs:
      endpoint_url: http://127.0.0.1:9000
tables:
  sales:
    orders:
      path: sales/orders
      format: parquet
      filesystem: local
      partitioning_columns: [year]
      timestamp_column: ts
      write_args:
        mode: delta
        delta_subset: [id]
        compression: zstd
    eu:
      customers:
        path: {customers}
        format: parquet
  raw:
    logs:
      path: raw/logs
      format: csv
"
        ),
    )
    .unwrap();
    // The dataset PyDala2 wrote, where its filesystem says.
    write_orders(&dir, "data/sales/orders", 0, 12).await;

    let mut catalog = Catalog::init(&location(&dir)).await.unwrap();
    let report = catalog.import_pydala(&yaml).await.unwrap();
    assert_eq!(report.stores, vec!["local", "s3lake"]);
    assert_eq!(report.tables, vec!["sales.eu.customers", "sales.orders"]);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].0 == "raw.logs" && report.skipped[0].1.contains("csv"));
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);

    let orders_entry = catalog.table("sales.orders").unwrap().clone();
    assert_eq!(orders_entry.store.as_deref(), Some("local"));
    assert_eq!(orders_entry.write.mode.as_deref(), Some("insert"));
    assert_eq!(orders_entry.write.key, vec!["id".to_string()]);
    assert_eq!(orders_entry.write.partition_by, vec!["year".to_string()]);
    assert_eq!(orders_entry.write.timestamp_column.as_deref(), Some("ts"));
    assert_eq!(
        catalog
            .load("sales.orders")
            .await
            .unwrap()
            .snapshot()
            .rows(),
        12
    );
    let s3 = &catalog.state().stores["s3lake"];
    assert_eq!(s3.url, "s3://lake");
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s3.allow_http);
    let text = std::fs::read_to_string(dir.path().join("catalog/catalog.json")).unwrap();
    assert!(!text.contains("very-secret-value") && !text.contains("AKIAEXAMPLE"));

    // Importing again adds nothing and says why.
    let version = catalog.state().version;
    let again = catalog.import_pydala(&yaml).await.unwrap();
    assert!(again.tables.is_empty() && again.stores.is_empty());
    assert_eq!(again.skipped.len(), 5);
    assert_eq!(catalog.state().version, version);
    // A file that is not YAML changes nothing.
    std::fs::write(&yaml, "tables: [unclosed").unwrap();
    assert!(matches!(
        catalog.import_pydala(&yaml).await.unwrap_err(),
        Error::InvalidCatalog { .. }
    ));
    assert_eq!(catalog.state().version, version);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_view_stores_its_result_knows_its_sources_and_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::init(&location(&dir)).await.unwrap();
    catalog
        .create_table("sales.orders", vec![Ok(orders(0, 30))], by_year())
        .await
        .unwrap();
    let sql = "SELECT year, count(*) AS n, sum(id) AS total FROM sales.orders GROUP BY year";
    let options = ViewOptions {
        partition_by: vec!["year".into()],
        ..ViewOptions::default()
    };
    catalog
        .create_view("reports.by_year", sql, options.clone())
        .await
        .unwrap();
    assert!(dir.path().join("catalog/reports/by_year/_dala").exists());
    let query = "SELECT year, n, total FROM reports.by_year ORDER BY year";
    assert_eq!(
        rows(&catalog, query, vec![]).await,
        vec!["2020|10|135", "2021|10|145", "2022|10|155"]
    );
    let status = catalog.status("by_year").await.unwrap();
    assert!(status.is_fresh());
    assert_eq!(
        status.sources,
        vec![("sales.orders".to_string(), 0, Some(0))]
    );
    assert_eq!(status.last_refresh.as_ref().unwrap().rows, 3);
    let described = catalog.describe("by_year").await.unwrap();
    assert_eq!((described.rows, described.partitions), (3, 3));
    assert_eq!(described.view.as_ref().map(|v| v.sql.as_str()), Some(sql));

    // The source moves on: the view is behind until refreshed.
    let mut source = catalog.load("sales.orders").await.unwrap();
    source
        .write(vec![Ok(orders(30, 3))], &WriteOptions::default())
        .await
        .unwrap();
    let status = catalog.status("reports.by_year").await.unwrap();
    assert!(!status.is_fresh());
    assert_eq!(status.behind(), vec![("sales.orders".to_string(), Some(1))]);
    let refreshed = catalog.refresh("reports.by_year").await.unwrap();
    assert_eq!((refreshed.kind.as_str(), refreshed.rows), ("full", 3));
    assert!(catalog.status("reports.by_year").await.unwrap().is_fresh());
    assert_eq!(
        rows(&catalog, query, vec![]).await,
        vec!["2020|11|165", "2021|11|176", "2022|11|187"]
    );

    // Bad input: a view over an unknown table is refused and nothing is recorded; a view
    // whose source was dropped says so, and its refresh fails with a typed error.
    let version = catalog.state().version;
    let error = catalog
        .create_view(
            "reports.bad",
            "SELECT * FROM sales.nothing",
            ViewOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
    assert_eq!(catalog.state().version, version);
    catalog.drop_table("sales.orders", false).await.unwrap();
    let status = catalog.status("reports.by_year").await.unwrap();
    assert_eq!(status.behind(), vec![("sales.orders".to_string(), None)]);
    let error = catalog.refresh("reports.by_year").await.unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { name, .. } if name == "sales.orders"),
        "{error}"
    );
    catalog.drop_table("reports.by_year", true).await.unwrap();
    assert!(catalog.list_views(None).is_empty());
}
