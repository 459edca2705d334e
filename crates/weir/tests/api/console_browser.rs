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
    b.shot("00a-vpcs").await;
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
    b.shot("00b-subnets").await;
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
    b.shot("06c-vserver-overview").await;

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
    b.shot("10-security-group").await;
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
    b.goto("/alarm-templates").await;
    assert!(b.text("#at-table").await.contains("pager"));
    b.shot("11-alarm-templates").await;
    b.goto("/alarms").await;
    b.shot("12-alarms").await;
    b.goto("/lbs").await;
    // The external one's security group, changed from the list.
    let orow = format!("#lb-table tr[data-id='{other}']");
    b.click(&format!("{orow} details.menu summary")).await;
    b.select(&format!("{orow} select[name=security_group_id]"), "").await;
    b.mark().await;
    b.click(&format!("{orow} form:has(select[name=security_group_id]) button"))
        .await;
    b.wait_new_page().await;
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{other}")).await.body["security_group_id"],
        json!(null)
    );
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

    // Phone width: the pages still read (wide tables scroll inside their
    // own box; the page itself never scrolls sideways).
    b.c.set_window_size(390, 844).await.unwrap();
    for (p, shot) in [
        ("/lbs".to_string(), Some("08-lb-list-phone")),
        (lb_path.clone(), None),
        (format!("{vs_path}?tab=nodes"), Some("09-service-nodes-phone")),
        (format!("{vs_path}/edit"), None),
        ("/lbs/new".to_string(), None),
        ("/certificates".to_string(), None),
        ("/security-groups".to_string(), None),
    ] {
        b.goto(&p).await;
        if let Some(name) = shot {
            b.shot(name).await;
        }
        let fits = b
            .js(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1",
                vec![],
            )
            .await;
        assert_eq!(fits, json!(true), "{p} scrolls sideways at phone width");
    }
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
    // Signing out ends the session: pages lead to the sign-in form again.
    b.click_to_page("#sign-out").await;
    assert!(b.path().await.starts_with("/sign-in"));
    b.goto("/vpcs").await;
    assert_eq!(b.path().await, "/sign-in?next=/vpcs");
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

    eprintln!("console screenshots: {}", shots.display());
    b.close().await;
}

/// One refused submission: on `page`, set `steps` in `form`, submit, and
/// the API's message must show next to `field` and nowhere else.
struct Refusal {
    page: String,
    form: &'static str,
    steps: Vec<(&'static str, String)>,
    field: &'static str,
}

fn case(page: &str, form: &'static str, steps: &[(&'static str, &str)], field: &'static str) -> Refusal {
    Refusal {
        page: page.to_string(),
        form,
        steps: steps.iter().map(|(c, v)| (*c, v.to_string())).collect(),
        field,
    }
}

/// Every form, and for each a refusal per kind of field (typed values that
/// do not parse, numbers out of range, references, nested fields, rows):
/// each message lands next to the field the API names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_shows_next_to_the_field_it_names() {
    let s = Server::start().await;
    let n = crate::kit::net(&s, ADMIN, "127.120.0.0/16", "127.120.2.0/24", "127.120.2.10").await;
    let lb = crate::kit::lb(&s, ADMIN, &n, "refusals").await;
    let vs = s
        .post(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 8080}),
        )
        .await
        .id();
    let (cert, key) = server_cert("r.example.com");
    let cert = s
        .post(
            ADMIN,
            "/v1/certificates",
            json!({"type": "server", "name": "r", "certificate": cert, "private_key": key}),
        )
        .await
        .id();
    let b = Browser::start(&s.base, &shots_dir()).await;
    b.goto("/sign-in").await;
    b.fill("#token", ADMIN).await;
    b.click_to_page("#sign-in").await;

    let new_vs = format!("/lbs/{lb}/vservers/new");
    let nodes = format!("/lbs/{lb}/vservers/{vs}?tab=nodes");
    let rules = format!("/lbs/{lb}/vservers/{vs}?tab=rules");
    let http = ("#protocol", "http");
    let port = ("#port", "8081");
    let cases = vec![
        case(&new_vs, "#vs-form", &[http], "port"),
        case(&new_vs, "#vs-form", &[http, ("#port", "0")], "port"),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#idle_timeout_s", "0")],
            "idle_timeout_s",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#health_check\\.interval_s", "0")],
            "health_check.interval_s",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#health_check\\.timeout_s", "9")],
            "health_check.timeout_s",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#health_check\\.healthy_threshold", "11")],
            "health_check.healthy_threshold",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#health_check\\.unhealthy_threshold", "0")],
            "health_check.unhealthy_threshold",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[
                http,
                port,
                ("#health_check\\.type", "http"),
                ("#health_check\\.path", "no-slash"),
            ],
            "health_check.path",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[
                http,
                port,
                ("#health_check\\.type", "http"),
                ("#health_check\\.domain", "bad domain"),
            ],
            "health_check.domain",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#persistence\\.mode", "custom_cookie")],
            "persistence.key",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[http, port, ("#forward_headers\\.host", "bad host!")],
            "forward_headers.host",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[("#protocol", "https"), port],
            "tls.server_certificate_id",
        ),
        case(
            &new_vs,
            "#vs-form",
            &[
                ("#protocol", "https"),
                port,
                ("#tls\\.server_certificate_id", &cert),
                ("#tls\\.mode", "two_way"),
            ],
            "tls.client_certificate_id",
        ),
        case(&new_vs, "#vs-form", &[http, ("#port", "8080")], "port"),
        case(
            "/lbs/new",
            "#lb-create",
            &[("#name", "x"), ("#private_ip", "300.1.1.1")],
            "private_ip",
        ),
        case(
            "/lbs/new",
            "#lb-create",
            &[("#name", "x"), ("#private_ip", "127.120.9.9")],
            "private_ip",
        ),
        case("/lbs/new", "#lb-create", &[("#name", "")], "name"),
        case(
            &nodes,
            "#node-add",
            &[("#node-port", "80"), ("#node-weight", "0")],
            "weight",
        ),
        case(&nodes, "#node-add", &[("#node-weight", "1")], "port"),
        case(
            &nodes,
            "#node-add",
            &[
                ("#node-source", "address"),
                ("#address", "not-an-ip"),
                ("#node-port", "80"),
            ],
            "address",
        ),
        case(&rules, "#rule-add", &[("#rule-domain", "bad domain")], "domain"),
        case(&rules, "#rule-add", &[("#rule-domain", "a.example.com")], "backend_ids"),
        case(
            "/vpcs",
            "#vpc-create",
            &[("#vpc-name", "v"), ("#vpc-cidr", "10.0.0.0/30")],
            "cidr",
        ),
        case(
            "/vpcs",
            "#vpc-create",
            &[("#vpc-name", ""), ("#vpc-cidr", "10.0.0.0/16")],
            "name",
        ),
        case(
            "/subnets",
            "#subnet-create",
            &[("#subnet-name", "s"), ("#subnet-cidr", "10.9.0.0/24")],
            "cidr",
        ),
        case(
            "/instances",
            "#instance-create",
            &[("#instance-name", "i"), ("#instance-ip", "10.9.9.9")],
            "private_ip",
        ),
        case("/eips", "#eip-create", &[("#eip-address", "10.9.9.9")], "address"),
        case(
            "/certificates/new",
            "#cert-upload",
            &[("#cert-name", "c"), ("#cert-certificate", "not a pem")],
            "certificate",
        ),
        case(
            "/security-groups",
            "#sg-create",
            &[
                ("#sg-name", "g"),
                ("#sg-rules .row:nth-child(1) .rule-priority", "5"),
                ("#sg-rules .row:nth-child(1) .rule-ports", "80"),
                ("#sg-rules .row:nth-child(1) .rule-source", "not-a-cidr"),
            ],
            "rules[0].source",
        ),
        case(
            "/alarm-templates",
            "#at-create",
            &[
                ("#at-name", "t"),
                ("#at-webhook", "ftp://example.com/x"),
                ("#at-create .row:nth-child(1) .rule-threshold", "5"),
            ],
            "webhook_url",
        ),
        case(
            "/alarm-templates",
            "#at-create",
            &[("#at-name", "t"), ("#at-webhook", "https://example.com/x")],
            "rules[0].threshold",
        ),
        case(
            "/alarm-templates",
            "#at-create",
            &[
                ("#at-name", "t"),
                ("#at-webhook", "https://example.com/x"),
                ("remove", "#at-create .row button[data-remove-row]"),
            ],
            "rules",
        ),
    ];
    for c in &cases {
        b.goto(&c.page).await;
        for (css, v) in &c.steps {
            if *css == "remove" {
                b.click(v).await;
                continue;
            }
            let tag = b.find(css).await.tag_name().await.unwrap();
            if tag == "select" {
                b.select(css, v).await;
            } else {
                b.fill(css, v).await;
            }
        }
        let (shown, general) = b.refusal(c.form).await;
        assert_eq!(
            shown.len(),
            1,
            "{} {:?}: one message expected, got {shown:?} / {general:?}",
            c.page,
            c.steps
        );
        assert_eq!(shown[0].0, c.field, "{} {:?}: {shown:?}", c.page, c.steps);
        assert!(!shown[0].1.is_empty());
        assert_eq!(general, "", "{} {:?}", c.page, c.steps);
    }
    // Nothing of it was created.
    for (kind, total) in [
        ("vpcs", 1),
        ("subnets", 1),
        ("instances", 1),
        ("certificates", 1),
        ("eips", 0),
    ] {
        assert_eq!(
            s.get(ADMIN, &format!("/v1/{kind}")).await.body["total"],
            json!(total),
            "{kind}"
        );
    }
    assert_eq!(s.get(ADMIN, "/v1/load-balancers").await.body["total"], json!(1));
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers")).await.body["total"],
        json!(1)
    );
    b.close().await;
}

/// In the browser, a `<script>` name is text: every page shows it as those
/// characters, runs no script but ours, and the confirmation dialog and the
/// messages the script writes show it as text too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_a_name_stays_text_in_the_browser() {
    use crate::console::XSS;
    let s = crate::console::server_with_pool(2).await;
    let pages = crate::console::script_named_resources(&s).await;
    let b = Browser::start(&s.base, &shots_dir()).await;
    b.goto("/sign-in").await;
    b.fill("#token", ADMIN).await;
    b.click_to_page("#sign-in").await;
    for p in &pages {
        b.goto(p).await;
        let seen = b
            .js(
                "return {text: document.body.innerText.includes(arguments[0]),
                         scripts: Array.from(document.scripts).map(s => s.src),
                         title: document.title}",
                vec![json!(XSS)],
            )
            .await;
        assert_eq!(seen["text"], json!(true), "{p} shows the name as text: {seen}");
        let scripts = seen["scripts"].as_array().unwrap();
        assert_eq!(scripts.len(), 1, "{p}: {seen}");
        assert!(scripts[0].as_str().unwrap().contains("/assets/app.js"), "{p}: {seen}");
    }
    // The dialog and the flash write text, not markup.
    b.goto("/lbs").await;
    b.click("#lb-table tbody tr[data-id] details.menu summary").await;
    b.click("#lb-table tbody tr[data-id] .panel > button.danger").await;
    let msg = b.text("#confirm-dialog[open] .msg").await;
    assert!(msg.contains(XSS), "{msg}");
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#confirm-dialog script').length",
            vec![]
        )
        .await,
        json!(0)
    );
    b.click("#confirm-dialog[open] button[value=cancel]").await;
    assert_eq!(
        s.get(ADMIN, "/v1/load-balancers").await.body["total"],
        json!(1),
        "cancel deletes nothing"
    );
    b.close().await;
}
