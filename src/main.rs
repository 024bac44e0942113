//! The `usersync` binary: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = usersync::cli::Cli::parse();
    match usersync::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<usersync::cli::Exit>() {
            Some(exit) => std::process::ExitCode::from(exit.0),
            None => {
                eprintln!("usersync: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
