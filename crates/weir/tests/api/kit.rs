//! Test kit: runs the real `weir serve` binary on an ephemeral port with a
//! temp data dir, and talks to it over HTTP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ADMIN: &str = "test-admin-token";

pub struct Server {
    child: Child,
    /// Lines the server printed on stdout after it started listening.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub base: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

/// A JSON response: status, body (Null when empty) and the revision header.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub revision: Option<u64>,
}

impl Resp {
    /// Asserts the spec's error shape with this status, code and field.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.body);
        assert_eq!(self.body["error"]["code"], json!(code), "code of {:?}", self.body);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message of {:?}",
            self.body
        );
        match field {
            Some(f) => assert_eq!(self.body["error"]["field"], json!(f), "field of {:?}", self.body),
            None => assert!(
                self.body["error"].get("field").is_none(),
                "no field expected in {:?}",
                self.body
            ),
        }
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_string()
    }
}

impl Server {
    pub async fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, &[]).await;
        s._tmp = Some(tmp);
        s
    }

    /// Starts with a config file holding `toml`.
    pub async fn start_with_config(toml: &str) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let cfg = dir.join("weir.toml");
        std::fs::write(&cfg, toml).expect("write config");
        let cfg = cfg.to_string_lossy().to_string();
        let mut s = Server::start_in(&dir, &["--config", &cfg]).await;
        s._tmp = Some(tmp);
        s
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Waits (bounded) until the data plane has applied `revision`.
    pub async fn wait_applied(&self, revision: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(ADMIN, "/v1/system/status").await;
            if r.body["applied_revision"].as_u64().unwrap_or(0) >= revision {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "revision {revision} not applied within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// POST and wait until the data plane applied the change.
    pub async fn post_applied(&self, token: &str, path: &str, body: Value) -> Resp {
        let r = self.post(token, path, body).await;
        if let Some(rev) = r.revision {
            self.wait_applied(rev).await;
        }
        r
    }

    /// PATCH and wait until the data plane applied the change.
    pub async fn patch_applied(&self, token: &str, path: &str, body: Value) -> Resp {
        let r = self.patch(token, path, body).await;
        if let Some(rev) = r.revision {
            self.wait_applied(rev).await;
        }
        r
    }

    /// DELETE and wait until the data plane applied the change.
    pub async fn delete_applied(&self, token: &str, path: &str) -> Resp {
        let r = self.delete(token, path).await;
        if let Some(rev) = r.revision {
            self.wait_applied(rev).await;
        }
        r
    }

    /// Starts on `dir` (kept by the caller, e.g. across a restart).
    pub async fn start_in(dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--api-listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn weir serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return rest.trim().to_string();
                }
            }
            panic!("weir serve exited before listening");
        })
        .await
        .expect("weir serve did not start within 30 s");
        // Keep draining stdout so the server never blocks on a full pipe;
        // keep the lines (the access log) for tests that read them.
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(mut v) = keep.lock() {
                    v.push(l);
                }
            }
        });
        Server {
            stdout,
            child,
            base,
            dir: dir.to_path_buf(),
            _tmp: None,
            http: reqwest::Client::new(),
        }
    }

    /// Sends SIGTERM (a graceful stop), through the shell's `kill` builtin
    /// (no procps needed).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("weir is running");
        let ok = std::process::Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    /// The exit status, if the process ends within `within`.
    pub async fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|r| r.expect("wait"))
    }

    /// SIGKILL: no graceful shutdown, nothing flushed on the way out.
    pub async fn kill(mut self) -> Option<tempfile::TempDir> {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
        self._tmp.take()
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        Self::resp(r).await
    }

    pub async fn raw(&self, method: Method, path: &str, token: &str, body: Vec<u8>) -> Resp {
        let r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        Self::resp(r).await
    }

    async fn resp(r: reqwest::Response) -> Resp {
        let status = r.status();
        let revision = r
            .headers()
            .get("x-weir-revision")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let bytes = r.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Resp { status, body, revision }
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// A new top-level account; returns (id, token).
    pub async fn account(&self, name: &str) -> (String, String) {
        let r = self.post(ADMIN, "/v1/accounts", json!({"name": name})).await;
        let b = r.ok(201);
        (
            b["id"].as_str().unwrap_or_default().into(),
            b["token"].as_str().unwrap_or_default().into(),
        )
    }
}

/// A VPC (127.0.0.0/8 unless given), a subnet and an instance for `token`.
pub struct Net {
    pub vpc: String,
    pub subnet: String,
    pub instance: String,
    pub instance_ip: String,
}

pub async fn net(s: &Server, token: &str, vpc_cidr: &str, subnet_cidr: &str, instance_ip: &str) -> Net {
    let vpc = s
        .post(token, "/v1/vpcs", json!({"name": "lab", "cidr": vpc_cidr}))
        .await;
    vpc.ok(201);
    let subnet = s
        .post(
            token,
            "/v1/subnets",
            json!({"vpc_id": vpc.id(), "name": "web", "cidr": subnet_cidr}),
        )
        .await;
    subnet.ok(201);
    let vm = s
        .post(
            token,
            "/v1/instances",
            json!({"name": "vm1", "subnet_id": subnet.id(), "private_ip": instance_ip}),
        )
        .await;
    vm.ok(201);
    Net {
        vpc: vpc.id(),
        subnet: subnet.id(),
        instance: vm.id(),
        instance_ip: instance_ip.into(),
    }
}

/// An internal LB in `n`; returns its id.
pub async fn lb(s: &Server, token: &str, n: &Net, name: &str) -> String {
    let r = s
        .post(
            token,
            "/v1/load-balancers",
            json!({"name": name, "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet}),
        )
        .await;
    r.ok(201);
    r.id()
}
