//! The `capi-manage` command. Thin: parse, run, report the error chain on one line.
//!
//! Exit codes: 0 success; 1 the operation failed; 2 bad usage (unknown flag, invalid value);
//! 3 the command is not implemented yet; 130 interrupted (Ctrl-C).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::parse();
    cli::init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = cli::exit_code(&e);
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(code)
        }
    }
}
