//! The build script of every Lambda function crate (`build = "../lambda_build.rs"`): their
//! binaries are linked as position-dependent executables (`-no-pie`) on Linux.
//!
//! Why: a position-independent executable is relocated by the dynamic loader at every start. A
//! function binary holds tens of thousands of pointers to fix up (mostly the AWS SDK's vtables
//! and tables), and writing them copies a few hundred pages: measured, about half of what a
//! function's cold start costs over a hello-world bootstrap (BENCHMARKS.md). Linked without
//! PIE, the linker resolves them once and the loader only maps the pages.
//!
//! What it gives up: the executable itself loads at a fixed address, so its code is not
//! randomised by ASLR (shared libraries, the heap and the stacks still are). That is how Go
//! builds Lambda functions by default. A team that wants PIE back deletes the `build` line in
//! the function's `Cargo.toml`; nothing else depends on it.

fn main() {
    println!("cargo::rerun-if-changed=../lambda_build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
