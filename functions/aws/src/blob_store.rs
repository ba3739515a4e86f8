//! [`S3BlobStore`]: the quarantine bucket, holding the verified bodies too large for a status
//! item ([`BlobStore`]). The bucket is the Pulumi program's (encrypted, public access blocked,
//! a lifecycle rule ending objects after the status items' retention); [`create_bucket`]
//! makes one on an AWS-compatible endpoint for `payhook bootstrap` and the tests.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use payhook_core::blob::{BlobError, BlobStore};

use crate::client::{ClientConstruction, SdkClient};
use crate::error::{ProvisionError, describe};

/// The S3 client for `config`: path-style addressing when an endpoint is set (moto, LocalStack
/// answer on one host), virtual-hosted style on AWS itself.
pub fn s3_client(config: &SdkConfig) -> Client {
    let path_style = config.endpoint_url().is_some();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}

/// One S3 bucket as a [`BlobStore`].
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: SdkClient<Client>,
    bucket: String,
}

impl S3BlobStore {
    /// The blobs of `bucket`.
    pub fn new(client: impl Into<SdkClient<Client>>, bucket: impl Into<String>) -> Self {
        S3BlobStore {
            client: client.into(),
            bucket: bucket.into(),
        }
    }

    /// The blobs of `bucket`, through an [`s3_client`] built from `config` when the store is
    /// first used. A function whose bucket only holds what few requests quarantine does not pay
    /// for S3's client (its endpoint rules are the SDK's largest) at every cold start.
    pub fn on_first_use(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        S3BlobStore::new(
            SdkClient::new(config, s3_client, ClientConstruction::OnFirstUse),
            bucket,
        )
    }

    /// Whether the store's client has been built.
    pub fn is_client_built(&self) -> bool {
        self.client.is_built()
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| BlobError::Unavailable(describe("S3 PutObject", &err)))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(BlobError::Unavailable(describe("S3 GetObject", &err))),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|err| BlobError::Unavailable(format!("S3 GetObject `{key}`: {err}")))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}

/// Creates `bucket` in the client's region unless this account already has it; `true` when it
/// was created. For an AWS-compatible endpoint (bootstrap, tests); the deployed bucket is
/// Pulumi's.
pub async fn create_bucket(client: &Client, bucket: &str) -> Result<bool, ProvisionError> {
    // In us-east-1 CreateBucket succeeds again on a bucket one already owns: ask first.
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(false);
    }
    let mut request = client.create_bucket().bucket(bucket);
    let region = client.config().region().map(|r| r.as_ref().to_owned());
    // us-east-1 takes no location constraint; every other region needs its own.
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            Ok(false)
        }
        Err(err) => Err(ProvisionError::Aws(describe("S3 CreateBucket", &err))),
    }
}
