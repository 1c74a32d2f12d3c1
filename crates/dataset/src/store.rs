//! Turning a dataset location (a local path, `file://`, `s3://` or `memory://` URL) into
//! an object store and a root path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use crate::error::{Error, Result};

/// The object store and root path of a dataset location.
#[derive(Debug, Clone)]
pub struct Location {
    /// The store that holds the dataset.
    pub store: Arc<dyn ObjectStore>,
    /// The dataset root inside the store.
    pub root: Path,
    /// The location as a URL, for messages.
    pub url: String,
}

/// In-memory stores by name, so that `memory://name` means one store per process.
fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// Resolves `location`. `options` configure the store (for S3: `aws_endpoint`,
/// `aws_region`, `aws_allow_http`, …); credentials come from the environment.
pub fn resolve(location: &str, options: &HashMap<String, String>) -> Result<Location> {
    let invalid = |message: String| Error::InvalidUrl {
        url: location.to_string(),
        message,
    };
    if !location.contains("://") {
        return local(std::path::Path::new(location), location);
    }
    let url = Url::parse(location).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| invalid("not a local file path".into()))?;
            local(&path, location)
        }
        "memory" => {
            let name = url.host_str().unwrap_or_default().to_string();
            let store = {
                let mut stores = memory_stores()
                    .lock()
                    .map_err(|_| invalid("memory store registry poisoned".into()))?;
                stores.entry(name).or_default().clone()
            };
            let root = Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
            Ok(Location {
                store,
                root,
                url: location.to_string(),
            })
        }
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(location);
            for (key, value) in options {
                let key: AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|_| invalid(format!("unknown S3 option {key:?}")))?;
                builder = builder.with_config(key, value);
            }
            let store = builder.build().map_err(|e| invalid(e.to_string()))?;
            let root = Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
            Ok(Location {
                store: Arc::new(store),
                root,
                url: location.to_string(),
            })
        }
        other => Err(invalid(format!(
            "unsupported scheme {other:?} (use a path, file://, s3:// or memory://)"
        ))),
    }
}

fn local(path: &std::path::Path, original: &str) -> Result<Location> {
    let absolute = std::path::absolute(path)?;
    let root = Path::from_absolute_path(&absolute).map_err(|e| Error::InvalidUrl {
        url: original.to_string(),
        message: e.to_string(),
    })?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
        root,
        url: absolute.display().to_string(),
    })
}
