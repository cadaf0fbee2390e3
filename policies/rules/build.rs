//! Gives the `no_std` rules component 2 MiB of initial memory (1 MiB stack + data + heap room),
//! so a decision never grows memory: growth costs the host `mprotect` calls per decision.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory=2097152");
    }
}
