//! `Catalog::query`: SQL over catalog tables. Table names in the SQL (dotted, quoted or
//! not, or short when one namespace holds the name) are resolved to catalog datasets; each
//! is opened once, at its latest version, so the whole query reads one version of every
//! table; the engine (DuckDB unless told otherwise) runs the SQL over dala's scan of each.
//! WHERE conditions on one table (under inner joins only) are handed to dala's planning
//! too, so partitions, files and row groups are pruned under SQL as in a scan.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::sync::OnceLock;

use dala_dataset::{Dataset, Engine, RecordBatchStream, Scalar, ScanEngine, ScanRequest};
use dala_duckdb::{DuckdbEngine, DuckdbOptions};
use sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, Ident, JoinOperator, ObjectName, Query, Select, SetExpr,
    TableAlias, TableFactor, VisitMut, VisitorMut, visit_expressions, visit_expressions_mut,
};
use sqlparser::dialect::{DuckDbDialect, GenericDialect};
use sqlparser::parser::Parser;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::model::split_name;
use crate::results::ResultCache;

/// How a query runs.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// The engine (default: `DALA_ENGINE`, else the catalog's default, else DuckDB).
    pub engine: Option<Engine>,
    /// Values bound to the query's placeholders (`?`, `$1`), never spliced into its text.
    pub params: Vec<Scalar>,
    /// Runs the query even when the catalog's result cache holds its answer (and does not
    /// keep the answer).
    pub skip_result_cache: bool,
}

/// A query with its tables resolved: the SQL the engine runs and the scans it reads.
#[derive(Debug)]
pub struct PlannedQuery {
    /// The SQL with every catalog table reference replaced by the name of its scan.
    pub sql: String,
    /// One scan per table reference.
    pub tables: Vec<PlannedTable>,
}

/// One table reference of a query.
#[derive(Debug)]
pub struct PlannedTable {
    /// The table's full catalog name.
    pub name: String,
    /// The name its scan is registered as in the SQL.
    pub registered: String,
    /// The dataset at the version the whole query reads.
    pub dataset: Dataset,
    /// The query's conditions on this table that dala's planning prunes with (partitions,
    /// files and row groups); the engine still applies the whole query.
    pub filter: Option<dala_dataset::Expr>,
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
        let cache = self.result_cache().filter(|_| !options.skip_result_cache);
        if cache.is_none() {
            // The engine is needed: DuckDB starts in the background while the tables open.
            self.engines().get(engine)?;
        }
        let planned = self.plan_query(sql, engine).await?;
        let Some(cache) = cache else {
            return self.run_planned(&planned, engine, &options.params);
        };
        let key = ResultCache::key(&planned, engine, &options.params);
        if let Some(answer) = cache.get(&key) {
            return Ok(answer);
        }
        let stream = self.run_planned(&planned, engine, &options.params)?;
        Ok(cache.keep(key, stream))
    }

    /// Runs a planned query on `engine`.
    pub(crate) fn run_planned(
        &self,
        planned: &PlannedQuery,
        engine: Engine,
        params: &[Scalar],
    ) -> Result<RecordBatchStream> {
        let tables = planned
            .tables
            .iter()
            .map(|table| {
                let mut scan = table.dataset.scan();
                if let Some(filter) = &table.filter {
                    scan = scan.with_filter(filter.clone());
                }
                Ok((table.registered.clone(), scan.request()?))
            })
            .collect::<Result<Vec<(String, ScanRequest)>>>()?;
        Ok(self
            .engines()
            .get(engine)?
            .sql(tables, &planned.sql, params)?)
    }

    /// Resolves the tables of `sql` (one statement) and opens each once.
    pub async fn plan_query(&self, sql: &str, engine: Engine) -> Result<PlannedQuery> {
        self.plan_query_with(sql, engine, BTreeMap::new()).await
    }

    /// [`Catalog::plan_query`] with some tables already opened (by full name): those are
    /// read at the versions given, the others at their latest.
    pub(crate) async fn plan_query_with(
        &self,
        sql: &str,
        engine: Engine,
        opened: BTreeMap<String, Dataset>,
    ) -> Result<PlannedQuery> {
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
            references: Vec::new(),
            registered: HashSet::new(),
            error: None,
        };
        if let ControlFlow::Break(()) = statements[0].visit(&mut resolver) {
            return Err(resolver.error.unwrap_or_else(|| Error::Query {
                message: "could not resolve the query's tables".into(),
            }));
        }
        let mut datasets = opened;
        let mut tables = Vec::with_capacity(resolver.references.len());
        for reference in resolver.references {
            if !datasets.contains_key(&reference.full) {
                let dataset = self.load(&reference.full).await?;
                datasets.insert(reference.full.clone(), dataset);
            }
            let dataset = datasets
                .get(&reference.full)
                .cloned()
                .ok_or_else(|| Error::Query {
                    message: format!("{} was not opened", reference.full),
                })?;
            let filter = pushed_filter(&dataset, &reference.conditions);
            tables.push(PlannedTable {
                name: reference.full,
                registered: reference.registered,
                dataset,
                filter,
            });
        }
        Ok(PlannedQuery {
            sql: statements[0].to_string(),
            tables,
        })
    }
}

/// The conditions dala can plan with, each parsed as dala's filter language and bound to
/// the dataset's schema; the others are left to the engine.
fn pushed_filter(dataset: &Dataset, conditions: &[String]) -> Option<dala_dataset::Expr> {
    let schema = dataset.schema();
    conditions
        .iter()
        .filter_map(|text| {
            let expr = dala_dataset::Expr::parse(text).ok()?;
            expr.bind(&schema).ok()?;
            Some(expr)
        })
        .reduce(|a, b| a.and(b))
}

/// A table reference found in the query.
struct Reference {
    full: String,
    registered: String,
    /// WHERE conjuncts on this reference alone, as SQL without table qualifiers.
    conditions: Vec<String>,
}

/// Rewrites table references to the names their scans are registered as, and collects the
/// WHERE conditions that each reference can be pruned with.
struct Resolver<'a> {
    catalog: &'a Catalog,
    /// Names the query defines itself (`WITH name AS …`).
    ctes: HashSet<String>,
    references: Vec<Reference>,
    /// The names given to references (already rewritten).
    registered: HashSet<String>,
    error: Option<Error>,
}

impl Resolver<'_> {
    /// Resolves a catalog table reference and rewrites it; returns its alias (lower case)
    /// and its index, or `None` for anything else (CTEs, table functions, subqueries).
    fn reference(&mut self, factor: &mut TableFactor) -> ControlFlow<(), Option<(String, usize)>> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(None);
        };
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let written = parts.join(".");
        if parts.len() == 1
            && (self.ctes.contains(&written.to_lowercase()) || self.registered.contains(&written))
        {
            return ControlFlow::Continue(None);
        }
        let full = match self.catalog.resolve_name(&written) {
            Ok(full) => full,
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        };
        let index = self.references.len();
        let registered = format!("dala_table_{index}");
        self.registered.insert(registered.clone());
        self.references.push(Reference {
            full,
            registered: registered.clone(),
            conditions: Vec::new(),
        });
        *name = ObjectName::from(vec![Ident::new(registered)]);
        let alias = alias.get_or_insert_with(|| TableAlias {
            explicit: true,
            name: Ident::with_quote('"', split_name(&written).1),
            columns: Vec::new(),
            at: None,
        });
        ControlFlow::Continue(Some((alias.name.value.to_lowercase(), index)))
    }

    /// Resolves the tables of a SELECT's FROM and, when it has only inner and cross joins
    /// (where a condition on one table removes only rows the query removes anyway),
    /// records each WHERE conjunct that names one catalog table's columns alone.
    fn select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let inner_only = select.from.iter().all(|t| {
            t.joins.iter().all(|j| {
                matches!(
                    j.join_operator,
                    JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
                )
            })
        });
        let relations: usize = select.from.iter().map(|t| 1 + t.joins.len()).sum();
        let mut local = Vec::new();
        for from in &mut select.from {
            if let Some(found) = self.reference(&mut from.relation)? {
                local.push(found);
            }
            for join in &mut from.joins {
                if let Some(found) = self.reference(&mut join.relation)? {
                    local.push(found);
                }
            }
        }
        if !inner_only || local.is_empty() {
            return ControlFlow::Continue(());
        }
        if let Some(selection) = &select.selection {
            for conjunct in conjuncts(selection) {
                if let Some((index, text)) = condition_on_one_table(conjunct, &local, relations) {
                    self.references[index].conditions.push(text);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn set_expr(&mut self, body: &mut SetExpr) -> ControlFlow<()> {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left)?;
                self.set_expr(right)
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

impl VisitorMut for Resolver<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        self.set_expr(&mut query.body)
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        self.reference(factor).map_continue(|_| ())
    }
}

/// The conjuncts of a condition (`a AND (b AND c)` → a, b, c).
fn conjuncts(expr: &SqlExpr) -> Vec<&SqlExpr> {
    match expr {
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut out = conjuncts(left);
            out.extend(conjuncts(right));
            out
        }
        SqlExpr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// The catalog table (index) a conjunct names columns of, alone, and the conjunct without
/// table qualifiers. Unqualified columns count only when the FROM has a single relation;
/// conditions with subqueries are left alone.
fn condition_on_one_table(
    conjunct: &SqlExpr,
    local: &[(String, usize)],
    relations: usize,
) -> Option<(usize, String)> {
    let mut target: Option<usize> = None;
    let mut unqualified = false;
    let mut usable = true;
    let _ = visit_expressions(conjunct, |e| {
        match e {
            SqlExpr::Subquery(_) | SqlExpr::InSubquery { .. } | SqlExpr::Exists { .. } => {
                usable = false;
            }
            SqlExpr::Identifier(_) => unqualified = true,
            SqlExpr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let qualifier = parts[0].value.to_lowercase();
                match local.iter().find(|(alias, _)| *alias == qualifier) {
                    Some((_, index)) if target.is_none_or(|t| t == *index) => {
                        target = Some(*index);
                    }
                    _ => usable = false,
                }
            }
            SqlExpr::CompoundIdentifier(_) => usable = false,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    if !usable {
        return None;
    }
    if unqualified {
        if relations != 1 || local.len() != 1 || target.is_some_and(|t| t != local[0].1) {
            return None;
        }
        target = Some(local[0].1);
    }
    let index = target?;
    let mut stripped = conjunct.clone();
    let _ = visit_expressions_mut(&mut stripped, |e| {
        if let SqlExpr::CompoundIdentifier(parts) = e
            && let Some(column) = parts.pop()
        {
            *e = SqlExpr::Identifier(column);
        }
        ControlFlow::<()>::Continue(())
    });
    Some((index, stripped.to_string()))
}
