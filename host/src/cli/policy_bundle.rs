//! `tollgate policy bundle MODULE CASES -o OUT`: a module with its cases inside, which the
//! server runs at upload and refuses the module over.

use super::policy_test::{load_and_run, print_text};
use crate::policy::bundle;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The compiled module (`.wasm`).
    module: PathBuf,
    /// Its cases file (the `policy test` format; its `module:` is ignored).
    cases: PathBuf,
    /// Where to write the bundle.
    #[arg(short, long, value_name = "OUT.wasm")]
    output: PathBuf,
    /// Fuel per decision, overriding the cases file.
    #[arg(long)]
    fuel: Option<u64>,
}

pub fn run(args: Args) -> ExitCode {
    let tested = match load_and_run(&args.cases, Some(&args.module), args.fuel) {
        Ok(tested) => tested,
        Err(code) => return code,
    };
    let failed = tested.failed();
    print_text(
        &args.cases,
        &tested.module_path,
        &tested.results,
        false,
        tested.results.len() - failed,
        failed,
    );
    if failed > 0 {
        eprintln!("error: not bundled: the server would refuse a module that fails its cases");
        return ExitCode::from(1);
    }
    let text = match std::fs::read_to_string(&args.cases) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.cases.display());
            return ExitCode::from(2);
        }
    };
    let bundled = match bundle::bundle(&tested.bytes, &text) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: `{}`: {e}", args.module.display());
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(&args.output, &bundled) {
        eprintln!("error: cannot write `{}`: {e}", args.output.display());
        return ExitCode::from(1);
    }
    println!(
        "bundled {} ({} bytes, {} cases; digest {})",
        args.output.display(),
        bundled.len(),
        tested.results.len(),
        crate::common::digest(&bundled)
    );
    ExitCode::SUCCESS
}
