//! The `kb` binary: see `kb --help`. The command line (`kb-cli`) and the HTTP server
//! (`kb-server`) are wired together here, over the components `kb-app` opens.

mod serve;

fn main() -> std::process::ExitCode {
    kb_cli::main(|settings| Box::pin(serve::serve(settings)))
}
