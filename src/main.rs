//! The `capi-manage` command. Thin: parse, run, report the error chain on one line.
//!
//! Exit codes: 0 success (also when the reader of standard output went away); 1 the operation
//! failed; 2 bad usage (unknown flag, invalid value); 4 `status` found a cluster not ready or
//! Flux drifted; 130 interrupted (Ctrl-C), whichever operation was running.

mod cli;

use std::process::ExitCode;

/// One malloc arena for the whole process (glibc's `M_ARENA_MAX`), set before any thread
/// starts. glibc gives threads arenas of their own (up to eight per core): memory freed in one
/// stays resident there, unused by the others. A bootstrap parses its component manifests on
/// whichever thread runs the step (the runtime's, a blocking task's), so each arena kept its own
/// high-water mark of parsed objects and the process the sum of them. With one arena, freed
/// memory serves the next allocation of any thread; per-thread caches (tcache) keep the small
/// allocations off the arena's lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // SAFETY: a plain setting of glibc's allocator, made before any other thread exists. Its
    // result (0 for an unknown parameter) needs no handling: the default arenas stay then.
    unsafe {
        mallopt(M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

fn main() -> ExitCode {
    one_malloc_arena();
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
