//! The command line: the only module that knows clap, terminals, files and rendering.

use crate::check::{CheckOptions, DEFAULT_MAX_DATA_BYTES};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

pub mod check;
pub mod checkpoint;
pub mod eval;
pub mod explain;
pub mod graph;
pub mod kernels;
pub mod laws;
pub mod output;
pub mod plot;
pub mod render;
pub mod run;
pub mod settings;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a failed law check.
pub const EXIT_LAW_FAILED: i32 = 1;
/// Exit code for a bad file or bad command-line arguments.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code for a run that diverged (non-finite objective or gradient).
pub const EXIT_DIVERGED: i32 = 3;
/// Exit code when an external program the command needs (Graphviz `dot`) is missing.
pub const EXIT_MISSING_TOOL: i32 = 4;
/// Exit code when a result could not be written (a full disk): an output file (the others
/// are still written, the results still printed) or stdout.
pub const EXIT_OUTPUT_FAILED: i32 = 5;
/// Exit code for a run stopped by Ctrl-C (after reporting the results so far).
pub const EXIT_INTERRUPTED: i32 = 130;

/// catopt: composite optimization by the gradient-descent functor.
#[derive(Parser, Debug)]
#[command(name = "catopt", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check .opt files and summarise what they define.
    Check {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print diagnostics as plain `file:line:col: error[CODE]: message` lines.
        #[arg(long)]
        plain: bool,
        /// Where data files may be read from.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Solve a composite by distributed gradient descent.
    Run(Box<run::RunArgs>),
    /// Check the functor laws on a problem: compose-then-GD = GD-then-compose, and
    /// distributed steps = central steps.
    Laws(laws::LawsArgs),
    /// Draw a composite's undirected wiring diagram (DOT, or SVG, PNG or PDF with Graphviz).
    Graph(graph::GraphArgs),
    /// Explain a composite in words and tables: state space, gather/scatter, communication, update.
    Explain(explain::ExplainArgs),
    /// Evaluate a composite's `report` block (e.g. test accuracy) at values saved by `run --output`.
    Eval(eval::EvalArgs),
}

/// The data-file flags of every command that checks a file.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The directory csv(...) paths are relative to and must stay inside (default: the .opt
    /// file's directory)
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Let csv(...) read any path: absolute, with `..`, or through symlinks leading out of
    /// the data root
    #[arg(long)]
    pub allow_any_path: bool,
    /// The largest data file read, in bytes (default 1 GiB)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DATA_BYTES)]
    pub max_data_bytes: u64,
}

impl Default for DataArgs {
    fn default() -> Self {
        DataArgs {
            data_root: None,
            allow_any_path: false,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
        }
    }
}

impl DataArgs {
    /// The check options these flags give.
    pub fn options(&self) -> CheckOptions {
        CheckOptions {
            data_root: self.data_root.clone(),
            allow_any_path: self.allow_any_path,
            max_data_bytes: self.max_data_bytes,
            ..CheckOptions::default()
        }
    }
}

/// Runs the command line with the given arguments (including the program name) and
/// returns the process exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            };
            let _ = err.print();
            return code;
        }
    };
    let code = match cli.command {
        Command::Check { files, plain, data } => {
            let plain = plain || !std::io::stderr().is_terminal();
            check::run_with_options(&files, plain, &data.options())
        }
        Command::Run(args) => run::run(&args),
        Command::Laws(args) => laws::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Eval(args) => eval::run(&args),
    };
    if code == EXIT_OK && render::stdout_failed() {
        EXIT_OUTPUT_FAILED
    } else {
        code
    }
}
