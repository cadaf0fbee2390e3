//! `tollgate policy check MODULE`: the upload validation, reported.

use super::Format;
use crate::policy::producers::Producers;
use crate::policy::{Limits, PolicyEngine};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The compiled policy component (`.wasm`).
    module: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn run(args: Args) -> ExitCode {
    let bytes = match std::fs::read(&args.module) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.module.display());
            return ExitCode::from(2);
        }
    };
    let engine = match PolicyEngine::new(Limits::default()) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match engine.load(&bytes) {
        Ok(module) => {
            let info = &module.info;
            // What the component says made it; absent when it has no `producers` section.
            let producers = Producers::read(&bytes);
            match args.format {
                Format::Json => {
                    let mut value = serde_json::to_value(info).expect("info serializes");
                    value["valid"] = true.into();
                    value["language"] = producers.language().into();
                    value["toolchain"] = producers.toolchain.clone().into();
                    println!("{value:#}");
                }
                Format::Text => {
                    println!("module:   {}", args.module.display());
                    println!("valid:    yes");
                    println!("world:    {}", info.world);
                    println!("digest:   {}", info.digest);
                    println!("size:     {} bytes", info.size);
                    if let Some(language) = producers.language() {
                        println!("language: {language}");
                    }
                    if !producers.toolchain.is_empty() {
                        println!("toolchain: {}", producers.toolchain.join(", "));
                    }
                    println!("compile:  {:.1} ms", info.compile_time.as_secs_f64() * 1e3);
                    println!("exports:  {}", info.exports.join(", "));
                    if info.imports.is_empty() {
                        println!("imports:  none");
                    } else {
                        println!("imports:");
                        for import in &info.imports {
                            println!("  {import}");
                        }
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            match args.format {
                Format::Json => println!(
                    "{:#}",
                    serde_json::json!({"valid": false, "module": args.module, "error": error.to_string()})
                ),
                Format::Text => eprintln!(
                    "error: `{}` is not a valid policy: {error}",
                    args.module.display()
                ),
            }
            ExitCode::from(1)
        }
    }
}
