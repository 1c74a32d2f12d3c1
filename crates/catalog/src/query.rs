//! `Catalog::query`: SQL over catalog tables. Table names in the SQL (dotted, quoted or
//! not, or short when one namespace holds the name) are resolved to catalog datasets; each
//! is opened once, at its latest version, so the whole query reads one version of every
//! table; the engine (DuckDB unless told otherwise) runs the SQL over dala's scan of each.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::sync::OnceLock;

use dala_dataset::{Dataset, Engine, RecordBatchStream, Scalar, ScanEngine, ScanRequest};
use dala_duckdb::{DuckdbEngine, DuckdbOptions};
use sqlparser::ast::{Ident, ObjectName, Query, TableAlias, TableFactor, VisitMut, VisitorMut};
use sqlparser::dialect::{DuckDbDialect, GenericDialect};
use sqlparser::parser::Parser;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::model::split_name;

/// How a query runs.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// The engine (default: `DALA_ENGINE`, else the catalog's default, else DuckDB).
    pub engine: Option<Engine>,
    /// Values bound to the query's placeholders (`?`, `$1`), never spliced into its text.
    pub params: Vec<Scalar>,
}

/// A query with its tables resolved: the SQL the engine runs and the datasets it reads.
#[derive(Debug)]
pub struct PlannedQuery {
    /// The SQL with every catalog table replaced by the name its scan is registered as.
    pub sql: String,
    /// Each table read: its full catalog name, the name in `sql`, and the dataset (at the
    /// version the query reads).
    pub tables: Vec<(String, String, Dataset)>,
}

/// The engines a catalog runs queries on, made when first needed.
#[derive(Debug, Default)]
pub(crate) struct Engines {
    duckdb: OnceLock<DuckdbEngine>,
}

impl Engines {
    fn get(&self, engine: Engine) -> Result<&dyn ScanEngine> {
        match engine {
            Engine::Duckdb => {
                if self.duckdb.get().is_none() {
                    let made = DuckdbEngine::new(&DuckdbOptions::default())?;
                    let _ = self.duckdb.set(made);
                }
                match self.duckdb.get() {
                    Some(engine) => Ok(engine),
                    None => Err(Error::Query {
                        message: "the duckdb engine could not start".into(),
                    }),
                }
            }
            #[cfg(feature = "polars")]
            Engine::Polars => Ok(&dala_polars::PolarsEngine),
            Engine::Arrow => Ok(&dala_dataset::ArrowEngine),
            #[allow(unreachable_patterns)]
            other => Err(dala_dataset::Error::Unsupported(format!(
                "the {other} engine is not in this build (enable the `polars` feature)"
            ))
            .into()),
        }
    }
}

impl Catalog {
    /// Runs `sql` over the catalog's tables on the default engine.
    pub async fn query(&self, sql: &str) -> Result<RecordBatchStream> {
        self.query_with(sql, &QueryOptions::default()).await
    }

    /// Runs `sql` over the catalog's tables with `options`.
    pub async fn query_with(&self, sql: &str, options: &QueryOptions) -> Result<RecordBatchStream> {
        let engine = Engine::choose(
            options.engine,
            None,
            Some(self.state().default_engine.unwrap_or(Engine::Duckdb)),
        )?;
        let planned = self.plan_query(sql, engine).await?;
        let tables = planned
            .tables
            .iter()
            .map(|(_, name, dataset)| Ok((name.clone(), dataset.scan().request()?)))
            .collect::<Result<Vec<(String, ScanRequest)>>>()?;
        Ok(self
            .engines()
            .get(engine)?
            .sql(tables, &planned.sql, &options.params)?)
    }

    /// Resolves the tables of `sql` (one statement) and opens each once.
    pub async fn plan_query(&self, sql: &str, engine: Engine) -> Result<PlannedQuery> {
        let parsed = match engine {
            Engine::Duckdb => Parser::parse_sql(&DuckDbDialect {}, sql),
            _ => Parser::parse_sql(&GenericDialect {}, sql),
        };
        let mut statements = parsed.map_err(|e| Error::Query {
            message: e.to_string(),
        })?;
        if statements.len() != 1 {
            return Err(Error::Query {
                message: format!("expected one statement, found {}", statements.len()),
            });
        }
        let mut resolver = Resolver {
            catalog: self,
            ctes: HashSet::new(),
            tables: BTreeMap::new(),
            error: None,
        };
        if let ControlFlow::Break(()) = statements[0].visit(&mut resolver) {
            return Err(resolver.error.unwrap_or_else(|| Error::Query {
                message: "could not resolve the query's tables".into(),
            }));
        }
        let mut tables = Vec::with_capacity(resolver.tables.len());
        for (full, name) in resolver.tables {
            let dataset = self.load(&full).await?;
            tables.push((full, name, dataset));
        }
        Ok(PlannedQuery {
            sql: statements[0].to_string(),
            tables,
        })
    }
}

/// Rewrites table references to the names their scans are registered as.
struct Resolver<'a> {
    catalog: &'a Catalog,
    /// Names the query defines itself (`WITH name AS …`).
    ctes: HashSet<String>,
    /// Full catalog name → registered name.
    tables: BTreeMap<String, String>,
    error: Option<Error>,
}

impl VisitorMut for Resolver<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let written = parts.join(".");
        if parts.len() == 1 && self.ctes.contains(&written.to_lowercase()) {
            return ControlFlow::Continue(());
        }
        let full = match self.catalog.resolve_name(&written) {
            Ok(full) => full,
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        };
        let next = self.tables.len();
        let registered = self
            .tables
            .entry(full.clone())
            .or_insert_with(|| format!("dala_table_{next}"))
            .clone();
        *name = ObjectName::from(vec![Ident::new(registered)]);
        if alias.is_none() {
            *alias = Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', split_name(&written).1),
                columns: Vec::new(),
                at: None,
            });
        }
        ControlFlow::Continue(())
    }
}
