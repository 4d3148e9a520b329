//! Object storage for raw documents: the `BlobStore` port over the `object_store` crate. A local
//! directory is the embedded default; S3 (or any S3-compatible server) by configuration.
//!
//! Keys arrive already built from validated ids (`tenantry_domain::documents::object_key`); this
//! adapter still refuses any key that is not a plain relative path (no `..`, no empty or dot
//! segments, no leading `/`), so even a caller mistake cannot write outside the store's root.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use tenantry_app::{BlobStore, StoreError};

/// Where objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobConfig {
    /// A directory on the local disk (created if missing).
    Local(std::path::PathBuf),
    S3(S3Config),
}

/// An S3 bucket (AWS or any S3-compatible server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:9000` for a local server; `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow plain HTTP (local servers).
    pub allow_http: bool,
}

/// The adapter.
#[derive(Clone)]
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
    description: String,
}

impl std::fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl ObjectBlobStore {
    pub fn open(config: &BlobConfig) -> anyhow::Result<Self> {
        match config {
            BlobConfig::Local(dir) => {
                // private to the service's user (0700 on Unix); an existing directory is left as it is
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(dir).with_context(|| format!("create object directory {}", dir.display()))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .with_context(|| format!("open object directory {}", dir.display()))?
                    .with_automatic_cleanup(true);
                Ok(Self { inner: Arc::new(fs), description: format!("local directory {}", dir.display()) })
            }
            BlobConfig::S3(s3) => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key)
                    .with_allow_http(s3.allow_http);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
                }
                let store = builder.build().with_context(|| format!("configure S3 bucket {}", s3.bucket))?;
                Ok(Self {
                    inner: Arc::new(store),
                    description: format!("s3 bucket {} at {}", s3.bucket, s3.endpoint.as_deref().unwrap_or("AWS")),
                })
            }
        }
    }

    pub fn description(&self) -> &str {
        &self.description
    }
}

/// Parses `key` as a plain relative path, refusing anything that could escape a prefix.
fn path(key: &str) -> Result<Path, StoreError> {
    let plain = !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && !key.contains('\\')
        && !key.chars().any(char::is_control);
    if !plain {
        return Err(StoreError::ConstraintViolated(format!("object key {key:?} is not a plain relative path")));
    }
    Path::parse(key).map_err(|e| StoreError::ConstraintViolated(format!("object key {key:?}: {e}")))
}

fn unavailable(e: object_store::Error, what: &'static str) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(e).context(what))
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let p = path(key)?;
        self.inner.put(&p, PutPayload::from(bytes)).await.map_err(|e| unavailable(e, "put object"))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let p = path(key)?;
        match self.inner.get(&p).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(|e| unavailable(e, "read object"))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e, "get object")),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let p = path(key)?;
        match self.inner.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e, "delete object")),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = path(prefix.trim_end_matches('/'))?;
        let metas: Vec<_> =
            self.inner.list(Some(&p)).try_collect().await.map_err(|e| unavailable(e, "list objects"))?;
        let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_are_refused() {
        for bad in ["", "/abs", "a/../b", "../x", "a//b", "./a", "a/./b", "a\\b", "a/\u{0}b", ".."] {
            assert!(path(bad).is_err(), "{bad:?}");
        }
        assert!(path("tenants/acme/documents/d-1.json").is_ok());
    }
}
