//! The command line, parsed by hand: two subcommands and a few flags.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The help text (`--help`).
pub(crate) const HELP: &str = "\
pmem-inspect: look inside a pmem-typed pool file without changing it

Usage:
  pmem-inspect info [--json] [--blocks] POOL
  pmem-inspect check [--json] POOL
  pmem-inspect --help | --version

Commands:
  info    header, root type, geometry, allocator statistics and redo records
  check   header and allocator consistency; pending operations are notes

Options:
  --json         print one JSON object on standard output instead of text
  --blocks       (info) also list every allocated block
  -h, --help     print this help
  -V, --version  print the version
  --             end of options: the next argument is POOL even if it starts with '-'

Exit status:
  0  check: the pool is consistent; info: the pool was described
  1  the file is not a usable pool (not a pool, checksum mismatch, truncated,
     unsupported version) or, for check, its metadata has problems
  2  usage error, or the file could not be read (missing, unreadable,
     locked by a program that has the pool open, or not a file: a
     directory, FIFO, socket or device other than a Device DAX)

The root type need not be known: everything shown comes from the pool's own
header. Nothing is written and no recovery runs; the file is locked while it
is read, like opening the pool would.
";

/// The short reminder printed after a usage error.
pub(crate) const USAGE: &str = "\
Usage: pmem-inspect info [--json] [--blocks] POOL
       pmem-inspect check [--json] POOL
Try 'pmem-inspect --help' for more information.";

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
    /// `info`.
    Info {
        /// The pool file.
        pool: PathBuf,
        /// `--json`.
        json: bool,
        /// `--blocks`.
        blocks: bool,
    },
    /// `check`.
    Check {
        /// The pool file.
        pool: PathBuf,
        /// `--json`.
        json: bool,
    },
}

/// A command line that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Parses the arguments after the program name.
///
/// # Errors
/// A [`UsageError`] saying what is wrong with the command line.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(usage("no command given"));
    };
    let subcommand = match first.to_str() {
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("-V" | "--version") => return Ok(Command::Version),
        Some(name @ ("info" | "check")) => name.to_owned(),
        Some(flag) if flag.starts_with('-') => {
            return Err(usage(format!(
                "unknown option '{flag}' (options follow the command)"
            )));
        }
        _ => {
            return Err(usage(format!(
                "unknown command '{}' (expected 'info' or 'check')",
                first.to_string_lossy()
            )));
        }
    };
    let is_info = subcommand == "info";

    let (mut json, mut blocks) = (false, false);
    let mut pool: Option<OsString> = None;
    let mut set_pool = |arg: OsString| match &pool {
        Some(first) => Err(usage(format!(
            "more than one POOL given: '{}' and '{}'",
            first.to_string_lossy(),
            arg.to_string_lossy()
        ))),
        None => {
            pool = Some(arg);
            Ok(())
        }
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Ok(Command::Help),
            Some("-V" | "--version") => return Ok(Command::Version),
            Some("--json") => json = true,
            Some("--blocks") if is_info => blocks = true,
            Some("--blocks") => {
                return Err(usage("'--blocks' is an option of 'info', not of 'check'"));
            }
            Some("--") => {
                for rest in args.by_ref() {
                    set_pool(rest)?;
                }
            }
            Some(flag) if flag.starts_with('-') && flag != "-" => {
                return Err(usage(format!("unknown option '{flag}' for '{subcommand}'")));
            }
            _ => set_pool(arg)?,
        }
    }
    let Some(pool) = pool else {
        return Err(usage(format!("'{subcommand}' needs a POOL file")));
    };
    let pool = PathBuf::from(pool);
    Ok(if is_info {
        Command::Info { pool, json, blocks }
    } else {
        Command::Check { pool, json }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(
            parse_strs(&["info", "p"]),
            Ok(Command::Info {
                pool: "p".into(),
                json: false,
                blocks: false
            })
        );
        assert_eq!(
            parse_strs(&["info", "p", "--blocks", "--json"]),
            Ok(Command::Info {
                pool: "p".into(),
                json: true,
                blocks: true
            })
        );
        assert_eq!(
            parse_strs(&["check", "--json", "--", "--p"]),
            Ok(Command::Check {
                pool: "--p".into(),
                json: true
            })
        );
        assert_eq!(
            parse_strs(&["check", "-"]),
            Ok(Command::Check {
                pool: "-".into(),
                json: false
            })
        );
        assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["info", "p", "-h"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn usage_errors() {
        let error = |args: &[&str]| parse_strs(args).unwrap_err().to_string();
        assert_eq!(error(&[]), "no command given");
        assert_eq!(
            error(&["inf", "p"]),
            "unknown command 'inf' (expected 'info' or 'check')"
        );
        assert_eq!(
            error(&["-x"]),
            "unknown option '-x' (options follow the command)"
        );
        assert_eq!(error(&["check"]), "'check' needs a POOL file");
        assert_eq!(
            error(&["check", "a", "b"]),
            "more than one POOL given: 'a' and 'b'"
        );
        assert_eq!(
            error(&["check", "a", "--", "b"]),
            "more than one POOL given: 'a' and 'b'"
        );
        assert_eq!(
            error(&["check", "--blocks", "a"]),
            "'--blocks' is an option of 'info', not of 'check'"
        );
        assert_eq!(
            error(&["info", "--jsn", "a"]),
            "unknown option '--jsn' for 'info'"
        );
    }

    #[test]
    fn paths_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let path = OsString::from_vec(vec![b'p', 0xff]);
        assert_eq!(
            parse([OsString::from("check"), path.clone()]),
            Ok(Command::Check {
                pool: path.into(),
                json: false
            })
        );
    }
}
