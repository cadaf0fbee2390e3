//! The `tollgate` binary as its users run it: the policy author's tools (`policy test`,
//! `policy check`), the admin CLI, the dev cluster (`dev issuer`, `dev token`), and the README's
//! quickstarts that use them.

mod admin;
mod change;
mod dev;
mod policy;
mod readme;

use std::process::{Command, Output};

/// `tollgate ARGS`, run to completion.
fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .expect("run tollgate")
}

/// Output bytes as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
