//! `tollgate policy test [MODULE] CASES`: the policy unit-test harness.

use super::Format;
use crate::policy::cases::{self, CaseFile, CaseResult};
use crate::policy::registry::{
    BUILTIN_CEL_WASM, BUILTIN_RULES_WASM, load_builtin_cel, load_builtin_rules,
};
use crate::policy::{BUILTIN_CEL, BUILTIN_RULES, Limits, PolicyEngine};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `[MODULE] CASES.yaml`: MODULE is a `.wasm` file, `builtin:rules` or `builtin:cel`, and
    /// optional when the cases file names one.
    #[arg(num_args = 1..=2, value_names = ["MODULE", "CASES"], required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Fuel per decision, overriding the cases file (default 1,000,000; at most 10,000,000).
    #[arg(long)]
    fuel: Option<u64>,
    /// Also print what the policy logged for each case.
    #[arg(long, short)]
    verbose: bool,
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// A module tested: where it came from, its bytes, each case's outcome.
pub(super) struct Tested {
    pub module_path: PathBuf,
    pub bytes: Vec<u8>,
    pub results: Vec<CaseResult>,
}

impl Tested {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.passed).count()
    }
}

/// Reads the cases file and the module (the argument, else the file's `module:`) and runs
/// every case; `Err` is the exit status for an input that cannot be used (2), after its message.
pub(super) fn load_and_run(
    cases_path: &Path,
    module_arg: Option<&Path>,
    fuel: Option<u64>,
) -> Result<Tested, ExitCode> {
    let mut file = CaseFile::load(cases_path).map_err(usage_error)?;
    if fuel.is_some() {
        file.fuel = fuel;
    }
    let module_path = file
        .module_path(cases_path, module_arg)
        .map_err(usage_error)?;
    let engine = PolicyEngine::new(Limits::default()).map_err(usage_error)?;
    let (bytes, module) = match module_path.to_str() {
        Some(BUILTIN_RULES) => (BUILTIN_RULES_WASM.to_vec(), load_builtin_rules(&engine)),
        Some(BUILTIN_CEL) => (BUILTIN_CEL_WASM.to_vec(), load_builtin_cel(&engine)),
        _ => {
            let bytes = std::fs::read(&module_path).map_err(|e| {
                usage_error(format_args!(
                    "cannot read module `{}`: {e}",
                    module_path.display()
                ))
            })?;
            let module = engine.load(&bytes);
            (bytes, module)
        }
    };
    let module = module.map_err(|e| {
        usage_error(format_args!(
            "`{}` is not a valid policy: {e}",
            module_path.display()
        ))
    })?;
    let results = cases::run(&engine, &module, &file);
    Ok(Tested {
        module_path,
        bytes,
        results,
    })
}

pub fn run(args: Args) -> ExitCode {
    let (module_arg, cases_path) = match args.paths.as_slice() {
        [cases] => (None, cases.as_path()),
        [module, cases] => (Some(module.as_path()), cases.as_path()),
        _ => unreachable!("clap enforces one or two paths"),
    };
    let tested = match load_and_run(cases_path, module_arg, args.fuel) {
        Ok(tested) => tested,
        Err(code) => return code,
    };
    let failed = tested.failed();
    let passed = tested.results.len() - failed;
    let (module_path, results) = (&tested.module_path, &tested.results);
    match args.format {
        Format::Json => print_json(cases_path, module_path, results, passed, failed),
        Format::Text => print_text(
            cases_path,
            module_path,
            results,
            args.verbose,
            passed,
            failed,
        ),
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub(super) fn print_text(
    cases: &Path,
    module: &Path,
    results: &[CaseResult],
    verbose: bool,
    passed: usize,
    failed: usize,
) {
    println!("{} ({})", cases.display(), module.display());
    for r in results {
        let status = if r.passed { "ok  " } else { "FAIL" };
        let detail = match &r.code {
            Some(code) => format!("{} {code}", r.got),
            None => r.got.clone(),
        };
        println!(
            "{status} {} [{detail}, fuel {}, {} µs]",
            r.name, r.fuel_used, r.elapsed_us
        );
        if let Some(failure) = &r.failure {
            println!("     {failure}");
        }
        if verbose || !r.passed {
            for line in &r.logs {
                println!("     | {line}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
}

fn print_json(cases: &Path, module: &Path, results: &[CaseResult], passed: usize, failed: usize) {
    let report = serde_json::json!({
        "cases_file": cases,
        "module": module,
        "results": results,
        "passed": passed,
        "failed": failed,
    });
    println!("{report:#}");
}
