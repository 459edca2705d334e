//! Console pages for security groups, alarm templates and alarm events,
//! against the real server: each page shows what the API holds (rules in
//! the API's order, what uses a group or template, firing and resolved
//! events), offers the forms the script drives, answers 404 for another
//! tenant's resource, and shows a `<script>` name as text.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::console_kit::Web;
use crate::kit::{self, Server};

const XSS: &str = "<script>alert(1)</script>";
const HOOK: &str = "https://hooks.example.com/weir";

/// `s` as the page would show it (askama's escaping, or the named
/// entities), so assertions read like the page text.
fn shows(html: &str, s: &str) -> bool {
    let numeric = s
        .replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;");
    let named = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;");
    html.contains(&numeric) || html.contains(&named)
}

#[track_caller]
fn assert_shows(html: &str, s: &str) {
    assert!(shows(html, s), "page does not show {s:?}:\n{html}");
}

/// The XSS name is on the page, escaped, and never as markup.
#[track_caller]
fn assert_escaped(html: &str) {
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "the <script> name is not shown escaped:\n{html}"
    );
    assert!(!html.contains(XSS), "the <script> name reached the page raw");
}

/// The byte offsets of `needles` in `hay`, which must appear in this order.
#[track_caller]
fn assert_in_order(hay: &str, needles: &[&str]) {
    let mut at = 0;
    for n in needles {
        match hay[at..].find(n) {
            Some(i) => at += i + n.len(),
            None => panic!("{n:?} missing or out of order (after byte {at}) in:\n{hay}"),
        }
    }
}

/// The part of the page between `from` and the next `to` (a table, a row).
fn section<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
    let start = html.find(from).unwrap_or_else(|| panic!("no {from:?} in:\n{html}"));
    let rest = &html[start..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

fn sg_rule(priority: u32, action: &str, protocol: &str, ports: &str, source: &str) -> Value {
    json!({"priority": priority, "action": action, "protocol": protocol, "ports": ports, "source": source})
}

#[tokio::test]
async fn security_group_pages_show_rules_users_and_tenancy() {
    let s = Server::start().await;
    let (_, a) = s.account("sg-owner").await;
    let (_, b) = s.account("sg-stranger").await;
    // Sent out of order: the API keeps them lowest priority first.
    let edge = s
        .post(
            &a,
            "/v1/security-groups",
            json!({"name": "edge", "rules": [
                sg_rule(300, "deny", "any", "all", "0.0.0.0/0"),
                sg_rule(10, "allow", "tcp", "80", "10.0.0.0/8"),
                sg_rule(200, "allow", "udp", "8000-8100", "192.168.0.0/16"),
                sg_rule(50, "allow", "any", "all", "2001:db8::/32"),
            ]}),
        )
        .await;
    edge.ok(201);
    let edge = edge.id();
    let xss = s
        .post(&a, "/v1/security-groups", json!({"name": XSS, "rules": []}))
        .await;
    xss.ok(201);
    let xss = xss.id();
    // An external LB bound to "edge".
    let n = kit::net(&s, &a, "127.0.0.0/8", "127.112.1.0/24", "127.112.1.10").await;
    let lb = s
        .post(
            &a,
            "/v1/load-balancers",
            json!({"name": "front", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "security_group_id": edge}),
        )
        .await;
    lb.ok(201);
    let lb = lb.id();

    let web = Web::sign_in(&s, &a).await;
    let (status, html) = web.page("/security-groups").await;
    assert_eq!(status, 200, "{html}");
    let row = section(&html, &format!("<tr data-id=\"{edge}\""), "</tr>");
    assert_shows(row, "edge");
    assert!(row.contains("class=\"sg-rule-count\">4<"), "{row}");
    // The summary: the first three rules in the API's order, then a count.
    assert_in_order(
        row,
        &[
            "allow tcp port 80 from 10.0.0.0/8",
            "allow any all ports from 2001:db8::/32",
            "allow udp port 8000-8100 from 192.168.0.0/16",
            "and 1 more",
        ],
    );
    assert!(
        !row.contains("deny any all ports"),
        "only three rules are summarized: {row}"
    );
    assert!(
        row.contains(&format!("href=\"/lbs/{lb}\"")),
        "the bound LB is linked: {row}"
    );
    assert!(
        row.contains(&format!(
            "data-api=\"/v1/security-groups/{edge}\" data-method=\"DELETE\""
        )),
        "{row}"
    );
    assert!(row.contains("data-confirm="), "delete asks first: {row}");
    let row = section(&html, &format!("<tr data-id=\"{xss}\""), "</tr>");
    assert!(row.contains("class=\"sg-rule-count\">0<"), "{row}");
    assert_escaped(&html);
    // The create form: name, rule rows and their template, for the script.
    let form = section(&html, "id=\"sg-create\"", "</form>");
    for want in [
        "data-api=\"/v1/security-groups\"",
        "name=\"name\"",
        "data-rows=\"rules\"",
        "data-row-template=\"rules\"",
        "data-add-row=\"rules\"",
        "data-field=\"priority\" data-type=\"int\"",
        "data-field=\"action\"",
        "data-field=\"protocol\"",
        "data-field=\"ports\"",
        "data-field=\"source\"",
        "data-remove-row",
        "class=\"form-error\"",
    ] {
        assert!(form.contains(want), "the create form lacks {want}: {form}");
    }
    assert_shows(&html, "Lowest priority first; no match → deny.");

    // Search goes through the API's search.
    let (status, html) = web.page("/security-groups?search=EDGE").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("data-id=\"{edge}\"")) && !html.contains(&format!("data-id=\"{xss}\"")));
    assert!(html.contains("value=\"EDGE\""), "the search box keeps the search");
    let (_, html) = web.page("/security-groups?search=nothing-like-it").await;
    assert!(!html.contains("<tr data-id="), "{html}");
    assert_shows(&html, "No security group matches “nothing-like-it”.");

    // Details: every rule in order, the LB using it, a prefilled modify form.
    let (status, html) = web.page(&format!("/security-groups/{edge}")).await;
    assert_eq!(status, 200, "{html}");
    let table = section(&html, "id=\"sg-rule-table\"", "</table>");
    assert_in_order(
        table,
        &[
            "<td>10</td>",
            "10.0.0.0/8",
            "<td>50</td>",
            "2001:db8::/32",
            "<td>200</td>",
            "8000-8100",
            "192.168.0.0/16",
            "<td>300</td>",
            "0.0.0.0/0",
        ],
    );
    assert_eq!(table.matches("class=\"sg-rule\"").count(), 4);
    assert!(section(&html, "id=\"sg-used-by\"", "</dd>").contains(&format!("/lbs/{lb}")));
    let form = section(&html, "id=\"sg-edit\"", "</form>");
    assert!(
        form.contains(&format!(
            "data-api=\"/v1/security-groups/{edge}\" data-method=\"PATCH\""
        )),
        "{form}"
    );
    assert!(form.contains("name=\"name\" value=\"edge\""), "{form}");
    let rows = section(form, "data-rows=\"rules\"", "<template");
    assert_eq!(
        rows.matches("<div class=\"row\">").count(),
        4,
        "one prefilled row per rule"
    );
    assert_in_order(
        rows,
        &[
            "value=\"10\"",
            "value=\"tcp\" selected",
            "value=\"80\"",
            "value=\"10.0.0.0/8\"",
            "value=\"50\"",
            "value=\"any\" selected",
            "value=\"all\"",
            "value=\"200\"",
            "value=\"udp\" selected",
            "value=\"8000-8100\"",
            "value=\"300\"",
            "value=\"deny\" selected",
            "value=\"0.0.0.0/0\"",
        ],
    );

    // What the modify form sends (PATCH name and the whole list) shows at once.
    let r = web
        .api(
            Method::PATCH,
            &format!("/v1/security-groups/{edge}"),
            Some(json!({"name": "edge-2", "rules": [
                sg_rule(7, "deny", "udp", "53", "203.0.113.0/24"),
                sg_rule(5, "allow", "tcp", "443", "198.51.100.0/24"),
            ]})),
        )
        .await;
    r.ok(200);
    let (_, html) = web.page(&format!("/security-groups/{edge}")).await;
    assert!(html.contains("<h1 id=\"sg-title\">edge-2"), "{html}");
    let table = section(&html, "id=\"sg-rule-table\"", "</table>");
    assert_in_order(
        table,
        &["<td>5</td>", "198.51.100.0/24", "<td>7</td>", "203.0.113.0/24"],
    );
    assert!(!table.contains("10.0.0.0/8"), "the old rules are gone: {table}");
    // A field error of a row names that row's control (app.js shows it there).
    let r = web
        .api(
            Method::PATCH,
            &format!("/v1/security-groups/{edge}"),
            Some(json!({"rules": [sg_rule(1, "allow", "tcp", "80", "0.0.0.0/0"), sg_rule(2, "allow", "tcp", "nope", "0.0.0.0/0")]})),
        )
        .await;
    r.err(400, "invalid_value", Some("rules[1].ports"));

    // Bound: delete is refused (the script shows the API's message); unbound: gone.
    web.api(Method::DELETE, &format!("/v1/security-groups/{edge}"), None)
        .await
        .err(409, "in_use", None);
    let d = web
        .api(Method::DELETE, &format!("/v1/security-groups/{xss}"), None)
        .await;
    assert_eq!(d.status.as_u16(), 204);
    let (_, html) = web.page("/security-groups").await;
    assert!(!html.contains(&format!("data-id=\"{xss}\"")));

    // The XSS name on its details page, escaped.
    let xss2 = s
        .post(
            &a,
            "/v1/security-groups",
            json!({"name": XSS, "rules": [sg_rule(1, "allow", "any", "all", "0.0.0.0/0")]}),
        )
        .await;
    xss2.ok(201);
    let (status, html) = web.page(&format!("/security-groups/{}", xss2.id())).await;
    assert_eq!(status, 200);
    assert_escaped(&html);

    // Another tenant: not in its list, 404 for the details, nothing shown.
    let other = Web::sign_in(&s, &b).await;
    let (status, html) = other.page("/security-groups").await;
    assert_eq!(status, 200);
    assert!(!html.contains(&edge) && !html.contains("edge-2"), "{html}");
    let (status, html) = other.page(&format!("/security-groups/{edge}")).await;
    assert_eq!(status, 404, "{html}");
    assert!(!html.contains("edge-2") && !html.contains("198.51.100.0/24"), "{html}");
    let (status, _) = web.page("/security-groups/sg-000000000000").await;
    assert_eq!(status, 404);
}

use crate::alarm_templates::METRICS;

fn alarm_rule(scope: &str, metric: &str, op: &str, threshold: f64, for_s: u32) -> Value {
    json!({"scope": scope, "metric": metric, "op": op, "threshold": threshold, "for_s": for_s})
}

#[tokio::test]
async fn alarm_template_pages_show_rules_bindings_and_tenancy() {
    let s = Server::start().await;
    let (_, a) = s.account("at-owner").await;
    let (_, b) = s.account("at-stranger").await;
    let ops = s
        .post(
            &a,
            "/v1/alarm-templates",
            json!({"name": "ops", "webhook_url": HOOK, "rules": [
                alarm_rule("lb", "new_connections_per_s", ">", 5.0, 20),
                alarm_rule("vserver", "http_5xx_per_s", ">=", 0.5, 0),
                alarm_rule("lb", "unhealthy_backends", "<=", 1234.5678, 86400),
            ]}),
        )
        .await;
    ops.ok(201);
    let ops = ops.id();
    let xss = s
        .post(
            &a,
            "/v1/alarm-templates",
            json!({"name": XSS, "webhook_url": HOOK, "rules": [alarm_rule("lb", "active_connections", "<", 1.0, 0)]}),
        )
        .await;
    xss.ok(201);
    let xss = xss.id();
    // "ops" bound to an LB and to one of its VServers.
    let n = kit::net(&s, &a, "127.0.0.0/8", "127.112.2.0/24", "127.112.2.10").await;
    let lb = s
        .post(
            &a,
            "/v1/load-balancers",
            json!({"name": "web", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "alarm_template_id": ops}),
        )
        .await;
    lb.ok(201);
    let lb = lb.id();
    let vs = s
        .post(
            &a,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 8391, "health_check": {"interval_s": 300}, "alarm_template_id": ops}),
        )
        .await;
    vs.ok(201);
    let vs = vs.id();

    let web = Web::sign_in(&s, &a).await;
    let (status, html) = web.page("/alarm-templates").await;
    assert_eq!(status, 200, "{html}");
    let row = section(&html, &format!("<tr data-id=\"{ops}\""), "</tr>");
    assert_shows(row, "ops");
    assert_shows(row, HOOK);
    let texts = [
        "LB: new_connections_per_s > 5 for 20s",
        "VServer: http_5xx_per_s >= 0.5",
        "LB: unhealthy_backends <= 1234.5678 for 86400s",
    ];
    let escaped: Vec<String> = texts
        .iter()
        .map(|t| t.replace('>', "&#62;").replace('<', "&#60;"))
        .collect();
    assert!(shows(row, texts[0]), "{row}");
    assert_in_order(row, &escaped.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(row.contains(&format!("href=\"/lbs/{lb}\"")), "the bound LB: {row}");
    assert!(
        row.contains(&format!("href=\"/lbs/{lb}/vservers/{vs}\"")),
        "the bound VServer: {row}"
    );
    assert!(row.contains(&format!(
        "data-api=\"/v1/alarm-templates/{ops}\" data-method=\"DELETE\""
    )));
    assert_escaped(&html);
    // The create form offers every metric the API knows, every op and scope.
    let form = section(&html, "id=\"at-create\"", "</form>");
    let template = section(form, "<template data-row-template=\"rules\">", "</template>");
    for m in METRICS {
        assert!(
            template.contains(&format!("<option value=\"{m}\"")),
            "no {m} in {template}"
        );
    }
    for o in ["&#62;", "&#62;=", "&#60;", "&#60;="] {
        assert!(
            template.contains(&format!("<option value=\"{o}\"")),
            "no op {o} in {template}"
        );
    }
    for want in [
        "<option value=\"lb\"",
        "<option value=\"vserver\"",
        "data-field=\"threshold\" data-type=\"float\"",
        "data-field=\"for_s\" data-type=\"int\"",
    ] {
        assert!(template.contains(want), "the row lacks {want}: {template}");
    }
    for want in [
        "data-api=\"/v1/alarm-templates\"",
        "name=\"name\"",
        "name=\"webhook_url\"",
        "data-add-row=\"rules\"",
        "class=\"form-error\"",
    ] {
        assert!(form.contains(want), "the create form lacks {want}: {form}");
    }

    // Details: rules in order, bindings, the prefilled modify form.
    let (status, html) = web.page(&format!("/alarm-templates/{ops}")).await;
    assert_eq!(status, 200, "{html}");
    let table = section(&html, "id=\"at-rule-table\"", "</table>");
    assert_in_order(table, &escaped.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(table.matches("class=\"at-rule\"").count(), 3);
    let used = section(&html, "id=\"at-used-by\"", "</dd>");
    assert!(
        used.contains(&format!("/lbs/{lb}\"")) && used.contains(&format!("/lbs/{lb}/vservers/{vs}")),
        "{used}"
    );
    let form = section(&html, "id=\"at-edit\"", "</form>");
    assert!(form.contains(&format!("data-api=\"/v1/alarm-templates/{ops}\" data-method=\"PATCH\"")));
    assert!(
        form.contains(&format!("name=\"webhook_url\" value=\"{HOOK}\"")),
        "{form}"
    );
    let rows = section(form, "data-rows=\"rules\"", "<template");
    assert_eq!(rows.matches("<div class=\"row\">").count(), 3);
    assert_in_order(
        rows,
        &[
            "<option value=\"lb\" selected",
            "<option value=\"new_connections_per_s\" selected",
            "<option value=\"&#62;\" selected",
            "value=\"5\"",
            "value=\"20\"",
            "<option value=\"vserver\" selected",
            "<option value=\"http_5xx_per_s\" selected",
            "<option value=\"&#62;=\" selected",
            "value=\"0.5\"",
            "value=\"0\"",
            "<option value=\"unhealthy_backends\" selected",
            "<option value=\"&#60;=\" selected",
            "value=\"1234.5678\"",
            "value=\"86400\"",
        ],
    );
    assert_eq!(rows.matches(" selected").count(), 9, "one choice per select: {rows}");

    // The modify form's PATCH replaces every rule; the page shows the new ones.
    let r = web
        .api(
            Method::PATCH,
            &format!("/v1/alarm-templates/{ops}"),
            Some(json!({"name": "ops-2", "webhook_url": "http://127.0.0.1:9/hook",
                        "rules": [alarm_rule("vserver", "requests_per_s", "<", 2.0, 60)]})),
        )
        .await;
    r.ok(200);
    let (_, html) = web.page(&format!("/alarm-templates/{ops}")).await;
    let table = section(&html, "id=\"at-rule-table\"", "</table>");
    assert!(shows(table, "VServer: requests_per_s < 2 for 60s"), "{table}");
    assert_eq!(table.matches("class=\"at-rule\"").count(), 1);
    assert!(html.contains("<h1 id=\"at-title\">ops-2") && html.contains("http://127.0.0.1:9/hook"));
    // Errors name the row's control, e.g. a negative threshold of rule 2.
    web.api(
        Method::PATCH,
        &format!("/v1/alarm-templates/{ops}"),
        Some(json!({"rules": [alarm_rule("lb", "active_connections", ">", 1.0, 0), alarm_rule("lb", "active_connections", ">", -1.0, 0)]})),
    )
    .await
    .err(400, "out_of_range", Some("rules[1].threshold"));

    // Bound: 409; the XSS one (unbound) deletes, and shows escaped till then.
    let (status, html) = web.page(&format!("/alarm-templates/{xss}")).await;
    assert_eq!(status, 200);
    assert_escaped(&html);
    web.api(Method::DELETE, &format!("/v1/alarm-templates/{ops}"), None)
        .await
        .err(409, "in_use", None);
    let d = web
        .api(Method::DELETE, &format!("/v1/alarm-templates/{xss}"), None)
        .await;
    assert_eq!(d.status.as_u16(), 204);
    let (_, html) = web.page("/alarm-templates?search=OPS-2").await;
    assert!(html.contains(&format!("data-id=\"{ops}\"")) && !html.contains(&format!("data-id=\"{xss}\"")));
    let (_, html) = web.page("/alarm-templates?search=zzz").await;
    assert_shows(&html, "No alarm template matches “zzz”.");

    // Another tenant sees none of it.
    let other = Web::sign_in(&s, &b).await;
    let (status, html) = other.page("/alarm-templates").await;
    assert_eq!(status, 200);
    assert!(!html.contains(&ops) && !html.contains("ops-2"));
    let (status, html) = other.page(&format!("/alarm-templates/{ops}")).await;
    assert_eq!(status, 404, "{html}");
    assert!(!html.contains("ops-2") && !html.contains("127.0.0.1:9/hook"));
}

/// Polls `GET /v1/alarms?<query>` until `total` is `want`; the first item.
async fn alarm_when(s: &Server, token: &str, query: &str, want: u64) -> Value {
    for _ in 0..150 {
        let r = s.get(token, &format!("/v1/alarms?{query}")).await;
        if r.ok(200)["total"] == want {
            return r.body["items"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/v1/alarms?{query} never had {want} item(s)");
}

#[tokio::test]
async fn alarm_events_page_shows_firing_and_resolved_events() {
    let s = Server::start_with_config("[metrics]\ninterval_s = 1\n").await;
    let (_, a) = s.account("alarm-owner").await;
    let (_, b) = s.account("alarm-stranger").await;
    let web = Web::sign_in(&s, &a).await;

    // Nothing yet: the empty state of every filter.
    let (status, html) = web.page("/alarms").await;
    assert_eq!(status, 200, "{html}");
    assert_shows(&html, "No alarm has fired yet.");
    assert!(html.contains("id=\"alarm-filter-all\" class=\"on\""), "{html}");
    let (_, html) = web.page("/alarms?state=firing").await;
    assert_shows(&html, "No alarm is firing.");
    assert!(html.contains("id=\"alarm-filter-firing\" class=\"on\""));
    let (status, _) = web.page("/alarms?state=bogus").await;
    assert_eq!(status, 200, "an unknown state shows every event");

    // A rule that always holds (0 active connections >= 0), named <script>.
    let t = s
        .post(
            &a,
            "/v1/alarm-templates",
            json!({"name": XSS, "webhook_url": "http://127.0.0.1:9/down",
                   "rules": [alarm_rule("lb", "active_connections", ">=", 0.0, 0)]}),
        )
        .await;
    t.ok(201);
    let t = t.id();
    let n = kit::net(&s, &a, "127.0.0.0/8", "127.112.3.0/24", "127.112.3.10").await;
    let lb = s
        .post_applied(
            &a,
            "/v1/load-balancers",
            json!({"name": "watched", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "alarm_template_id": t}),
        )
        .await;
    lb.ok(201);
    let lb = lb.id();
    let event = alarm_when(&s, &a, "state=firing", 1).await;
    let id = event["id"].as_str().unwrap_or_default().to_string();

    let (status, html) = web.page("/alarms").await;
    assert_eq!(status, 200);
    let row = section(&html, &format!("<tr data-id=\"{id}\""), "</tr>");
    assert!(
        row.contains("data-state=\"firing\" class=\"warn\""),
        "firing rows stand out: {row}"
    );
    assert!(row.contains("Firing"), "{row}");
    assert!(row.contains(&format!("href=\"/alarm-templates/{t}\"")), "{row}");
    assert!(row.contains(&format!("href=\"/lbs/{lb}\"")), "the LB is linked: {row}");
    assert_shows(row, "LB watched");
    assert_shows(row, "LB: active_connections >= 0");
    assert!(row.contains("<td>0</td>"), "the value: {row}");
    assert!(row.contains("pending"), "the webhook is down: {row}");
    assert_escaped(&html);
    let (_, html) = web.page("/alarms?state=firing").await;
    assert!(html.contains(&format!("data-id=\"{id}\"")));
    let (_, html) = web.page("/alarms?state=resolved").await;
    assert!(!html.contains(&format!("data-id=\"{id}\"")));
    assert_shows(&html, "No resolved alarms.");
    let (_, html) = web.page(&format!("/alarms?search={lb}")).await;
    assert!(html.contains(&format!("data-id=\"{id}\"")));
    assert!(
        html.contains(&format!("href=\"/alarms?state=firing&#38;search={lb}\""))
            || html.contains(&format!("href=\"/alarms?state=firing&amp;search={lb}\"")),
        "filters keep the search: {html}"
    );
    let (_, html) = web.page("/alarms?search=no-such-alarm").await;
    assert!(!html.contains(&format!("data-id=\"{id}\"")));
    assert_shows(&html, "No alarm matches “no-such-alarm”.");
    // The template's page counts it.
    let (_, html) = web.page(&format!("/alarm-templates/{t}")).await;
    assert!(
        section(&html, "id=\"at-alarms\"", "</dd>").contains("1 firing"),
        "{html}"
    );

    // Unbound, the rule no longer applies: the alarm resolves.
    web.api(
        Method::PATCH,
        &format!("/v1/load-balancers/{lb}"),
        Some(json!({"alarm_template_id": null})),
    )
    .await
    .ok(200);
    let resolved = alarm_when(&s, &a, "state=resolved", 1).await;
    assert_eq!(resolved["id"], json!(id));
    let (_, html) = web.page("/alarms?state=resolved").await;
    let row = section(&html, &format!("<tr data-id=\"{id}\""), "</tr>");
    assert!(
        row.contains("data-state=\"resolved\">"),
        "resolved rows are not highlighted: {row}"
    );
    assert!(row.contains("Resolved") && row.contains(" UTC</td>"), "{row}");
    assert_eq!(row.matches(" UTC</td>").count(), 2, "started and resolved times: {row}");
    let (_, html) = web.page("/alarms?state=firing").await;
    assert!(!html.contains(&format!("data-id=\"{id}\"")));

    // Another tenant sees no event.
    let other = Web::sign_in(&s, &b).await;
    let (status, html) = other.page("/alarms").await;
    assert_eq!(status, 200);
    assert!(!html.contains(&id) && !html.contains(&lb));
    assert_shows(&html, "No alarm has fired yet.");
}
