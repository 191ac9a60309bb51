use clap::Parser;

/// mimalloc instead of glibc's malloc: under a flash sale the server allocates and frees small
/// buffers for every request; in a `perf` profile glibc's allocator took about a sixth of the
/// server's CPU, and mimalloc cut the server's CPU per request by about a tenth.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The crash tests' fail points, from `FAILPOINTS` (only in builds with `--features failpoints`).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    match seatgrid::run(seatgrid::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
