//! The [`BlobStore`] port: whole objects by key, for what does not fit a status item. The
//! validator keeps a quarantined body larger than [`MAX_QUARANTINED_BODY_BYTES`] there (the
//! quarantine S3 bucket as deployed, [`MemoryBlobStore`] locally) and the item keeps its key;
//! a replay reads it back.
//!
//! [`MAX_QUARANTINED_BODY_BYTES`]: crate::validator::MAX_QUARANTINED_BODY_BYTES

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::provider::Provider;

/// Key prefix of quarantined bodies (the bucket's lifecycle rule applies to it).
pub const QUARANTINE_KEY_PREFIX: &str = "quarantine/";

/// The key of a quarantined `body` of `provider`: `quarantine/{provider}/{sha256 of the body}`.
/// Derived from the bytes, so a repeated delivery writes the same object again and a key never
/// needs escaping.
pub fn quarantine_key(provider: Provider, body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    format!(
        "{QUARANTINE_KEY_PREFIX}{}/{}",
        provider.as_str(),
        hex::encode(digest.as_ref())
    )
}

/// A blob store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The store could not be reached or refused the call.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// No blob store is configured where one is needed (a body kept in S3, read without one).
    #[error("no blob store is configured")]
    NotConfigured,
    /// The item points at an object that is not there (deleted, or expired by the lifecycle rule).
    #[error("no object `{0}` in the blob store")]
    Missing(String),
}

impl BlobError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            BlobError::Unavailable(_) => "blob_store_unavailable",
            BlobError::NotConfigured => "blob_store_not_configured",
            BlobError::Missing(_) => "blob_missing",
        }
    }
}

/// Objects by key.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes `bytes` under `key` (replacing what is there).
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError>;
    /// The object under `key`, `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
}

/// Blobs in memory (`payhook serve`, tests).
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    objects: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys held, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .objects
            .lock()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        self.objects
            .lock()
            .map_err(|_| BlobError::Unavailable("blob store lock poisoned".into()))?
            .insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self
            .objects
            .lock()
            .map_err(|_| BlobError::Unavailable("blob store lock poisoned".into()))?
            .get(key)
            .cloned())
    }
}

#[async_trait]
impl<B: BlobStore + ?Sized> BlobStore for std::sync::Arc<B> {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        (**self).put(key, bytes).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        (**self).get(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarantine_key_is_fixed_by_provider_and_bytes() {
        let key = quarantine_key(Provider::Square, b"{}");
        assert_eq!(key, quarantine_key(Provider::Square, b"{}"));
        assert_ne!(key, quarantine_key(Provider::Square, b"{ }"));
        assert_ne!(key, quarantine_key(Provider::Stripe, b"{}"));
        assert!(key.starts_with("quarantine/square/"), "{key}");
        assert_eq!(key.len(), "quarantine/square/".len() + 64);
    }

    #[tokio::test]
    async fn memory_blobs_read_back_what_was_written() {
        let store = MemoryBlobStore::new();
        assert_eq!(store.get("k").await.unwrap(), None);
        store.put("k", b"bytes").await.unwrap();
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"bytes"[..])
        );
    }
}
