//! Where a catalog lives and how it changes atomically.
//!
//! Every change writes the whole new state as `<folder>/_<stem>_log/<version>.json` with a
//! create-if-absent put (a hard link on local disks, a conditional put on S3): of two
//! processes changing the catalog at once, one wins each version and the other re-reads and
//! applies its change again, so both land. After that, the catalog file itself
//! (`catalog.json`) is overwritten with the same state, as the readable copy and the hint
//! for tools that read it directly. A reader takes the newest of the catalog file and the
//! latest log entry, then follows newer entries until there are none. A crash between the
//! two writes loses nothing; a change that fails writes nothing.
//!
//! The log keeps its newest [`KEEP_LOG_ENTRIES`] entries; older ones are deleted, oldest
//! first, every [`PRUNE_EVERY`] versions. A writer whose change was based on an entry that
//! pruning has since removed was more than that many versions behind: its entry is
//! withdrawn and the change applied again to the latest state.

use std::sync::Arc;

use bytes::Bytes;
use dala_dataset::store::resolve as resolve_location;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};
use crate::model::CatalogState;

/// How often a change is retried when other processes keep winning.
const MAX_ATTEMPTS: usize = 100;

/// How many of the newest log entries are kept.
pub const KEEP_LOG_ENTRIES: u64 = 100;

/// Old log entries are pruned when a commit's version is a multiple of this.
pub const PRUNE_EVERY: u64 = 20;

/// A catalog's file and log in their object store.
#[derive(Debug, Clone)]
pub(crate) struct CatalogLog {
    store: Arc<dyn ObjectStore>,
    file: Path,
    log: Path,
    /// The catalog's location, for messages.
    pub url: String,
    /// The folder of a local catalog (relative table locations are inside it).
    pub local_dir: Option<std::path::PathBuf>,
}

impl CatalogLog {
    /// The catalog at `location` (the catalog file: a path or a URL).
    pub fn new(location: &str) -> Result<Self> {
        let resolved = resolve_location(location, &Default::default())?;
        let file = resolved.root;
        let name = file.filename().unwrap_or("catalog.json").to_string();
        let stem = name.strip_suffix(".json").unwrap_or(&name).to_string();
        let parent: Path = file
            .parts()
            .take(file.parts().count().saturating_sub(1))
            .collect();
        let local_dir = (!location.contains("://") || location.starts_with("file://"))
            .then(|| std::path::PathBuf::from(&resolved.url))
            .and_then(|p| p.parent().map(|d| d.to_path_buf()));
        Ok(CatalogLog {
            store: resolved.store,
            log: parent.clone().join(format!("_{stem}_log")),
            file,
            url: resolved.url,
            local_dir,
        })
    }

    fn invalid(&self, message: impl std::fmt::Display) -> Error {
        Error::InvalidCatalog {
            location: self.url.clone(),
            message: message.to_string(),
        }
    }

    fn entry(&self, version: u64) -> Path {
        self.log.clone().join(format!("{version:020}.json"))
    }

    async fn read(&self, path: &Path) -> Result<Option<CatalogState>> {
        match self.store.get(path).await {
            Ok(result) => {
                let bytes = result.bytes().await?;
                let state = serde_json::from_slice(&bytes)
                    .map_err(|e| self.invalid(format!("{path}: {e}")))?;
                Ok(Some(state))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the object at `path` exists and holds exactly `bytes`.
    async fn holds(&self, path: &Path, bytes: &Bytes) -> Result<bool> {
        match self.store.get(path).await {
            Ok(result) => Ok(result.bytes().await? == *bytes),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The versions in the log, ascending.
    async fn entries(&self) -> Result<Vec<u64>> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self.store.list(Some(&self.log)).try_collect().await?;
        let mut versions: Vec<u64> = listed
            .iter()
            .filter_map(|meta| {
                meta.location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// The latest state, or `None` when the catalog does not exist yet.
    pub async fn load(&self) -> Result<Option<CatalogState>> {
        Ok(self.load_with_origin().await?.0)
    }

    /// The latest state, and whether it came from a log entry.
    async fn load_with_origin(&self) -> Result<(Option<CatalogState>, bool)> {
        let mut state = self.read(&self.file).await?;
        let mut from_log = false;
        let file_version = state.as_ref().map(|s| s.version);
        if let Some(&latest) = self.entries().await?.last()
            && file_version.is_none_or(|v| latest > v)
            && let Some(newer) = self.read(&self.entry(latest)).await?
        {
            state = Some(newer);
            from_log = true;
        }
        let mut next = state.as_ref().map_or(0, |s| s.version + 1);
        while let Some(newer) = self.read(&self.entry(next)).await? {
            if newer.version != next {
                return Err(self.invalid(format!(
                    "log entry {next} says it is version {}",
                    newer.version
                )));
            }
            state = Some(newer);
            from_log = true;
            next += 1;
        }
        Ok((state, from_log))
    }

    /// Deletes the log entries older than the newest [`KEEP_LOG_ENTRIES`], oldest first.
    async fn prune(&self, latest: u64) -> Result<()> {
        let Some(last_pruned) = latest.checked_sub(KEEP_LOG_ENTRIES) else {
            return Ok(());
        };
        for version in self.entries().await? {
            if version > last_pruned {
                break;
            }
            match self.store.delete(&self.entry(version)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Applies `change` to the latest state and commits the result as the next version,
    /// retrying on the latest state when another process committed first. Nothing is
    /// written when `change` fails.
    pub async fn commit<F>(&self, change: F) -> Result<CatalogState>
    where
        F: Fn(&mut CatalogState) -> Result<()>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let (current, from_log) = self.load_with_origin().await?;
            let mut state = current.clone().unwrap_or_default();
            change(&mut state)?;
            state.version = current.as_ref().map_or(0, |s| s.version + 1);
            let json = serde_json::to_vec_pretty(&state)
                .map_err(|e| self.invalid(format!("cannot serialize: {e}")))?;
            let bytes = Bytes::from(json);
            let create = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(
                    &self.entry(state.version),
                    PutPayload::from(bytes.clone()),
                    create,
                )
                .await
            {
                Ok(_) => {}
                // The refused put may be the store's retry of ours, which landed: then
                // the entry holds our bytes.
                Err(object_store::Error::AlreadyExists { .. }) => {
                    if !self.holds(&self.entry(state.version), &bytes).await? {
                        continue;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(base) = current.as_ref().filter(|_| from_log) {
                // Pruning deletes oldest first, so if the entry this change was based on
                // is gone, so was the one just created in its place: ours is stale.
                if let Err(object_store::Error::NotFound { .. }) =
                    self.store.head(&self.entry(base.version)).await
                {
                    self.store.delete(&self.entry(state.version)).await?;
                    continue;
                }
            }
            dala_dataset::failpoint::hit("catalog:after-entry");
            // The readable copy; the log entry above is what counts.
            self.store.put(&self.file, PutPayload::from(bytes)).await?;
            if state.version % PRUNE_EVERY == 0 {
                self.prune(state.version).await?;
            }
            return Ok(state);
        }
        Err(Error::Contention {
            location: self.url.clone(),
            attempts: MAX_ATTEMPTS,
        })
    }
}
