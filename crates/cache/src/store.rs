//! [`CachedStore`]: an [`ObjectStore`] whose reads go through a [`Cache`].
//!
//! A read asks for a range; the range is cut into aligned blocks of the cache's block size.
//! Blocks in memory are used as they are; blocks on the SSD tier are checked and promoted;
//! the missing ones are fetched from the store in one request per run of adjacent blocks,
//! with `If-Match` on the e-tag the cache knows, so a block of one version of an object is
//! never joined to a block of another. A block is kept only once all of its bytes have
//! arrived, so a read that fails half-way leaves nothing behind.
//!
//! Blocks are keyed by store, path, e-tag (or size and modification time) and block
//! number. The e-tag of a write-once object (see
//! [`CacheOptions::immutable`](crate::CacheOptions::immutable)) is trusted until evicted;
//! other objects are checked with a HEAD request when their entry is older than
//! [`CacheOptions::revalidate_after`](crate::CacheOptions::revalidate_after). Writes, deletes,
//! copies and renames through the wrapper forget what was known of their paths.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

use crate::cache::{Cache, ObjectEntry, join};
use crate::stats::Counters;

const STORE: &str = "dala-cache";
/// Requests for missing blocks of one read sent at once.
const FETCHES_AT_ONCE: usize = 10;
/// The most bytes a read takes from the SSD tier on the calling thread: a log entry, a
/// footer, a few pages. A trip to tokio's blocking pool costs more than reading them from
/// the page cache; larger reads make that trip, so that they do not hold up the runtime.
const READ_HERE_BYTES: usize = 256 * 1024;

/// The parts of one block to look for on the SSD tier, for the pieces `members`.
struct DiskAsk {
    members: Vec<usize>,
    key: String,
    len: usize,
    parts: Vec<Range<usize>>,
}

/// The part of one block that a read wants, and its bytes once found.
struct Piece {
    index: u64,
    /// Relative to the block's start.
    within: Range<usize>,
    data: Option<Bytes>,
}

/// An object store whose reads are served from a [`Cache`] when it can.
#[derive(Debug)]
pub struct CachedStore {
    inner: Arc<dyn ObjectStore>,
    cache: Arc<Cache>,
    /// The store's name in cache keys.
    id: Arc<str>,
}

impl CachedStore {
    /// `inner`, read through `cache`.
    pub fn new(inner: Arc<dyn ObjectStore>, cache: Arc<Cache>) -> Self {
        let id = Arc::from(format!("Cached({inner})"));
        Self { inner, cache, id }
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The cache the reads go through.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn key(&self, location: &Path) -> (Arc<str>, Path) {
        (self.id.clone(), location.clone())
    }

    /// The metadata the cache may use without asking the store: known in memory, or for a
    /// write-once object, kept on the SSD tier.
    fn known_meta(&self, location: &Path) -> Option<ObjectMeta> {
        if (self.cache.options.immutable)(location) {
            return self.cache.written_once_meta(&self.id, location);
        }
        let entry = self.cache.objects.get(&self.key(location))?;
        (entry.checked.elapsed() < self.cache.options.revalidate_after).then_some(entry.meta)
    }

    /// A `NotFound` error when the store said, less than
    /// [`CacheOptions::revalidate_after`](crate::CacheOptions::revalidate_after) ago, that
    /// `location` (not a write-once object) does not exist.
    fn known_absent(&self, location: &Path) -> Result<()> {
        if (self.cache.options.immutable)(location) {
            return Ok(());
        }
        if self.cache.recently_missing(&self.id, location) {
            return Err(object_store::Error::NotFound {
                path: location.to_string(),
                source: "the store said so less than the revalidation interval ago".into(),
            });
        }
        Ok(())
    }

    /// Forgets `location` after a failed request; notes it absent when the store said it
    /// does not exist and it is not a write-once object.
    fn note_error(&self, location: &Path, error: &object_store::Error) {
        self.forget(location);
        if matches!(error, object_store::Error::NotFound { .. })
            && !(self.cache.options.immutable)(location)
        {
            self.cache.note_missing(&self.id, location);
        }
    }

    /// Notes an object's metadata as a store just gave it.
    async fn remember(&self, meta: &ObjectMeta) {
        let immutable = (self.cache.options.immutable)(&meta.location);
        let known = self.cache.objects.contains_key(&self.key(&meta.location));
        if immutable && !known && self.cache.disk.is_some() {
            let cache = self.cache.clone();
            let (id, stored) = (self.id.clone(), meta.clone());
            blocking(move || cache.keep_disk_meta(&id, &stored)).await;
        }
        self.note(meta);
    }

    fn note(&self, meta: &ObjectMeta) {
        self.cache.objects.insert(
            self.key(&meta.location),
            ObjectEntry {
                meta: meta.clone(),
                checked: Instant::now(),
            },
        );
    }

    fn forget(&self, location: &Path) {
        self.cache.forget(&self.id, location);
    }

    /// The object's metadata: known, or from a HEAD request.
    async fn meta(&self, location: &Path) -> Result<ObjectMeta> {
        if let Some(meta) = self.known_meta(location) {
            return Ok(meta);
        }
        self.known_absent(location)?;
        Counters::add(&self.cache.counters.revalidations, 1);
        let meta = self
            .inner
            .get_opts(location, GetOptions::new().with_head(true))
            .await
            .inspect_err(|e| self.note_error(location, e))?
            .meta;
        self.remember(&meta).await;
        Ok(meta)
    }

    fn block_key(&self, meta: &ObjectMeta, block: u64) -> String {
        let tag = match &meta.e_tag {
            Some(tag) => tag.clone(),
            None => format!(
                "{}-{}",
                meta.size,
                meta.last_modified.timestamp_nanos_opt().unwrap_or_default()
            ),
        };
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.id, meta.location, tag, self.cache.options.block_size, block
        )
    }

    /// The byte range of block `index` of an object of `size` bytes.
    fn block_range(&self, index: u64, size: u64) -> Range<u64> {
        let block = self.cache.options.block_size;
        index * block..((index + 1) * block).min(size)
    }

    /// Keeps the whole blocks of `data` (bytes `range` of the object `meta`).
    async fn keep_blocks(&self, meta: &ObjectMeta, range: Range<u64>, data: &Bytes) {
        let block = self.cache.options.block_size;
        let mut blocks = Vec::new();
        let mut index = range.start.div_ceil(block);
        while index * block < range.end {
            let span = self.block_range(index, meta.size);
            if span.end > range.end {
                break;
            }
            let from = (span.start - range.start) as usize;
            let to = (span.end - range.start) as usize;
            blocks.push((
                self.block_key(meta, index),
                Bytes::copy_from_slice(&data[from..to]),
            ));
            index += 1;
        }
        let cache = self.cache.clone();
        blocking(move || {
            for (key, block) in blocks {
                cache.store_block(key, block);
            }
        })
        .await;
    }

    /// A read whose object the cache knows nothing of: one request for the aligned blocks
    /// around `wanted` (the whole object when `None`), which also tells the metadata.
    async fn read_unknown(&self, location: &Path, wanted: Option<Range<u64>>) -> Result<GetResult> {
        self.known_absent(location)?;
        let block = self.cache.options.block_size;
        let aligned = wanted
            .as_ref()
            .map(|r| GetRange::Bounded(r.start / block * block..r.end.div_ceil(block) * block));
        let result = self
            .inner
            .get_opts(
                location,
                GetOptions {
                    range: aligned,
                    ..Default::default()
                },
            )
            .await
            .inspect_err(|e| self.note_error(location, e))?;
        let meta = result.meta.clone();
        let got = result.range.clone();
        let attributes = result.attributes.clone();
        let data = result.bytes().await?;
        if data.len() as u64 != got.end - got.start {
            return Err(changed(location, "a short read"));
        }
        Counters::add(&self.cache.counters.store_requests, 1);
        Counters::add(&self.cache.counters.store_bytes, data.len() as u64);
        Counters::add(
            &self.cache.counters.misses,
            (got.end - got.start).div_ceil(block),
        );
        self.remember(&meta).await;
        self.keep_blocks(&meta, got.clone(), &data).await;
        let range = match wanted {
            None => got.clone(),
            Some(r) => clamp(location, r, meta.size)?,
        };
        let data = data.slice((range.start - got.start) as usize..(range.end - got.start) as usize);
        Ok(GetResult {
            payload: single(data),
            meta,
            range,
            attributes,
        })
    }

    /// Bytes `ranges` of the object `meta`, from the tiers where they are, the rest from the
    /// store: the memory tier first, then the SSD tier (all its reads in one trip to the
    /// blocking pool), then one request per run of adjacent missing blocks, sent together.
    /// `Ok(None)` means the object changed since `meta` was taken.
    async fn read_known(
        &self,
        meta: &ObjectMeta,
        ranges: &[Range<u64>],
    ) -> Result<Option<Vec<Bytes>>> {
        let block = self.cache.options.block_size;
        // One piece per block of each range: the part of the block within the range.
        let mut pieces: Vec<Piece> = Vec::new();
        let mut firsts = Vec::with_capacity(ranges.len());
        for range in ranges {
            firsts.push(pieces.len());
            if range.is_empty() {
                continue;
            }
            for index in range.start / block..=(range.end - 1) / block {
                let span = self.block_range(index, meta.size);
                let part =
                    range.start.max(span.start) - span.start..range.end.min(span.end) - span.start;
                let within = part.start as usize..part.end as usize;
                let data = self
                    .cache
                    .lookup_memory(&self.block_key(meta, index), within.clone());
                pieces.push(Piece {
                    index,
                    within,
                    data,
                });
            }
        }
        firsts.push(pieces.len());
        if self.cache.disk.is_some() && pieces.iter().any(|p| p.data.is_none()) {
            // The missing pieces of each block, read from the SSD tier together.
            let mut by_block: Vec<(u64, Vec<usize>)> = Vec::new();
            for (n, piece) in pieces.iter().enumerate().filter(|(_, p)| p.data.is_none()) {
                match by_block.iter_mut().find(|(index, _)| *index == piece.index) {
                    Some((_, members)) => members.push(n),
                    None => by_block.push((piece.index, vec![n])),
                }
            }
            let wanted: Vec<DiskAsk> = by_block
                .into_iter()
                .map(|(index, members)| {
                    let span = self.block_range(index, meta.size);
                    DiskAsk {
                        parts: members.iter().map(|&n| pieces[n].within.clone()).collect(),
                        members,
                        key: self.block_key(meta, index),
                        len: (span.end - span.start) as usize,
                    }
                })
                .collect();
            let asked: usize = wanted.iter().flat_map(|a| &a.parts).map(Range::len).sum();
            let cache = self.cache.clone();
            let read = move || {
                wanted
                    .into_iter()
                    .filter_map(|ask| {
                        let data = cache.lookup_disk(&ask.key, ask.len, &ask.parts)?;
                        Some(ask.members.into_iter().zip(data).collect::<Vec<_>>())
                    })
                    .flatten()
                    .collect::<Vec<_>>()
            };
            let found = match asked <= READ_HERE_BYTES {
                true => read(),
                false => blocking(read).await.unwrap_or_default(),
            };
            for (n, data) in found {
                pieces[n].data = Some(data);
            }
        }
        // The missing blocks, in runs of adjacent ones: one request each, sent together.
        let mut missing: Vec<u64> = pieces
            .iter()
            .filter(|p| p.data.is_none())
            .map(|p| p.index)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let mut runs: Vec<Range<u64>> = Vec::new();
        for index in missing {
            match runs.last_mut() {
                Some(run) if run.end == index => run.end += 1,
                _ => runs.push(index..index + 1),
            }
        }
        let fetched: Vec<Option<(Range<u64>, Bytes)>> = futures::stream::iter(runs)
            .map(|run| async move {
                let span = self.block_range(run.start, meta.size).start
                    ..self.block_range(run.end - 1, meta.size).end;
                let data = self.fetch(meta, span.clone()).await?;
                if let Some(data) = &data {
                    self.keep_blocks(meta, span.clone(), data).await;
                }
                Ok::<_, object_store::Error>(data.map(|data| (span, data)))
            })
            .buffered(FETCHES_AT_ONCE)
            .try_collect()
            .await?;
        for run in fetched {
            let Some((span, data)) = run else {
                return Ok(None);
            };
            for piece in pieces.iter_mut().filter(|p| p.data.is_none()) {
                let start = self.block_range(piece.index, meta.size).start;
                if span.contains(&start) {
                    let at = (start - span.start) as usize;
                    piece.data = Some(data.slice(at + piece.within.start..at + piece.within.end));
                }
            }
        }
        let mut out = Vec::with_capacity(ranges.len());
        for n in 0..ranges.len() {
            let parts: Vec<Bytes> = pieces[firsts[n]..firsts[n + 1]]
                .iter()
                .filter_map(|p| p.data.clone())
                .collect();
            out.push(join(&parts));
        }
        Ok(Some(out))
    }

    /// Bytes `span` of the object `meta` from the store, on the condition that it still
    /// has `meta`'s e-tag; `Ok(None)` when it does not.
    async fn fetch(&self, meta: &ObjectMeta, span: Range<u64>) -> Result<Option<Bytes>> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(span.clone())),
            if_match: meta.e_tag.clone(),
            ..Default::default()
        };
        let result = match self.inner.get_opts(&meta.location, options).await {
            Ok(result) => result,
            Err(object_store::Error::Precondition { .. }) => return Ok(None),
            Err(e) => {
                if matches!(e, object_store::Error::NotFound { .. }) {
                    self.forget(&meta.location);
                }
                return Err(e);
            }
        };
        if result.meta.size != meta.size {
            return Ok(None);
        }
        let data = result.bytes().await?;
        Counters::add(&self.cache.counters.store_requests, 1);
        Counters::add(&self.cache.counters.store_bytes, data.len() as u64);
        let block = self.cache.options.block_size;
        Counters::add(
            &self.cache.counters.misses,
            (span.end - span.start).div_ceil(block),
        );
        if data.len() as u64 != span.end - span.start {
            return Ok(None);
        }
        Ok(Some(data))
    }

    /// One attempt at a cached read; `Ok(None)` when the object changed under it.
    async fn read(&self, location: &Path, range: Option<GetRange>) -> Result<Option<GetResult>> {
        let meta = match (self.known_meta(location), &range) {
            (Some(meta), _) => meta,
            (None, None) => return self.read_unknown(location, None).await.map(Some),
            (None, Some(GetRange::Bounded(r))) => {
                return self.read_unknown(location, Some(r.clone())).await.map(Some);
            }
            (None, Some(_)) => self.meta(location).await?,
        };
        let wanted = match &range {
            None => 0..meta.size,
            Some(range) => range
                .as_range(meta.size)
                .map_err(|e| generic(location, e))?,
        };
        let Some(mut data) = self
            .read_known(&meta, std::slice::from_ref(&wanted))
            .await?
        else {
            return Ok(None);
        };
        let data = data.pop().unwrap_or_default();
        Ok(Some(GetResult {
            payload: single(data),
            meta,
            range: wanted,
            attributes: Default::default(),
        }))
    }
}

impl std::fmt::Display for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

#[async_trait]
impl ObjectStore for CachedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.forget(location);
        let result = self.inner.put_opts(location, payload, opts).await;
        self.forget(location);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // The object appears when the upload completes; forget it now and when a later
        // read finds a different e-tag.
        self.forget(location);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let conditional = options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.version.is_some();
        if conditional {
            return self.inner.get_opts(location, options).await;
        }
        if options.head {
            let meta = self.meta(location).await?;
            return Ok(GetResult {
                payload: single(Bytes::new()),
                range: 0..meta.size,
                meta,
                attributes: Default::default(),
            });
        }
        if let Some(result) = self.read(location, options.range.clone()).await? {
            return Ok(result);
        }
        // The object changed since the cache saw it: forget it and read it afresh.
        self.forget(location);
        match self.read(location, options.range).await? {
            Some(result) => Ok(result),
            None => Err(changed(location, "a changing object")),
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let Some(first) = ranges.first() else {
            return Ok(Vec::new());
        };
        for _ in 0..2 {
            let meta = match self.known_meta(location) {
                Some(meta) => meta,
                // A read of the first range tells the metadata without a HEAD request.
                None => {
                    self.read(location, Some(GetRange::Bounded(first.clone())))
                        .await?;
                    self.meta(location).await?
                }
            };
            let wanted = ranges
                .iter()
                .map(|r| clamp(location, r.clone(), meta.size))
                .collect::<Result<Vec<_>>>()?;
            if let Some(data) = self.read_known(&meta, &wanted).await? {
                return Ok(data);
            }
            // The object changed since the cache saw it: forget it and read it afresh.
            self.forget(location);
        }
        Err(changed(location, "a changing object"))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let cache = self.cache.clone();
        let id = self.id.clone();
        let forget_first = {
            let cache = cache.clone();
            let id = id.clone();
            locations.map(move |location| {
                if let Ok(path) = &location {
                    cache.forget(&id, path);
                }
                location
            })
        };
        self.inner
            .delete_stream(forget_first.boxed())
            .map(move |deleted| {
                if let Ok(path) = &deleted {
                    cache.forget(&id, path);
                }
                deleted
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.forget(to);
        let result = self.inner.copy_opts(from, to, options).await;
        self.forget(to);
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.forget(to);
        let result = self.inner.rename_opts(from, to, options).await;
        self.forget(from);
        self.forget(to);
        result
    }
}

fn single(data: Bytes) -> GetResultPayload {
    GetResultPayload::Stream(futures::stream::once(async move { Ok(data) }).boxed())
}

/// `range` within an object of `size` bytes, as the stores answer it.
fn clamp(location: &Path, range: Range<u64>, size: u64) -> Result<Range<u64>> {
    GetRange::Bounded(range)
        .as_range(size)
        .map_err(|e| generic(location, e))
}

fn generic(location: &Path, e: impl std::fmt::Display) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: format!("{location}: {e}").into(),
    }
}

fn changed(location: &Path, what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: format!("{location} changed while it was read ({what})").into(),
    }
}

/// Runs `f` where blocking is allowed: on tokio's blocking pool inside a runtime, else
/// here. `None` if it panicked.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::spawn_blocking(f).await.ok()
    } else {
        Some(f())
    }
}
