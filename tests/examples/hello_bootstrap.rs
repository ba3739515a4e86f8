//! The baseline of the cold-start bench (`tests/benches/cold_start.rs`): the smallest Rust
//! Lambda there is — the same runtime crate and tokio as payhook's functions, answering each
//! event with itself. Its init is what any Rust Lambda pays; each function's init is measured
//! against it in the same run.
//!
//! Built with `cargo build --release -p payhook-e2e --example hello_bootstrap`.

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            Ok::<_, BoxError>(event.payload)
        },
    ))
    .await
}
