//! Provider secrets: the port the validator reads them through (SSM Parameter Store in AWS,
//! `payhook_aws::SsmSecretStore`) and the store held in memory.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::provider::Provider;
use crate::secret::Secret;

/// What the validator needs to verify one provider's webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSecrets {
    /// Stripe endpoint secrets (several during a rotation) or Square signature keys.
    pub signing_secrets: Vec<Secret>,
    /// Square: the notification URL configured on the subscription (signed with the body).
    pub notification_url: Option<String>,
    /// PayPal: the receiver's webhook id (part of the signed string).
    pub webhook_id: Option<String>,
}

/// Where provider secrets come from (SSM Parameter Store in AWS).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secrets of `provider`. A provider with nothing configured fails closed.
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError>;
}

/// Secrets could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The provider has no secrets configured.
    #[error("no secrets configured for {0}")]
    NotConfigured(Provider),
    /// The store could not be reached.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

impl SecretError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::NotConfigured(_) => "provider_not_configured",
            SecretError::Unavailable(_) => "secret_store_unavailable",
        }
    }
}

/// Secrets held in memory (local stack, tests).
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    secrets: HashMap<Provider, ProviderSecrets>,
}

impl MemorySecretStore {
    /// An empty store: every provider is unconfigured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the secrets of one provider.
    pub fn with(mut self, provider: Provider, secrets: ProviderSecrets) -> Self {
        self.secrets.insert(provider, secrets);
        self
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError> {
        self.secrets
            .get(&provider)
            .cloned()
            .ok_or(SecretError::NotConfigured(provider))
    }
}
