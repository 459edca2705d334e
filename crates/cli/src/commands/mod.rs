//! One module per command group; each owns its flags, request bodies, table columns and
//! the map from API field paths to its flags.

pub mod account;
pub mod alarm;
pub mod backend;
pub mod cert;
pub mod lb;
pub mod network;
pub mod rule;
pub mod sg;
pub mod system;
pub mod vserver;

use clap::Args;
use serde_json::Value;

use crate::Command;
use crate::body::Body;
use crate::client::CliError;
use crate::fields::FieldMap;

/// The field→flag table of the group a command belongs to.
pub fn field_map(cmd: &Command) -> FieldMap {
    match cmd {
        Command::Lb(_) => lb::FIELDS,
        Command::Vserver(_) => vserver::FIELDS,
        Command::Backend(_) => backend::FIELDS,
        Command::Rule(_) => rule::FIELDS,
        Command::Vpc(_) | Command::Subnet(_) | Command::Eip(_) | Command::Instance(_) => network::FIELDS,
        Command::Sg(_) => sg::FIELDS,
        Command::Cert(_) => cert::FIELDS,
        Command::Account(_) => account::FIELDS,
        Command::AlarmTemplate(_) => alarm::TEMPLATE_FIELDS,
        Command::Alarm(_) => alarm::ALARM_FIELDS,
        Command::Status => &[],
    }
}

/// `--search`, `--limit`, `--offset` of every list.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct ListArgs {
    /// Case-insensitive substring over name, id, address and comment
    #[arg(long)]
    pub search: Option<String>,
    /// At most this many items
    #[arg(long)]
    pub limit: Option<u32>,
    /// Skip this many items
    #[arg(long)]
    pub offset: Option<u32>,
}

impl ListArgs {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = &self.search {
            q.push(("search", s.clone()));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(o) = self.offset {
            q.push(("offset", o.to_string()));
        }
        q
    }
}

/// A positional resource ID.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct IdArg {
    /// ID of the resource
    pub id: String,
}

/// `--ids a,b,c` (also repeatable).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct IdsArg {
    /// IDs, comma-separated or repeated
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub ids: Vec<String>,
}

/// The body of a PATCH, or a usage error when the user gave nothing to change.
pub fn changes(body: Body, flags: &str) -> Result<Value, CliError> {
    if body.is_empty() {
        Err(CliError::Usage(format!(
            "nothing to update: give at least one of {flags}"
        )))
    } else {
        Ok(body.build())
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Parses command lines the way the `weir` binary will and checks field maps
    //! against the real flags.
    use clap::{CommandFactory, Parser};

    use crate::fields::FieldMap;
    use crate::{Command, GlobalOpts};

    #[derive(Parser, Debug)]
    #[command(name = "weir")]
    pub struct Cli {
        #[command(flatten)]
        pub global: GlobalOpts,
        #[command(subcommand)]
        pub cmd: Command,
    }

    pub fn parse(line: &str) -> Command {
        let args = std::iter::once("weir").chain(line.split_whitespace());
        match Cli::try_parse_from(args) {
            Ok(cli) => cli.cmd,
            Err(e) => panic!("{line}: {e}"),
        }
    }

    pub fn parse_err(line: &str) -> clap::Error {
        let args = std::iter::once("weir").chain(line.split_whitespace());
        match Cli::try_parse_from(args) {
            Ok(cli) => panic!("{line} parsed: {:?}", cli.cmd),
            Err(e) => e,
        }
    }

    /// Every single flag named in `map` exists under `weir <group> <sub>` for some sub
    /// (entries like `--health-*` name a family and are skipped).
    pub fn assert_flags_exist(group: &str, map: FieldMap) {
        let cli = Cli::command();
        let Some(group_cmd) = cli.find_subcommand(group) else {
            panic!("no subcommand {group}");
        };
        let longs: Vec<String> = group_cmd
            .get_subcommands()
            .flat_map(|s| s.get_arguments())
            .chain(cli.get_arguments())
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        for (field, flags) in map {
            for flag in flags.split('/').filter(|f| !f.contains('*')) {
                assert!(
                    longs.iter().any(|l| l == flag),
                    "{group}: {field} maps to unknown flag {flag}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_only_given() {
        assert!(ListArgs::default().query().is_empty());
        let q = ListArgs {
            search: Some("web".into()),
            limit: Some(5),
            offset: None,
        }
        .query();
        assert_eq!(q, vec![("search", "web".to_string()), ("limit", "5".to_string())]);
    }

    #[test]
    fn empty_patch_is_usage_error() {
        let e = changes(Body::new(), "--name").expect_err("empty");
        assert_eq!(e.exit_code(), 2);
        assert!(changes(Body::new().set("name", "x"), "--name").is_ok());
    }
}
