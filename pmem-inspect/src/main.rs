//! `pmem-inspect`: looks inside a pmem-typed pool file without changing it,
//! like PMDK's `pmempool info` and `pmempool check`.
//!
//! ```text
//! pmem-inspect info [--json] [--blocks] POOL
//! pmem-inspect check [--json] POOL
//! ```
//!
//! `info` prints the header (format version, UUID, layout, sizes, the root
//! type as recorded), the geometry (heap offset, zones, chunks), allocator
//! statistics per size class and the redo records; `check` says whether the
//! header and the allocator's metadata are consistent. Both read the pool
//! through [`pmem_typed::inspect`], so the root type need not be known, no
//! recovery runs and nothing is written.
//!
//! Exit status: 0 for a described (`info`) or consistent (`check`) pool; 1
//! for a file that is not a usable pool, or a pool with problems (`check`);
//! 2 for usage errors and files that cannot be read (paths that are not
//! files among them, refused at once without reading). Every failure is one
//! line on standard error (or, with `--json`, an `error` object on standard
//! output); even a panic inside the library is caught and reported as an
//! internal error with exit status 1.
//!
//! Run from the workspace with `cargo run -p pmem-inspect -- info POOL`.

mod args;
mod json;
mod report;
mod text;
mod units;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use args::Command;
use report::{EXIT_PROBLEMS, EXIT_USAGE, Failure, Report};

fn main() -> ExitCode {
    let command = match args::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            complain(format_args!("{e}\n{}", args::USAGE));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let pool = match &command {
        Command::Info { pool, .. } | Command::Check { pool, .. } => Some(pool.clone()),
        Command::Help | Command::Version => None,
    };
    // A backstop: should reading some malformed pool make the library (or
    // this program) panic, say so in one line, with the file, rather than
    // with a backtrace, and exit as for a pool that cannot be used.
    std::panic::set_hook(Box::new(|info| {
        if let (Some(at), Ok(mut slot)) = (info.location(), PANIC_AT.lock()) {
            *slot = Some(format!("{}:{}", at.file(), at.line()));
        }
    }));
    match std::panic::catch_unwind(move || run(command)) {
        Ok(status) => status,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            let at = PANIC_AT
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .map_or_else(String::new, |at| format!(" at {at}"));
            let file = pool.map_or_else(String::new, |p| format!("{}: ", p.display()));
            complain(format_args!(
                "{file}internal error: {what}{at} (a bug in pmem-typed or pmem-inspect; \
                 please report it)"
            ));
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}

/// Where the last panic happened, for the backstop's message.
static PANIC_AT: Mutex<Option<String>> = Mutex::new(None);

fn run(command: Command) -> ExitCode {
    match command {
        Command::Help => emit(args::HELP, 0),
        Command::Version => emit(
            &format!(
                "pmem-inspect {} (pool format version {})\n",
                env!("CARGO_PKG_VERSION"),
                pmem_typed::format::FORMAT_VERSION
            ),
            0,
        ),
        Command::Info { pool, json, blocks } => info(&pool, json, blocks),
        Command::Check { pool, json } => check(&pool, json),
    }
}

fn info(path: &Path, as_json: bool, blocks: bool) -> ExitCode {
    let inspection = match pmem_typed::inspect::inspect(path) {
        Ok(inspection) => inspection,
        Err(e) => return refused(path, &e, as_json),
    };
    let report = Report::new(path, &inspection);
    if as_json {
        emit_json(&json::info(&report, blocks), 0)
    } else {
        emit(&text::info(&report, blocks), 0)
    }
}

fn check(path: &Path, as_json: bool) -> ExitCode {
    let inspection = match pmem_typed::inspect::inspect(path) {
        Ok(inspection) => inspection,
        Err(e) => return refused(path, &e, as_json),
    };
    let report = Report::new(path, &inspection);
    let status = if inspection.is_consistent() {
        0
    } else {
        EXIT_PROBLEMS
    };
    if as_json {
        emit_json(&json::check(&report), status)
    } else {
        emit(&text::check(&report), status)
    }
}

/// Reports a file `inspect` refused: in JSON on standard output, or as one
/// line on standard error.
fn refused(path: &Path, error: &pmem_typed::Error, as_json: bool) -> ExitCode {
    let failure = Failure::new(error);
    if as_json {
        emit_json(&json::failure(path, &failure), failure.exit)
    } else {
        complain(failure.message(path));
        ExitCode::from(failure.exit)
    }
}

fn emit_json(value: &serde_json::Value, status: u8) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => emit(&(text + "\n"), status),
        Err(e) => {
            complain(format_args!("cannot write JSON: {e}"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Writes `text` to standard output and exits with `status`; a closed pipe
/// (`| head`) is not an error worth a message, other write errors are.
fn emit(text: &str, status: u8) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::from(status),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(status),
        Err(e) => {
            complain(format_args!("cannot write to standard output: {e}"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Writes `pmem-inspect: message` to standard error. If even that fails
/// there is no one left to tell, so the error is dropped (where `eprintln!`
/// would panic).
fn complain(message: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "pmem-inspect: {message}");
}
