//! `tfr-bench`: see `docs/benchmarks.md`. Prints the report as Markdown on standard output
//! (progress on standard error) and, with `--json-out`, writes it as JSON.

use std::process::ExitCode;

use clap::Parser;
use tfr_bench::Options;

fn main() -> ExitCode {
    let options = Options::parse();
    if let Some(path) = &options.write_history {
        return match tfr_bench::write_history(&options, path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("tfr-bench: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tfr-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tfr_bench::run(&options)) {
        Ok(report) => {
            print!("{}", report.markdown());
            if let Some(path) = &options.json_out
                && let Err(error) = report.write_json(path)
            {
                eprintln!("tfr-bench: {error:#}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tfr-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
