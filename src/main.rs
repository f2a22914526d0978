//! The `catopt` command line; see [`catopt::cli`].

fn main() {
    std::process::exit(catopt::cli::main_with_args(std::env::args_os()));
}
