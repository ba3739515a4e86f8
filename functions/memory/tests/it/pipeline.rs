//! The pipeline's guarantees under crashes and races, on the in-memory ports: a validator or a
//! processor killed at any await point and restarted, processors whose claims really
//! interleave on the multi-thread runtime, and the lease and retry rules that keep a webhook
//! from being stranded.

mod crash;
mod leases;
mod races;
mod support;
