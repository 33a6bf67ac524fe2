//! The `kb` binary: see `kb --help`.

fn main() -> std::process::ExitCode {
    kb_cli::main()
}
