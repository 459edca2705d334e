//! The console end to end in headless Chromium: everything a tenant does in
//! a day, through the pages, against the real server and real backends.
//! Screenshots of the main pages go to `<target>/tmp/console-screenshots`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::browser::Browser;
use crate::kit::{ADMIN, Server};

/// A service node on `addr`: answers every connection with a small HTTP 200
/// and closes. Aborting the task closes the listener (the node "stops").
async fn node(addr: &str) -> JoinHandle<()> {
    let l = TcpListener::bind(addr).await.expect("bind node");
    tokio::spawn(async move {
        while let Ok((mut io, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = io
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
            });
        }
    })
}

/// A self-signed server certificate and key for `name` (PEM).
fn server_cert(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

pub fn shots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_day_in_chromium() {
    let s = Server::start().await;
    let shots = shots_dir();
    let b = Browser::start(&s.base, &shots).await;

    // Signing in: any page leads to the sign-in form; a wrong token is
    // refused next to the field; the right one comes back to the page asked for.
    b.goto("/lbs").await;
    assert!(b.path().await.starts_with("/sign-in"), "{}", b.path().await);
    b.shot("01-sign-in").await;
    b.fill("#token", "not-a-token").await;
    b.click_to_page("#sign-in").await;
    assert!(b.text("#token-error").await.contains("does not belong"));
    b.fill("#token", ADMIN).await;
    b.click_to_page("#sign-in").await;
    assert_eq!(b.path().await, "/lbs");

    // The network the LB lives in, through its pages.
    b.goto("/vpcs").await;
    b.fill("#vpc-name", "lab").await;
    b.fill("#vpc-cidr", "127.120.0.0/33").await;
    b.click("#vpc-create-submit").await;
    assert!(!b.field_error("#vpc-create", "cidr").await.is_empty());
    b.fill("#vpc-cidr", "127.120.0.0/16").await;
    b.click_to_page("#vpc-create-submit").await;
    let vpc = b
        .find("#vpc-table tbody tr[data-id]")
        .await
        .attr("data-id")
        .await
        .unwrap()
        .unwrap();
    b.goto("/subnets").await;
    b.select("#subnet-vpc", &vpc).await;
    b.fill("#subnet-name", "web").await;
    b.fill("#subnet-cidr", "127.120.1.0/24").await;
    b.click_to_page("#subnet-create-submit").await;
    let subnet = b
        .find("#subnet-table tbody tr[data-id]")
        .await
        .attr("data-id")
        .await
        .unwrap()
        .unwrap();
    b.goto("/instances").await;
    for (name, ip) in [("vm1", "127.120.1.11"), ("vm2", "127.120.1.12")] {
        b.select("#instance-subnet", &subnet).await;
        b.fill("#instance-name", name).await;
        b.fill("#instance-ip", ip).await;
        b.click_to_page("#instance-create-submit").await;
    }
    let instances = b.text("#instance-table").await;
    assert!(
        instances.contains("vm1") && instances.contains("127.120.1.12"),
        "{instances}"
    );
    b.shot("00-instances").await;

    // Create wizard: an empty name is refused next to the name field.
    b.goto("/lbs").await;
    b.click_to_page("#create-lb").await;
    assert_eq!(b.path().await, "/lbs/new");
    assert!(
        !b.find("#eip_id").await.is_displayed().await.unwrap(),
        "EIP only for external"
    );
    b.select("#network_type", "external").await;
    assert!(
        b.find("#eip_id").await.is_displayed().await.unwrap(),
        "EIP shown for external"
    );
    assert!(!b.find("#private_ip").await.is_displayed().await.unwrap());
    b.select("#network_type", "internal").await;
    b.select("#vpc_id", &vpc).await;
    b.select("#subnet_id", &subnet).await;
    b.select("#billing_mode", "monthly").await;
    b.fill("#name", "   ").await;
    b.click("#lb-create-submit").await;
    assert!(b.field_error("#lb-create", "name").await.contains("must not be empty"));
    b.shot("02-lb-create-error").await;
    b.fill("#name", "shop").await;
    b.fill("#comment", "storefront").await;
    b.click_to_page("#lb-create-submit").await;
    let lb_path = b.path().await;
    let lb = lb_path.trim_start_matches("/lbs/").to_string();
    assert!(lb.starts_with("lb-"), "{lb_path}");
    assert!(b.text("#lb-title").await.contains("shop"));
    assert!(b.text(".kv").await.contains("Monthly"));
    // Monitoring: six charts drawn by the metrics API, for the range chosen.
    let imgs = b.c.find_all(fantoccini::Locator::Css(".charts img")).await.unwrap();
    assert_eq!(imgs.len(), 6);
    assert!(
        imgs[0]
            .attr("src")
            .await
            .unwrap()
            .unwrap()
            .contains("metric=new_connections_per_s&range=1h")
    );
    b.click_to_page(".ranges a[href*='range=6h']").await;
    let src = b.find(".charts img").await.attr("src").await.unwrap().unwrap();
    assert!(src.contains("range=6h"), "{src}");
    let drawn = b
        .js(
            "return Array.from(document.querySelectorAll('.charts img')).every(i => i.complete && i.naturalWidth > 0)",
            vec![],
        )
        .await;
    assert_eq!(drawn, json!(true), "every chart image loaded");
    b.fill("#range-from", "").await;
    b.js(
        "document.getElementById('range-from').value = '2026-12-04T12:00'; document.getElementById('range-to').value = '2026-12-04T11:00';",
        vec![],
    )
    .await;
    b.click_to_page(".custom-range button").await;
    assert!(
        b.text("#range-from + .err").await.contains("is after"),
        "the API's message next to From"
    );
    b.shot("02b-lb-overview").await;

    // An HTTP VServer through the wizard: only the fields of the protocol
    // show, a reserved port is refused next to the port field.
    b.click_to_page("#tab-vservers").await;
    b.click_to_page("#add-vserver").await;
    b.select("#protocol", "tcp").await;
    assert!(
        b.find("#proxy_protocol").await.is_displayed().await.unwrap(),
        "PROXY protocol for tcp"
    );
    b.select("#protocol", "http").await;
    assert!(
        !b.find("#proxy_protocol").await.is_displayed().await.unwrap(),
        "no PROXY protocol for http"
    );
    assert!(
        !b.find("#tls\\.mode").await.is_displayed().await.unwrap(),
        "no SSL for http"
    );
    assert!(b.find("#forward_headers\\.host").await.is_displayed().await.unwrap());
    b.fill("#port", "9102").await;
    b.click("#vs-submit").await;
    assert!(b.field_error("#vs-form", "port").await.contains("reserved"));
    b.fill("#port", "8080").await;
    b.select("#persistence\\.mode", "custom_cookie").await;
    b.fill("#persistence\\.key", "bad-key!").await;
    b.click("#vs-submit").await;
    assert!(
        b.field_error("#vs-form", "persistence.key")
            .await
            .contains("letters, digits or underscores")
    );
    b.select("#persistence\\.mode", "insert_cookie").await;
    for (f, v) in [
        ("interval_s", "1"),
        ("timeout_s", "1"),
        ("healthy_threshold", "1"),
        ("unhealthy_threshold", "1"),
    ] {
        b.fill(&format!("#health_check\\.{f}"), v).await;
    }
    b.shot("03-vserver-create").await;
    b.click_to_page("#vs-submit").await;
    let vs_path = b.path().await;
    assert!(vs_path.starts_with(&format!("/lbs/{lb}/vservers/vs-")), "{vs_path}");
    assert!(b.text("#vs-title").await.contains("HTTP:8080"));
    assert_eq!(b.text("#vs-health").await, "No service nodes");

    // Both service nodes, from the VPC's instances, while they run.
    let n1 = node("127.120.1.11:8081").await;
    let _n2 = node("127.120.1.12:8081").await;
    b.click_to_page("#tab-nodes").await;
    b.fill("#node-port", "70000").await;
    b.click("#node-add-submit").await;
    assert!(b.field_error("#node-add", "port").await.contains("65535"));
    for vm in ["vm1", "vm2"] {
        let value = b
            .js(
                "return Array.from(document.querySelectorAll('#instance_id option')).find(o => o.textContent.startsWith(arguments[0])).value",
                vec![json!(vm)],
            )
            .await;
        b.select("#instance_id", value.as_str().unwrap()).await;
        b.fill("#node-port", "8081").await;
        b.fill("#node-weight", "3").await;
        b.click_to_page("#node-add-submit").await;
    }
    assert_eq!(
        b.c.find_all(fantoccini::Locator::Css("#node-table tbody tr[data-id]"))
            .await
            .unwrap()
            .len(),
        2
    );
    // By address: outside the VPC is refused next to the address field.
    b.select("#node-source", "address").await;
    assert!(!b.find("#instance_id").await.is_displayed().await.unwrap());
    b.fill("#address", "10.9.9.9").await;
    b.fill("#node-port", "8082").await;
    b.click("#node-add-submit").await;
    assert!(!b.field_error("#node-add", "address").await.is_empty());
    b.fill("#address", "127.120.1.13").await;
    b.click_to_page("#node-add-submit").await;
    let third = "#node-table tbody tr[data-id]:nth-child(3)";
    assert!(b.text(third).await.contains("127.120.1.13:8082"));
    assert!(b.text(third).await.contains("by address"));
    // One node's own actions: modify its weight (refused, then done), disable, enable, delete.
    b.click(&format!("{third} details.menu summary")).await;
    b.fill(&format!("{third} input[name=weight]"), "101").await;
    b.click(&format!("{third} form button[type=submit]")).await;
    assert!(
        b.field_error(&format!("{third} form"), "weight")
            .await
            .contains("between 1 and 100")
    );
    b.fill(&format!("{third} input[name=weight]"), "7").await;
    b.mark().await;
    b.click(&format!("{third} form button[type=submit]")).await;
    b.wait_new_page().await;
    assert!(b.text(third).await.contains('7'));
    b.click(&format!("{third} details.menu summary")).await;
    b.click_to_page(&format!("{third} .panel > button:not(.danger)")).await;
    assert!(b.text(third).await.contains("Disabled"));
    b.click(&format!("{third} details.menu summary")).await;
    b.click_to_page(&format!("{third} .panel > button:not(.danger)")).await;
    assert!(!b.text(third).await.contains("Disabled"));
    b.click(&format!("{third} details.menu summary")).await;
    b.click_confirmed(&format!("{third} .panel > button.danger")).await;
    assert_eq!(
        b.c.find_all(fantoccini::Locator::Css("#node-table tbody tr[data-id]"))
            .await
            .unwrap()
            .len(),
        2
    );
    b.reload_until("#vs-health", "All healthy", Duration::from_secs(20))
        .await;
    assert_eq!(
        b.find("#vs-health").await.attr("data-health").await.unwrap().as_deref(),
        Some("green")
    );
    b.shot("04-service-nodes").await;

    // One node stops: yellow, with its explanation; the list says so too.
    n1.abort();
    b.reload_until("#vs-health", "Partly healthy", Duration::from_secs(20))
        .await;
    assert_eq!(
        b.find("#vs-health").await.attr("data-health").await.unwrap().as_deref(),
        Some("yellow")
    );
    b.reload_until("#node-table", "Invalid", Duration::from_secs(10)).await;
    b.goto(&format!("/lbs/{lb}?tab=vservers")).await;
    assert_eq!(
        b.find("#vs-table [data-health]")
            .await
            .attr("data-health")
            .await
            .unwrap()
            .as_deref(),
        Some("yellow")
    );
    b.click("#vs-table details.status-info summary").await;
    assert!(b.text("#vs-table details.status-info p").await.contains("1 of 2"));
    b.shot("05-vservers").await;

    // A forwarding rule for the first node.
    b.goto(&format!("{vs_path}?tab=rules")).await;
    b.fill("#rule-domain", "bad domain").await;
    b.click("#rule-add-submit").await;
    assert!(!b.field_error("#rule-add", "domain").await.is_empty());
    b.fill("#rule-domain", "api.example.com").await;
    b.fill("#rule-path", "/v1").await;
    b.find("#rule-backends option").await.click().await.unwrap();
    b.click_to_page("#rule-add-submit").await;
    let rules = b.text("#rule-table").await;
    assert!(rules.contains("api.example.com") && rules.contains("/v1"), "{rules}");
    b.fill("#rule-domain", "").await;
    b.fill("#rule-path", "/static").await;
    b.click("#rule-add-submit").await;
    assert!(
        b.field_error("#rule-add", "backend_ids")
            .await
            .contains("at least one backend")
    );
    b.find("#rule-backends option:nth-child(2)")
        .await
        .click()
        .await
        .unwrap();
    b.click_to_page("#rule-add-submit").await;
    let second = "#rule-table tbody tr[data-id]:nth-child(2)";
    assert!(
        b.text(second).await.contains("/static"),
        "the longer-domain rule comes first"
    );
    b.click(&format!("{second} details.menu summary")).await;
    b.fill(&format!("{second} input[name=path]"), "/assets").await;
    b.mark().await;
    b.click(&format!("{second} form button[type=submit]")).await;
    b.wait_new_page().await;
    assert!(b.text("#rule-table").await.contains("/assets"));
    b.shot("06-forwarding-rules").await;
    b.click(&format!("{second} details.menu summary")).await;
    b.click_confirmed(&format!("{second} .panel > button.danger")).await;
    assert!(!b.text("#rule-table").await.contains("/assets"));

    // A certificate, uploaded from files (after a pasted one is refused),
    // and an HTTPS VServer that uses it.
    let (cert, key) = server_cert("shop.example.com");
    let files = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (files.path().join("chain.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    b.goto("/certificates").await;
    b.click_to_page("#upload-cert").await;
    b.select("#cert-type", "server").await;
    b.fill("#cert-name", "shop").await;
    b.fill(
        "#cert-certificate",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    )
    .await;
    b.click("#cert-upload-submit").await;
    assert!(!b.field_error("#cert-upload", "certificate").await.is_empty());
    b.find("#cert-certificate-file")
        .await
        .send_keys(&cert_file.to_string_lossy())
        .await
        .unwrap();
    b.find("#cert-private-key-file")
        .await
        .send_keys(&key_file.to_string_lossy())
        .await
        .unwrap();
    let filled = "return document.getElementById('cert-certificate').value.includes('BEGIN CERTIFICATE') && document.getElementById('cert-private-key').value.includes('PRIVATE KEY')";
    for _ in 0..100 {
        if b.js(filled, vec![]).await == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.click_to_page("#cert-upload-submit").await;
    assert_eq!(b.path().await, "/certificates");
    assert!(b.text("#cert-table").await.contains("shop.example.com"));
    b.shot("06b-certificates").await;
    let cert_id = b
        .find("#cert-table tbody tr[data-id]")
        .await
        .attr("data-id")
        .await
        .unwrap()
        .unwrap();
    b.goto(&format!("/lbs/{lb}/vservers/new")).await;
    b.select("#protocol", "https").await;
    assert!(b.find("#tls\\.mode").await.is_displayed().await.unwrap());
    assert!(
        !b.find("#tls\\.client_certificate_id")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    b.fill("#port", "8443").await;
    b.click("#vs-submit").await;
    assert!(
        b.field_error("#vs-form", "tls.server_certificate_id")
            .await
            .contains("required")
    );
    b.select("#tls\\.server_certificate_id", &cert_id).await;
    b.click_to_page("#vs-submit").await;
    assert!(b.text("#vs-title").await.contains("HTTPS:8443"));
    assert!(b.text(".kv").await.contains("shop"));

    // Modify wizard: the protocol's fields only, prefilled.
    b.click_to_page("#modify-vs").await;
    assert!(!b.exists("#protocol").await || !b.find("#protocol").await.is_displayed().await.unwrap());
    assert!(!b.exists("#proxy_protocol").await, "no PROXY protocol for https");
    b.fill("#idle_timeout_s", "0").await;
    b.click("#vs-submit").await;
    assert!(
        b.field_error("#vs-form", "idle_timeout_s")
            .await
            .contains("between 1 and 86400")
    );
    b.fill("#idle_timeout_s", "120").await;
    b.click_to_page("#vs-submit").await;
    assert!(b.text(".kv").await.contains("120 s"));

    // The list: search (approximate), export to Excel and open it.
    // A security group from rule rows (a bad row is refused next to its own
    // field), and an external LB behind it, from the wizard.
    b.goto("/security-groups").await;
    b.fill("#sg-name", "web-in").await;
    b.fill("#sg-rules .row:nth-child(1) .rule-priority", "10").await;
    b.fill("#sg-rules .row:nth-child(1) .rule-ports", "443").await;
    b.fill("#sg-rules .row:nth-child(1) .rule-source", "0.0.0.0/0").await;
    b.click("#sg-add-rule").await;
    b.fill("#sg-rules .row:nth-child(2) .rule-priority", "20").await;
    b.select("#sg-rules .row:nth-child(2) .rule-action", "deny").await;
    b.fill("#sg-rules .row:nth-child(2) .rule-ports", "99999").await;
    b.fill("#sg-rules .row:nth-child(2) .rule-source", "10.0.0.0/8").await;
    b.click("#sg-create-submit").await;
    let e = b.wait_text("#sg-rules .row:nth-child(2) .rule-ports + .err").await;
    assert!(e.contains("99999") || e.contains("port"), "{e}");
    assert_eq!(b.text("#sg-rules .row:nth-child(1) .rule-ports + .err").await, "");
    b.fill("#sg-rules .row:nth-child(2) .rule-ports", "all").await;
    b.click_to_page("#sg-create-submit").await;
    let sg = b.path().await.trim_start_matches("/security-groups/").to_string();
    assert!(sg.starts_with("sg-"), "{sg}");
    b.goto("/lbs/new").await;
    b.select("#network_type", "external").await;
    b.select("#vpc_id", &vpc).await;
    b.select("#subnet_id", &subnet).await;
    b.select("#security_group_id", &sg).await;
    b.fill("#name", "other").await;
    b.click_to_page("#lb-create-submit").await;
    let kv = b.text(".grid").await;
    assert!(kv.contains("External") && kv.contains("web-in"), "{kv}");
    let other = b.path().await.trim_start_matches("/lbs/").to_string();
    let eip = s.get(ADMIN, &format!("/v1/load-balancers/{other}")).await.body["eip"]["address"].clone();
    assert!(kv.contains(eip.as_str().unwrap()), "the allocated EIP is shown: {kv}");
    let tpl = s
        .post(
            ADMIN,
            "/v1/alarm-templates",
            json!({"name": "pager", "webhook_url": "http://127.0.0.1:9/hook",
                   "rules": [{"scope": "lb", "metric": "active_connections", "op": ">", "threshold": 1e9}]}),
        )
        .await
        .id();
    b.goto("/lbs").await;
    assert_eq!(
        b.c.find_all(fantoccini::Locator::Css("#lb-table tbody tr[data-id]"))
            .await
            .unwrap()
            .len(),
        2
    );
    let row = format!("#lb-table tr[data-id='{lb}']");
    b.click(&format!("{row} details.inline summary")).await;
    b.fill(&format!("{row} details.inline input[name=name]"), "shop-eu")
        .await;
    b.fill(
        &format!("{row} details.inline input[name=comment]"),
        "the EU storefront",
    )
    .await;
    b.mark().await;
    b.click(&format!("{row} details.inline button[type=submit]")).await;
    b.wait_new_page().await;
    assert!(b.text(&format!("{row} .lb-name")).await.contains("shop-eu"));
    assert!(
        b.text(&format!("{row} .lb-comment"))
            .await
            .contains("the EU storefront")
    );
    let expires = s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.body["expires_at"].clone();
    b.click(&format!("{row} details.menu summary")).await;
    let renew = format!("{row} form[data-api$='/renew']");
    b.fill(&format!("{renew} input[name=periods]"), "12").await;
    b.click(&format!("{renew} button")).await;
    assert!(b.field_error(&renew, "periods").await.contains("between 1 and 11"));
    b.fill(&format!("{renew} input[name=periods]"), "2").await;
    b.mark().await;
    b.click(&format!("{renew} button")).await;
    b.wait_new_page().await;
    assert_ne!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.body["expires_at"],
        expires
    );
    b.click(&format!("{row} details.menu summary")).await;
    b.select(&format!("{row} select[name=alarm_template_id]"), &tpl).await;
    b.mark().await;
    b.click(&format!(
        "{row} select[name=alarm_template_id] ~ button, {row} form:has(select[name=alarm_template_id]) button"
    ))
    .await;
    b.wait_new_page().await;
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.body["alarm_template_id"],
        json!(tpl)
    );
    // The external one's security group, changed from the list.
    let orow = format!("#lb-table tr[data-id='{other}']");
    b.click(&format!("{orow} details.menu summary")).await;
    b.select(&format!("{orow} select[name=security_group_id]"), "").await;
    b.mark().await;
    b.click(&format!("{orow} form:has(select[name=security_group_id]) button")).await;
    b.wait_new_page().await;
    assert_eq!(s.get(ADMIN, &format!("/v1/load-balancers/{other}")).await.body["security_group_id"], json!(null));
    b.shot("07-lb-list").await;
    b.fill("#lb-search", "HOP-E").await;
    b.click_to_page("form[role=search] button").await;
    let rows =
        b.c.find_all(fantoccini::Locator::Css("#lb-table tbody tr[data-id]"))
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(b.text("#lb-table").await.contains("shop-eu"));
    b.shot("07b-lb-search").await;
    b.click("#export-lbs").await;
    let xlsx = b.download(".xlsx").await;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).expect("open the downloaded workbook");
    let sheet = calamine::Reader::worksheet_range_at(&mut book, 0)
        .expect("a sheet")
        .expect("readable");
    let cells: Vec<String> = sheet.rows().flat_map(|r| r.iter().map(|c| c.to_string())).collect();
    assert!(cells.iter().any(|c| c == "shop-eu"), "{cells:?}");
    assert!(!cells.iter().any(|c| c == "other"), "the export is the searched list");

    // Phone width: the list still reads (the table scrolls inside its box).
    b.c.set_window_size(390, 844).await.unwrap();
    b.goto("/lbs").await;
    b.shot("08-lb-list-phone").await;
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await;
    assert_eq!(overflow, json!(true), "no page-wide horizontal scroll at phone width");
    b.c.set_window_size(1280, 900).await.unwrap();

    // Batch-disable both nodes.
    b.goto(&format!("{vs_path}?tab=nodes")).await;
    b.click("input[data-select-all=nodes]").await;
    b.click_to_page("#batch-disable").await;
    let table = b.text("#node-table").await;
    assert_eq!(table.matches("Disabled").count(), 4, "mode and status of both: {table}");

    // Delete everything: nodes (batch), VServers, the LBs, the certificate.
    b.click("input[data-select-all=nodes]").await;
    b.click_confirmed("#batch-delete").await;
    assert!(b.text("#node-table").await.contains("No service nodes"));
    b.goto(&format!("/lbs/{lb}?tab=vservers")).await;
    while b.exists("#vs-table tbody tr[data-id]").await {
        b.click_confirmed("#vs-table tbody tr[data-id] button.danger").await;
    }
    b.goto("/lbs").await;
    b.click("input[data-select-all=lbs]").await;
    b.click_confirmed("#batch-delete-lbs").await;
    assert!(b.text("#lb-table").await.contains("No load balancers yet"));
    assert_eq!(s.get(ADMIN, "/v1/load-balancers").await.body["total"], json!(0));
    b.goto("/certificates").await;
    b.click_confirmed(&format!("#cert-delete-{cert_id}")).await;
    b.goto("/instances").await;
    while b.exists("#instance-table tbody tr[data-id]").await {
        b.click_confirmed("#instance-table tbody tr[data-id] button.danger")
            .await;
    }
    b.goto("/subnets").await;
    b.click_confirmed(&format!("#subnet-delete-{subnet}")).await;
    b.goto("/vpcs").await;
    b.click_confirmed(&format!("#vpc-delete-{vpc}")).await;
    b.goto("/security-groups").await;
    b.click_confirmed(".sg-delete").await;
    b.goto("/eips").await;
    b.click_confirmed("#eip-table tbody tr[data-id] button.danger").await;
    for kind in [
        "certificates",
        "instances",
        "subnets",
        "vpcs",
        "load-balancers",
        "security-groups",
        "eips",
    ] {
        assert_eq!(
            s.get(ADMIN, &format!("/v1/{kind}")).await.body["total"],
            json!(0),
            "{kind} left"
        );
    }

    b.close().await;
}
