//! The `catopt` command line.

fn main() {
    std::process::exit(catopt_cli_main());
}

fn catopt_cli_main() -> i32 {
    eprintln!("catopt: not built yet");
    2
}
