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

/// jemalloc: size classes kept apart and freed pages returned to the system,
/// so a burst of short-lived request state does not stay in the RSS of a
/// proxy holding many idle connections (measured in bench/README.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
            init_logs(cfg.dataplane.access_log);
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

/// Logs go to stderr, filtered by `WEIR_LOG` (default `info`). The HTTP
/// access log, when `[dataplane] access_log` is on, goes to stdout as one
/// JSON object per request whatever `WEIR_LOG` says, so it can be shipped
/// apart from the diagnostics.
fn init_logs(access_log: bool) {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    const ACCESS: &str = "weir::access";
    // Both filters are static (by target and level), so each callsite's
    // interest is decided once and the global level hint stays at what the
    // filters allow: the h2 crate's per-frame trace spans then cost a load
    // and a compare, not a trip through the subscriber (a `filter_fn` has
    // no hint and made every callsite "sometimes", ~19% of the h2 CPU).
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = match format!("{ACCESS}=off").parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    let diagnostics = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let access = access_log.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .with_filter(Targets::new().with_target(ACCESS, LevelFilter::INFO))
    });
    tracing_subscriber::registry().with(diagnostics).with(access).init();
}
