//! Gives the `no_std` rules component a 128 KiB stack and 512 KiB of initial memory (stack, data
//! and about 300 KiB of heap), so a decision never grows memory (growth costs the host two
//! `mprotect` calls per decision) and the host has little memory to reset afterwards.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        // serde_json nests at most 128 levels deep; 128 KiB of stack is ample for that.
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=131072");
        println!("cargo:rustc-link-arg-cdylib=--initial-memory=524288");
    }
}
