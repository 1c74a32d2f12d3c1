//! The query-result cache: the batches of a query's answer, kept in memory and served again
//! while nothing it read has changed.
//!
//! An answer is keyed by the engine, the normalised SQL (as the catalog rewrote it, with
//! each table replaced by its scan), the bound parameters, and the location and version of
//! every dataset the query read. Each query opens its tables at their latest versions, so a
//! commit to any of them makes a new key and the old answer is never served again (it ages
//! out of the budget). Answers larger than the per-answer limit are streamed and not kept;
//! an answer whose stream failed is not kept either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use dala_dataset::{Engine, RecordBatchStream, Scalar};
use futures::StreamExt;
use serde::Serialize;

use crate::query::PlannedQuery;

/// A memory cache of query answers, shared by the queries of a [`Catalog`](crate::Catalog)
/// that has one (see [`Catalog::with_result_cache`](crate::Catalog::with_result_cache)).
#[derive(Debug)]
pub struct ResultCache {
    answers: moka::sync::Cache<String, Arc<Vec<RecordBatch>>>,
    max_answer_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a result cache has served and holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResultCacheStats {
    /// Queries answered from the cache.
    pub hits: u64,
    /// Queries the engine ran.
    pub misses: u64,
    /// Answers held.
    pub entries: u64,
    /// Bytes of the answers held.
    pub bytes: u64,
}

impl ResultCache {
    /// A cache of at most `budget_bytes` of answers, each at most a quarter of it.
    pub fn new(budget_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            answers: moka::sync::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|_key: &String, batches: &Arc<Vec<RecordBatch>>| {
                    u32::try_from(answer_bytes(batches)).unwrap_or(u32::MAX)
                })
                .build(),
            max_answer_bytes: budget_bytes / 4,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Counts so far and what the cache holds.
    pub fn stats(&self) -> ResultCacheStats {
        self.answers.run_pending_tasks();
        ResultCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.answers.entry_count(),
            bytes: self.answers.weighted_size(),
        }
    }

    /// Forgets every answer.
    pub fn clear(&self) {
        self.answers.invalidate_all();
    }

    /// The key of a planned query's answer.
    pub(crate) fn key(planned: &PlannedQuery, engine: Engine, params: &[Scalar]) -> String {
        let mut key = format!("{engine}\n{}\n{params:?}", planned.sql);
        for table in &planned.tables {
            key.push_str(&format!(
                "\n{} {} {}@{}",
                table.registered,
                table.name,
                table.dataset.url(),
                table.dataset.version()
            ));
        }
        key
    }

    /// The answer kept under `key`, as a stream.
    pub(crate) fn get(&self, key: &str) -> Option<RecordBatchStream> {
        let Some(batches) = self.answers.get(key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        let batches: Vec<RecordBatch> = batches.as_ref().clone();
        Some(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
    }

    /// `stream`, passing its batches on as they come and keeping them under `key` once it
    /// has ended without an error (if they fit the per-answer limit).
    pub(crate) fn keep(
        self: &Arc<Self>,
        key: String,
        stream: RecordBatchStream,
    ) -> RecordBatchStream {
        struct Tee {
            cache: Arc<ResultCache>,
            key: String,
            kept: Option<Vec<RecordBatch>>,
            bytes: u64,
            inner: RecordBatchStream,
        }
        let tee = Tee {
            cache: self.clone(),
            key,
            kept: Some(Vec::new()),
            bytes: 0,
            inner: stream,
        };
        futures::stream::unfold(tee, |mut tee| async move {
            match tee.inner.next().await {
                Some(Ok(batch)) => {
                    tee.bytes += batch.get_array_memory_size() as u64;
                    if tee.bytes > tee.cache.max_answer_bytes {
                        tee.kept = None;
                    } else if let Some(kept) = &mut tee.kept {
                        kept.push(batch.clone());
                    }
                    Some((Ok(batch), tee))
                }
                Some(Err(e)) => {
                    tee.kept = None;
                    Some((Err(e), tee))
                }
                None => {
                    if let Some(kept) = tee.kept.take() {
                        tee.cache.answers.insert(tee.key.clone(), Arc::new(kept));
                    }
                    None
                }
            }
        })
        .boxed()
    }
}

fn answer_bytes(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::get_array_memory_size).sum()
}
