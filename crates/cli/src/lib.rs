//! Weir command-line client: every command is one or two calls of the v1 REST API
//! (see `shared/spec/api.md`), printed as a table or as the API's own JSON.

pub mod body;
pub mod client;
pub mod commands;
pub mod fields;
pub mod output;

use std::path::Path;

use client::{CliError, Client};
use commands::{account, alarm, backend, cert, lb, network, rule, sg, system, vserver};
pub use output::Output;
use output::Printer;

/// Help heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// Where `weir serve` writes the admin token by default (relative to the working directory).
pub const ADMIN_TOKEN_FILE: &str = "weir-data/admin.token";

#[derive(clap::Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Base URL of the Weir API
    #[arg(long, global = true, env = "WEIR_API", default_value = "http://127.0.0.1:9080", help_heading = GLOBAL)]
    pub api: String,
    /// Bearer token; defaults to WEIR_TOKEN, else the contents of ./weir-data/admin.token when that file exists
    #[arg(long, global = true, env = "WEIR_TOKEN", hide_env_values = true, help_heading = GLOBAL)]
    pub token: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value = "table", help_heading = GLOBAL)]
    pub output: Output,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Manage load balancers
    #[command(subcommand)]
    Lb(lb::LbCmd),
    /// Manage VServers (listeners) of a load balancer
    #[command(subcommand)]
    Vserver(vserver::VserverCmd),
    /// Manage backends (service nodes) of a VServer
    #[command(subcommand)]
    Backend(backend::BackendCmd),
    /// Manage forwarding rules of an http/https VServer
    #[command(subcommand)]
    Rule(rule::RuleCmd),
    /// Manage VPCs
    #[command(subcommand)]
    Vpc(network::VpcCmd),
    /// Manage subnets
    #[command(subcommand)]
    Subnet(network::SubnetCmd),
    /// Manage elastic IPs
    #[command(subcommand)]
    Eip(network::EipCmd),
    /// Manage instances (virtual machines)
    #[command(subcommand)]
    Instance(network::InstanceCmd),
    /// Manage security groups
    #[command(subcommand)]
    Sg(sg::SgCmd),
    /// Manage TLS certificates (server chains with keys, client CAs)
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Show or create accounts
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Manage alarm templates (threshold rules on LB and VServer metrics, notifying a webhook)
    #[command(subcommand)]
    AlarmTemplate(alarm::AlarmTemplateCmd),
    /// List alarms raised by alarm templates
    #[command(subcommand)]
    Alarm(alarm::AlarmCmd),
    /// Show the API's version and store/data-plane revisions
    Status,
}

/// Runs one CLI command against the API; prints results to stdout and errors to stderr; returns the process exit code (0 ok, 1 API/validation error, 2 usage/connection error).
pub async fn run(opts: &GlobalOpts, cmd: Command) -> i32 {
    let fields = commands::field_map(&cmd);
    let token = client::resolve_token(opts.token.as_deref(), Path::new(ADMIN_TOKEN_FILE));
    let printer = Printer::new(opts.output);
    let result = match Client::new(&opts.api, token) {
        Ok(client) => dispatch(&client, &printer, cmd).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::emit_err(&e.report(fields));
            e.exit_code()
        }
    }
}

async fn dispatch(c: &Client, p: &Printer, cmd: Command) -> Result<i32, CliError> {
    match cmd {
        Command::Lb(x) => lb::run(c, p, x).await,
        Command::Vserver(x) => vserver::run(c, p, x).await,
        Command::Backend(x) => backend::run(c, p, x).await,
        Command::Rule(x) => rule::run(c, p, x).await,
        Command::Vpc(x) => network::run_vpc(c, p, x).await,
        Command::Subnet(x) => network::run_subnet(c, p, x).await,
        Command::Eip(x) => network::run_eip(c, p, x).await,
        Command::Instance(x) => network::run_instance(c, p, x).await,
        Command::Sg(x) => sg::run(c, p, x).await,
        Command::Cert(x) => cert::run(c, p, x).await,
        Command::Account(x) => account::run(c, p, x).await,
        Command::AlarmTemplate(x) => alarm::run_template(c, p, x).await,
        Command::Alarm(x) => alarm::run_alarm(c, p, x).await,
        Command::Status => system::run(c, p).await,
    }
}
