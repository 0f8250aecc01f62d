//! Entry point: parse the command line and dispatch; all logic lives in the library.

fn main() {
    let code = infra::cli::main();
    std::process::exit(code);
}
