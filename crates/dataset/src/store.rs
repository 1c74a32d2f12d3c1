//! Turning a dataset location (a local path, `file://`, `s3://` or `memory://` URL) into
//! an object store and a root path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use dala_cache::Cache;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpService, ReqwestConnector,
};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// Storage option: how many times a failed request to a remote store is retried (default 10).
pub const MAX_RETRIES_OPTION: &str = "max_retries";
/// Storage option: seconds after which a failing request to a remote store is no longer
/// retried (default 180).
pub const RETRY_TIMEOUT_OPTION: &str = "retry_timeout";

/// The object store and root path of a dataset location.
#[derive(Debug, Clone)]
pub struct Location {
    /// The store that holds the dataset.
    pub store: Arc<dyn ObjectStore>,
    /// The dataset root inside the store.
    pub root: Path,
    /// The location as a URL, for messages.
    pub url: String,
    /// The cache `store` reads through, if any.
    pub cache: Option<Arc<Cache>>,
    /// `store` itself when it is the local file system read without a cache: small data
    /// files are then read straight from disk on the thread that decodes them.
    pub local: Option<Arc<LocalFileSystem>>,
}

/// Which cache a location's store reads through.
#[derive(Debug, Clone, Default)]
pub enum CacheChoice {
    /// The process-wide cache, where the environment (`DALA_CACHE`) applies it: by default
    /// to remote stores only.
    #[default]
    Process,
    /// This cache.
    Use(Arc<Cache>),
    /// None.
    Off,
}

/// In-memory stores by name, so that `memory://name` means one store per process.
fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// S3 stores by bucket and configuration, so that opening datasets again reuses one
/// client and its open connections instead of connecting afresh.
fn s3_stores() -> &'static Mutex<HashMap<String, Arc<dyn ObjectStore>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// What an S3 store built for `url` with `options` depends on: the bucket, the options and
/// the `AWS_*` environment variables (which the builder reads).
fn s3_store_key(url: &Url, options: &HashMap<String, String>) -> String {
    let mut options: Vec<_> = options.iter().collect();
    options.sort();
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with("AWS_"))
        .collect();
    env.sort();
    format!(
        "{}://{}\n{options:?}\n{env:?}",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

/// Resolves `location`, its reads going through the process-wide cache where the
/// environment applies it (see [`CacheChoice::Process`]). `options` configure the store
/// (for S3: `aws_endpoint`, `aws_region`, `aws_allow_http`, …); credentials come from the
/// environment.
pub fn resolve(location: &str, options: &HashMap<String, String>) -> Result<Location> {
    resolve_with(location, options, &CacheChoice::Process)
}

/// Resolves `location` with its reads going through the cache `cache` picks.
pub fn resolve_with(
    location: &str,
    options: &HashMap<String, String>,
    cache: &CacheChoice,
) -> Result<Location> {
    let (mut resolved, remote) = resolve_store(location, options)?;
    let cache = match cache {
        CacheChoice::Process if Cache::applies_to(remote)? => Cache::process()?,
        CacheChoice::Process | CacheChoice::Off => None,
        CacheChoice::Use(cache) => Some(cache.clone()),
    };
    if let Some(cache) = &cache {
        resolved.store = cache.wrap(resolved.store);
        resolved.local = None;
    }
    resolved.cache = cache;
    Ok(resolved)
}

/// The store of `location`, and whether it is remote.
fn resolve_store(location: &str, options: &HashMap<String, String>) -> Result<(Location, bool)> {
    let invalid = |message: String| Error::InvalidUrl {
        url: location.to_string(),
        message,
    };
    if !location.contains("://") {
        return Ok((local(std::path::Path::new(location), location)?, false));
    }
    let url = Url::parse(location).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| invalid("not a local file path".into()))?;
            Ok((local(&path, location)?, false))
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
            let location = Location {
                store,
                root,
                url: location.to_string(),
                cache: None,
                local: None,
            };
            Ok((location, false))
        }
        "s3" | "s3a" => {
            let root = Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
            let key = s3_store_key(&url, options);
            let known = s3_stores()
                .lock()
                .map_err(|_| invalid("S3 store registry poisoned".into()))?
                .get(&key)
                .cloned();
            let store = match known {
                Some(store) => store,
                None => {
                    let store = s3_store(location, options)?;
                    s3_stores()
                        .lock()
                        .map_err(|_| invalid("S3 store registry poisoned".into()))?
                        .entry(key)
                        .or_insert(store)
                        .clone()
                }
            };
            let location = Location {
                store,
                root,
                url: location.to_string(),
                cache: None,
                local: None,
            };
            Ok((location, true))
        }
        other => Err(invalid(format!(
            "unsupported scheme {other:?} (use a path, file://, s3:// or memory://)"
        ))),
    }
}

/// A new S3 store for `location` (an `s3://bucket/…` URL) configured by `options`.
fn s3_store(location: &str, options: &HashMap<String, String>) -> Result<Arc<dyn ObjectStore>> {
    let invalid = |message: String| Error::InvalidUrl {
        url: location.to_string(),
        message,
    };
    let mut builder = AmazonS3Builder::from_env().with_url(location);
    let mut retry = RetryConfig::default();
    for (key, value) in options {
        match key.as_str() {
            MAX_RETRIES_OPTION => {
                retry.max_retries = value
                    .parse()
                    .map_err(|_| invalid(format!("{key} must be a whole number, not {value:?}")))?;
                continue;
            }
            RETRY_TIMEOUT_OPTION => {
                retry.retry_timeout = value
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        invalid(format!("{key} must be a number of seconds, not {value:?}"))
                    })?;
                continue;
            }
            _ => {}
        }
        let key: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| invalid(format!("unknown S3 option {key:?}")))?;
        builder = builder.with_config(key, value);
    }
    let store = builder
        .with_retry(retry)
        .with_http_connector(LazyConnector)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Arc::new(store))
}

/// Builds each HTTP client of a store on its first request instead of with the store:
/// building one loads the system's root certificates (milliseconds), which an open and a
/// scan served wholly from the cache never need.
#[derive(Debug)]
struct LazyConnector;

impl HttpConnector for LazyConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(LazyClient {
            options: options.clone(),
            client: OnceLock::new(),
        }))
    }
}

/// An HTTP client built when first used (see [`LazyConnector`]).
#[derive(Debug)]
struct LazyClient {
    options: ClientOptions,
    client: OnceLock<std::result::Result<HttpClient, String>>,
}

#[async_trait::async_trait]
impl HttpService for LazyClient {
    async fn call(&self, request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let client = self.client.get_or_init(|| {
            ReqwestConnector::default()
                .connect(&self.options)
                .map_err(|e| e.to_string())
        });
        match client {
            Ok(client) => client.execute(request).await,
            Err(message) => Err(HttpError::new(
                HttpErrorKind::Unknown,
                std::io::Error::other(format!("building the HTTP client: {message}")),
            )),
        }
    }
}

fn local(path: &std::path::Path, original: &str) -> Result<Location> {
    let absolute = std::path::absolute(path)?;
    let root = Path::from_absolute_path(&absolute).map_err(|e| Error::InvalidUrl {
        url: original.to_string(),
        message: e.to_string(),
    })?;
    let store = Arc::new(LocalFileSystem::new().with_automatic_cleanup(true));
    Ok(Location {
        store: store.clone(),
        root,
        url: absolute.display().to_string(),
        cache: None,
        local: Some(store),
    })
}
