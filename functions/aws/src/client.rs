//! [`SdkClient`]: an AWS SDK client an adapter holds, either built already or built from an
//! [`SdkConfig`] the first time it is used, and [`ClientConstruction`], which of the two a
//! Lambda's [`Adapters`](crate::Adapters) choose.
//!
//! Building a client does no I/O, but it is not free: each SDK crate parses its endpoint
//! partition table and builds its runtime plugins, about 0.1–0.3 ms each, in a Lambda's init.
//! In an on-demand cold start, init and the first invocation both sit in front of the first
//! request, so building the clients when that request first needs them costs the request
//! nothing and takes them out of init. With provisioned concurrency, init runs before any
//! request arrives: there everything is built at init (Lambda says which with
//! `AWS_LAMBDA_INITIALIZATION_TYPE`).

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;

/// `AWS_LAMBDA_INITIALIZATION_TYPE`: `on-demand`, `provisioned-concurrency` or `snap-start`.
pub const INITIALIZATION_TYPE_ENV: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";

/// When the adapters' clients are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientConstruction {
    /// At construction (init).
    Eager,
    /// When first used.
    OnFirstUse,
}

impl ClientConstruction {
    /// From Lambda's initialisation type: on first use for an on-demand environment, eagerly
    /// when init runs ahead of the requests (provisioned concurrency, SnapStart) or when the
    /// variable is unset (not in Lambda: tests, tools).
    pub fn for_initialization_type(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some("on-demand") => ClientConstruction::OnFirstUse,
            _ => ClientConstruction::Eager,
        }
    }

    /// [`ClientConstruction::for_initialization_type`] of this process's environment.
    pub fn from_env() -> Self {
        Self::for_initialization_type(std::env::var(INITIALIZATION_TYPE_ENV).ok().as_deref())
    }
}

/// A client, built or to be built on first use; dereferences to the client. Clones share it:
/// a client built through one clone is the one every clone uses.
pub struct SdkClient<C>(Inner<C>);

enum Inner<C> {
    Built(C),
    OnFirstUse(Arc<Lazy<C>>),
}

struct Lazy<C> {
    config: SdkConfig,
    make: fn(&SdkConfig) -> C,
    client: OnceLock<C>,
}

impl<C> SdkClient<C> {
    /// A client built from `config` with `make` when it is first used, or now, as
    /// `construction` says.
    pub fn new(
        config: &SdkConfig,
        make: fn(&SdkConfig) -> C,
        construction: ClientConstruction,
    ) -> Self {
        match construction {
            ClientConstruction::Eager => SdkClient(Inner::Built(make(config))),
            ClientConstruction::OnFirstUse => SdkClient(Inner::OnFirstUse(Arc::new(Lazy {
                config: config.clone(),
                make,
                client: OnceLock::new(),
            }))),
        }
    }

    /// Whether the client has been built.
    pub fn is_built(&self) -> bool {
        match &self.0 {
            Inner::Built(_) => true,
            Inner::OnFirstUse(lazy) => lazy.client.get().is_some(),
        }
    }
}

impl<C> From<C> for SdkClient<C> {
    fn from(client: C) -> Self {
        SdkClient(Inner::Built(client))
    }
}

impl<C> Deref for SdkClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        match &self.0 {
            Inner::Built(client) => client,
            Inner::OnFirstUse(lazy) => lazy.client.get_or_init(|| (lazy.make)(&lazy.config)),
        }
    }
}

impl<C: Clone> Clone for SdkClient<C> {
    fn clone(&self) -> Self {
        SdkClient(match &self.0 {
            Inner::Built(client) => Inner::Built(client.clone()),
            Inner::OnFirstUse(lazy) => Inner::OnFirstUse(Arc::clone(lazy)),
        })
    }
}

impl<C> fmt::Debug for SdkClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkClient")
            .field("built", &self.is_built())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn make(config: &SdkConfig) -> String {
        BUILT.fetch_add(1, Ordering::SeqCst);
        config.region().map(ToString::to_string).unwrap_or_default()
    }

    #[test]
    fn lambda_initialization_types_choose_when_clients_are_built() {
        use ClientConstruction::{Eager, OnFirstUse};
        let of = ClientConstruction::for_initialization_type;
        assert_eq!(of(Some("on-demand")), OnFirstUse);
        assert_eq!(of(Some("provisioned-concurrency")), Eager);
        assert_eq!(of(Some("snap-start")), Eager);
        assert_eq!(of(None), Eager);
    }

    #[test]
    fn a_client_on_first_use_is_built_once_when_first_used_and_shared_by_its_clones() {
        let config = SdkConfig::builder()
            .region(aws_config::Region::from_static("eu-west-1"))
            .build();
        let before = BUILT.load(Ordering::SeqCst);
        let lazy = SdkClient::new(&config, make, ClientConstruction::OnFirstUse);
        let clone = lazy.clone();
        assert!(!lazy.is_built() && !clone.is_built());
        assert_eq!(BUILT.load(Ordering::SeqCst), before);
        assert_eq!(clone.as_str(), "eu-west-1");
        assert!(lazy.is_built(), "built through a clone, built for all");
        assert_eq!(lazy.as_str(), "eu-west-1");
        assert_eq!(BUILT.load(Ordering::SeqCst), before + 1);
        let eager = SdkClient::new(&config, make, ClientConstruction::Eager);
        assert!(eager.is_built());
        assert_eq!(BUILT.load(Ordering::SeqCst), before + 2);
    }
}
