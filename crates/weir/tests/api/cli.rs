//! The CLI (same binary) against the real server: the README walkthrough,
//! errors naming the flag, and `--output json` agreeing with the API.

use std::process::Output;

use serde_json::{Value, json};

use crate::kit::{ADMIN, Server};

/// Runs the CLI against `s` as the admin.
pub async fn weir(s: &Server, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--api")
        .arg(&s.base)
        .arg("--token")
        .arg(ADMIN)
        .args(args)
        .env_remove("WEIR_TOKEN")
        .env_remove("WEIR_API")
        .output()
        .await
        .expect("run weir")
}

async fn json_of(s: &Server, args: &[&str]) -> Value {
    let mut full = vec!["--output", "json"];
    full.extend_from_slice(args);
    let out = weir(s, &full).await;
    assert!(
        out.status.success(),
        "weir {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn walkthrough_and_json_agree_with_the_api() {
    let s = Server::start().await;
    let vpc = json_of(&s, &["vpc", "create", "--name", "lab", "--cidr", "127.0.0.0/8"]).await;
    let subnet = json_of(
        &s,
        &[
            "subnet",
            "create",
            "--vpc",
            &id(&vpc),
            "--name",
            "web",
            "--cidr",
            "127.0.40.0/24",
        ],
    )
    .await;
    let vm = json_of(
        &s,
        &[
            "instance",
            "create",
            "--name",
            "vm1",
            "--subnet",
            &id(&subnet),
            "--private-ip",
            "127.0.40.10",
        ],
    )
    .await;
    let lb = json_of(
        &s,
        &[
            "lb",
            "create",
            "--name",
            "web",
            "--network-type",
            "internal",
            "--vpc",
            &id(&vpc),
            "--subnet",
            &id(&subnet),
        ],
    )
    .await;
    assert_eq!(lb["address"], "127.0.40.1");
    let lb_id = id(&lb);
    let vs = json_of(
        &s,
        &[
            "vserver",
            "create",
            "--lb",
            &lb_id,
            "--protocol",
            "http",
            "--port",
            "8080",
        ],
    )
    .await;
    let rs = json_of(
        &s,
        &[
            "backend",
            "add",
            "--lb",
            &lb_id,
            "--vserver",
            &id(&vs),
            "--instance",
            &id(&vm),
            "--port",
            "80",
            "--weight",
            "5",
        ],
    )
    .await;
    assert_eq!(rs["address"], "127.0.40.10");
    assert_eq!(rs["weight"], 5);
    // A nested partial update through the CLI keeps the other health fields.
    let upd = json_of(
        &s,
        &["vserver", "update", "--lb", &lb_id, &id(&vs), "--health-interval", "10"],
    )
    .await;
    assert_eq!(upd["health_check"]["interval_s"], 10);
    assert_eq!(upd["health_check"]["timeout_s"], 2);

    // `weir lb list --output json` and the API agree.
    let cli = json_of(&s, &["lb", "list"]).await;
    let api = s.get(ADMIN, "/v1/load-balancers").await;
    assert_eq!(cli, api.body);
    assert_eq!(cli["total"], 1);

    // Table output names the LB.
    let out = weir(&s, &["lb", "list"]).await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&lb_id));
}

#[tokio::test]
async fn errors_name_the_flag_and_exit_non_zero() {
    let s = Server::start().await;
    let out = weir(&s, &["vpc", "create", "--name", "bad", "--cidr", "10.0.0.1/16"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host bits"), "{err}");
    assert!(err.contains("--cidr"), "{err}");
    // Nothing was created.
    assert_eq!(s.get(ADMIN, "/v1/vpcs").await.body["total"], json!(0));

    // A rejected token says so.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--api", &s.base, "--token", "wrong", "lb", "list"])
        .output()
        .await
        .expect("run weir");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));

    // An unreachable API names --api and exits 2.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--api", "http://127.0.0.1:9", "--token", "x", "lb", "list"])
        .output()
        .await
        .expect("run weir");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api"));
}
