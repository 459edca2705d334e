//! The `weir` binary: `weir serve` runs the service; every other subcommand
//! is the CLI client speaking the API.

#![forbid(unsafe_code)]

mod config;
mod serve;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Weir: a self-hosted cloud load-balancing service")]
struct Cli {
    #[command(flatten)]
    global: weir_cli::GlobalOpts,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum Top {
    /// Run the API, store and data plane on this machine.
    Serve(ServeArgs),
    #[command(flatten)]
    Client(weir_cli::Command),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Config file (TOML): EIP pool, reserved ports, store backend.
    #[arg(long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// Where the embedded store keeps its files [default: ./weir-data].
    #[arg(long, env = "WEIR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// API listen address [default: 127.0.0.1:9080].
    #[arg(long, env = "WEIR_API_LISTEN")]
    api_listen: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Top::Serve(args) => {
            init_logs();
            let cfg = match config::Config::load(args.config.as_deref()) {
                Ok(mut c) => {
                    if let Some(d) = args.data_dir {
                        c.data_dir = d;
                    }
                    if let Some(a) = args.api_listen {
                        c.api_listen = a;
                    }
                    c
                }
                Err(e) => {
                    eprintln!("weir: {e:#}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(serve::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("weir: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Top::Client(cmd) => {
            let code = rt.block_on(weir_cli::run(&cli.global, cmd));
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
