//! `weir cert …`: TLS certificates — server chains with their private key, and client
//! CA bundles for two-way (mutual) TLS. Uploads read PEM files and send their text;
//! the API never returns a private key.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{IdArg, ListArgs};
use crate::body::Body;
use crate::client::{ApiResponse, CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Output, Printer, col};

pub const FIELDS: FieldMap = &[("type", "--type"), ("certificate", "--cert"), ("private_key", "--key")];

const COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("NAME", "name"),
    col("TYPE", "type"),
    col("SUBJECT", "subject"),
    col("NOT AFTER", "not_after"),
    col("BOUND", "bound_vservers"),
];

const ORDER: &[&str] = &[
    "id",
    "name",
    "type",
    "comment",
    "subject",
    "issuer",
    "sans",
    "not_before",
    "not_after",
    "fingerprint_sha256",
    "serial",
    "bound_vservers",
    "owner_id",
    "created_at",
];

const PATH: &str = "certificates";

/// Tables leave out the PEM text (many lines in one cell); `--output json` has it.
const PEM_FIELD: &str = "certificate";

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum CertCmd {
    /// Upload a certificate: a server chain with its key, or client CA certificate(s)
    Upload(CertUpload),
    /// List certificates
    List(ListArgs),
    /// Show one certificate (its PEM with --output json; never the key)
    Show(IdArg),
    /// Delete a certificate (refused while a VServer uses it)
    Delete(IdArg),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum CertType {
    /// A certificate chain (leaf first) and its private key, presented by https VServers
    Server,
    /// CA certificate(s) that sign acceptable client certificates (two_way TLS)
    Client,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct CertUpload {
    /// Kind of certificate
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub cert_type: CertType,
    /// Name of the certificate
    #[arg(long)]
    pub name: String,
    /// PEM file: the chain, leaf first (server), or the CA certificate(s) (client)
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// PEM file with the unencrypted private key of the leaf (server only)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Free-text comment
    #[arg(long)]
    pub comment: Option<String>,
}

/// The text of a PEM file given with `flag`, or a usage error naming the flag and file.
pub fn read_pem(flag: &str, path: &Path, convert: &str) -> Result<String, CliError> {
    let bytes =
        std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {flag} {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::Usage(format!(
            "{flag} {} is not a PEM text file (binary DER? convert it with `{convert}`)",
            path.display()
        ))
    })
}

impl CertUpload {
    /// The JSON body, with the files' contents as `certificate` / `private_key`.
    pub fn body(&self) -> Result<Value, CliError> {
        let certificate = read_pem("--cert", &self.cert, "openssl x509 -inform der -in FILE -out cert.pem")?;
        let private_key = self
            .key
            .as_deref()
            .map(|k| read_pem("--key", k, "openssl pkey -inform der -in FILE -out key.pem"))
            .transpose()?;
        Ok(Body::new()
            .opt_enum("type", Some(self.cert_type))
            .set("name", self.name.as_str())
            .opt("comment", self.comment.as_deref())
            .set("certificate", certificate)
            .opt("private_key", private_key)
            .build())
    }
}

/// What a table shows of one certificate: everything but the PEM text.
fn for_table(p: &Printer, r: ApiResponse) -> ApiResponse {
    if p.output() != Output::Table {
        return r;
    }
    let mut json = r.json;
    if let Some(o) = json.as_object_mut() {
        o.remove(PEM_FIELD);
    }
    ApiResponse { raw: r.raw, json }
}

pub async fn run(c: &Client, p: &Printer, cmd: CertCmd) -> Result<i32, CliError> {
    match cmd {
        CertCmd::Upload(a) => {
            let body = a.body()?;
            p.object(&for_table(p, c.post(&[PATH], &body).await?), ORDER);
        }
        CertCmd::List(a) => p.list(&c.get(&[PATH], &a.query()).await?, COLUMNS),
        CertCmd::Show(a) => p.object(&for_table(p, c.get(&[PATH, &a.id], &[]).await?), ORDER),
        CertCmd::Delete(a) => {
            c.delete(&[PATH, &a.id]).await?;
            p.note(&format!("deleted {}", a.id));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};
    use serde_json::json;

    fn cmd(line: &str) -> CertCmd {
        match parse(line) {
            Command::Cert(c) => c,
            other => panic!("{other:?}"),
        }
    }

    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";

    #[test]
    fn upload_parses_all_flags() {
        let CertUpload {
            cert_type,
            name,
            cert,
            key,
            comment,
        } = match cmd("cert upload --type server --name web --cert c.pem --key k.pem --comment hi") {
            CertCmd::Upload(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(cert_type, CertType::Server);
        assert_eq!(name, "web");
        assert_eq!(cert, PathBuf::from("c.pem"));
        assert_eq!(key, Some(PathBuf::from("k.pem")));
        assert_eq!(comment.as_deref(), Some("hi"));
        let CertCmd::Upload(a) = cmd("cert upload --type client --name ca --cert ca.pem") else {
            panic!()
        };
        assert_eq!((a.cert_type, a.key, a.comment), (CertType::Client, None, None));
    }

    #[test]
    fn upload_requires_type_name_and_cert() {
        parse_err("cert upload --name web --cert c.pem");
        parse_err("cert upload --type server --cert c.pem");
        parse_err("cert upload --type server --name web");
        parse_err("cert upload --type ca --name web --cert c.pem");
        parse_err("cert upload --type server --name web --cert");
    }

    #[test]
    fn upload_body_carries_file_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = dir.path().join("cert.pem");
        let k = dir.path().join("key.pem");
        std::fs::write(&c, CERT_PEM).expect("write");
        std::fs::write(&k, KEY_PEM).expect("write");
        let a = CertUpload {
            cert_type: CertType::Server,
            name: "web".into(),
            cert: c.clone(),
            key: Some(k),
            comment: Some("prod".into()),
        };
        assert_eq!(
            a.body(),
            Ok(json!({"type": "server", "name": "web", "comment": "prod",
                      "certificate": CERT_PEM, "private_key": KEY_PEM}))
        );
        let a = CertUpload {
            cert_type: CertType::Client,
            name: "ca".into(),
            cert: c,
            key: None,
            comment: None,
        };
        assert_eq!(
            a.body(),
            Ok(json!({"type": "client", "name": "ca", "certificate": CERT_PEM}))
        );
    }

    #[test]
    fn unreadable_files_name_their_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = dir.path().join("cert.pem");
        std::fs::write(&c, CERT_PEM).expect("write");
        let missing = dir.path().join("nope.pem");
        let mut a = CertUpload {
            cert_type: CertType::Server,
            name: "web".into(),
            cert: missing.clone(),
            key: Some(c.clone()),
            comment: None,
        };
        let e = a.body().expect_err("missing cert");
        assert_eq!(e.exit_code(), 2);
        let text = e.report(FIELDS);
        assert!(text.contains("--cert") && text.contains("nope.pem"), "{text}");

        a.cert = c;
        a.key = Some(missing);
        let text = a.body().expect_err("missing key").report(FIELDS);
        assert!(text.contains("--key") && text.contains("nope.pem"), "{text}");

        let der = dir.path().join("cert.der");
        std::fs::write(&der, [0x30, 0x82, 0xff, 0xfe]).expect("write");
        a.key = Some(der);
        let text = a.body().expect_err("binary key").report(FIELDS);
        assert!(text.contains("--key") && text.contains("not a PEM"), "{text}");
    }

    #[test]
    fn other_subcommands_parse() {
        assert_eq!(
            cmd("cert list --search web --limit 5"),
            CertCmd::List(ListArgs {
                search: Some("web".into()),
                limit: Some(5),
                offset: None
            })
        );
        assert_eq!(cmd("cert show cert-1"), CertCmd::Show(IdArg { id: "cert-1".into() }));
        assert_eq!(
            cmd("cert delete cert-1"),
            CertCmd::Delete(IdArg { id: "cert-1".into() })
        );
        parse_err("cert show");
        parse_err("cert rename cert-1");
    }

    #[test]
    fn api_fields_name_the_flags() {
        use crate::fields::flag_for;
        assert_eq!(flag_for("certificate", FIELDS), Some("--cert"));
        assert_eq!(flag_for("private_key", FIELDS), Some("--key"));
        assert_eq!(flag_for("type", FIELDS), Some("--type"));
        assert_eq!(flag_for("name", FIELDS), Some("--name"));
    }

    #[test]
    fn tables_leave_out_the_pem() {
        let r = ApiResponse {
            raw: String::new(),
            json: json!({"id": "cert-1", "certificate": CERT_PEM}),
        };
        let t = for_table(&Printer::new(Output::Table), r.clone());
        assert_eq!(t.json, json!({"id": "cert-1"}));
        let j = for_table(&Printer::new(Output::Json), r.clone());
        assert_eq!(j, r);
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("cert", FIELDS);
    }
}
