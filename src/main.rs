//! The `capi-manage` command. Thin: parse, run, report the error chain on one line.
//!
//! Exit codes: 0 success (also when the reader of standard output went away); 1 the operation
//! failed; 2 bad usage (unknown flag, invalid value); 4 `status` found a cluster not ready or
//! Flux drifted; 130 interrupted (Ctrl-C), whichever operation was running.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // `capi-manage render x | head`: printing to a closed pipe ends the run quietly with 0, as
    // the reader asked for no more (println! reports it as a panic).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let args = cli::parse();
    cli::init_tracing(args.verbosity(), args.quiet);
    // Offline commands (render, seal with a --cert file) run without the async runtime: no
    // worker threads to start and join, which a short run would mostly spend waiting on.
    let result = match cli::run_offline(args) {
        Ok(result) => result,
        Err(args) => {
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
            runtime.block_on(cli::run(*args))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = cli::exit_code(&e);
            match cli::hint(&e) {
                Some(hint) => eprintln!("error: {}: {hint}", cli::one_line(&e)),
                None => eprintln!("error: {}", cli::one_line(&e)),
            }
            ExitCode::from(code)
        }
    }
}
