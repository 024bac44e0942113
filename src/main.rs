//! The `usersync` binary: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc instead of glibc's allocator: a request's memory is allocated on one thread and
/// freed on another (the SQLite writer's batch, the response), which glibc's per-thread
/// arenas handle with locks and consolidation passes; profiled under creates, glibc's
/// malloc and free took about 14 % of the server's CPU (README.md "Benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
