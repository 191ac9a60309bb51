use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    seatgrid::run(seatgrid::Cli::parse()).await
}
