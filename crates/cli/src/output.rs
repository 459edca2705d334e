//! Printing API answers as tables or as the API's own JSON.

use std::io::Write;

use comfy_table::{Table, presets};
use serde_json::Value;

use crate::client::ApiResponse;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Human-readable tables
    #[default]
    Table,
    /// The API's JSON, pretty-printed
    Json,
}

/// One column of a list table: a header and a dotted path into each item.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub path: &'static str,
}

pub const fn col(header: &'static str, path: &'static str) -> Column {
    Column { header, path }
}

/// Writes one block to stdout; a closed pipe is not an error worth crashing on.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Writes one block to stderr.
pub fn emit_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    output: Output,
}

impl Printer {
    pub fn new(output: Output) -> Self {
        Self { output }
    }

    pub fn output(&self) -> Output {
        self.output
    }

    /// One resource (show/create/update): field/value rows, `order` first.
    pub fn object(&self, r: &ApiResponse, order: &[&str]) {
        match self.output {
            Output::Json => print_json(r),
            Output::Table => emit(&render_object(&r.json, order)),
        }
    }

    /// A `{items, total}` list: one row per item.
    pub fn list(&self, r: &ApiResponse, columns: &[Column]) {
        match self.output {
            Output::Json => print_json(r),
            Output::Table => emit(&render_list(&r.json, columns)),
        }
    }

    /// A batch answer `{<ok_key>: [...], failed: [{id, error}]}`; returns the exit code
    /// (1 when anything failed).
    pub fn batch(&self, r: &ApiResponse, ok_key: &str) -> i32 {
        let (text, failed) = render_batch(&r.json, ok_key);
        match self.output {
            Output::Json => print_json(r),
            Output::Table => emit(&text),
        }
        i32::from(failed > 0)
    }

    /// A line for humans (e.g. after a delete); nothing in JSON mode, where the API sent no body.
    pub fn note(&self, text: &str) {
        if self.output == Output::Table {
            emit(text);
        }
    }
}

fn print_json(r: &ApiResponse) {
    if r.raw.trim().is_empty() {
        return;
    }
    emit(&pretty_json(&r.raw).unwrap_or_else(|| r.raw.clone()));
}

/// Re-indents JSON text (two spaces, like `serde_json::to_string_pretty`) without
/// reordering keys or reformatting numbers, so the output is exactly the API's JSON.
/// `None` when `raw` is not valid JSON.
pub fn pretty_json(raw: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(raw).ok()?;
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Follows a dotted path (`eip.address`) into a value.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// How one value looks in a table cell.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => {
            let sep = if items.iter().any(Value::is_object) { "\n" } else { ", " };
            items.iter().map(cell).collect::<Vec<_>>().join(sep)
        }
        Value::Object(_) => sg_rule_text(value).unwrap_or_else(|| value.to_string()),
    }
}

/// A security-group rule in the `--rule` syntax `priority:action:protocol:ports:source`.
fn sg_rule_text(value: &Value) -> Option<String> {
    let parts = ["priority", "action", "protocol", "ports", "source"]
        .iter()
        .map(|k| value.get(k).map(cell))
        .collect::<Option<Vec<_>>>()?;
    Some(parts.join(":"))
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t
}

/// Field/value rows for one resource; nested objects become dotted fields.
/// Fields named in `order` (or below them) come first, in that order; the rest follow by name.
pub fn render_object(value: &Value, order: &[&str]) -> String {
    let mut rows = Vec::new();
    flatten("", value, &mut rows);
    let rank = |key: &str| {
        order
            .iter()
            .position(|o| key == *o || key.strip_prefix(o).is_some_and(|rest| rest.starts_with('.')))
            .unwrap_or(order.len())
    };
    rows.sort_by_key(|(k, _)| rank(k));
    let mut t = new_table();
    t.set_header(vec!["FIELD", "VALUE"]);
    for (k, v) in rows {
        t.add_row(vec![k, v]);
    }
    t.to_string()
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() && (prefix.is_empty() || sg_rule_text(value).is_none()) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, rows);
            }
        }
        _ if prefix.is_empty() => rows.push(("value".into(), cell(value))),
        _ => rows.push((prefix.to_owned(), cell(value))),
    }
}

/// One row per item of `{items: [...], total}`; columns no item has are dropped.
pub fn render_list(value: &Value, columns: &[Column]) -> String {
    let Some(items) = value.get("items").and_then(Value::as_array) else {
        return render_object(value, &[]);
    };
    if items.is_empty() {
        return "(none)".into();
    }
    let shown: Vec<&Column> = columns
        .iter()
        .filter(|c| items.iter().any(|i| lookup(i, c.path).is_some()))
        .collect();
    let mut t = new_table();
    t.set_header(shown.iter().map(|c| c.header).collect::<Vec<_>>());
    for item in items {
        t.add_row(
            shown
                .iter()
                .map(|c| lookup(item, c.path).map(cell).unwrap_or_else(|| "-".into()))
                .collect::<Vec<_>>(),
        );
    }
    let mut text = t.to_string();
    if let Some(total) = value.get("total").and_then(Value::as_u64)
        && total != items.len() as u64
    {
        text.push_str(&format!("\n{} of {total} shown (use --limit/--offset)", items.len()));
    }
    text
}

/// `ID | RESULT` rows for a batch answer, and how many failed.
pub fn render_batch(value: &Value, ok_key: &str) -> (String, usize) {
    let mut t = new_table();
    t.set_header(vec!["ID", "RESULT"]);
    for id in value.get(ok_key).and_then(Value::as_array).into_iter().flatten() {
        let id = id.get("id").unwrap_or(id);
        t.add_row(vec![cell(id), ok_key.to_owned()]);
    }
    let failed = value
        .get("failed")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for f in failed {
        let id = f.get("id").map(cell).unwrap_or_else(|| "-".into());
        let err = match f.get("error") {
            Some(e) => e
                .get("error")
                .unwrap_or(e)
                .get("message")
                .map(cell)
                .unwrap_or_else(|| cell(e)),
            None => "failed".into(),
        };
        t.add_row(vec![id, format!("failed: {err}")]);
    }
    (t.to_string(), failed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_json_matches_serde_for_sorted_input() {
        let v = json!({"a": [], "b": {}, "c": [1, {"d": "x,\"y\": {z}"}], "e": null, "f": 1.5});
        let compact = serde_json::to_string(&v).expect("ser");
        let expected = serde_json::to_string_pretty(&v).expect("ser");
        assert_eq!(pretty_json(&compact).as_deref(), Some(expected.as_str()));
        assert_eq!(pretty_json(&expected).as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn pretty_json_keeps_order_and_rejects_garbage() {
        let out = pretty_json(r#"{"z":1,"a":[ ],"m":{ }}"#).expect("valid");
        assert_eq!(out, "{\n  \"z\": 1,\n  \"a\": [],\n  \"m\": {}\n}");
        assert_eq!(pretty_json("{"), None);
    }

    #[test]
    fn cells() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!([])), "-");
        let rule = json!({"priority": 10, "action": "allow", "protocol": "tcp", "ports": "80", "source": "0.0.0.0/0"});
        assert_eq!(
            cell(&json!([rule.clone(), rule])),
            "10:allow:tcp:80:0.0.0.0/0\n10:allow:tcp:80:0.0.0.0/0"
        );
    }

    #[test]
    fn object_rows_are_flattened_and_ordered() {
        let v = json!({"zeta": 1, "id": "lb-1", "eip": {"id": "eip-1", "address": "127.0.20.5"}, "name": "web"});
        let text = render_object(&v, &["id", "name", "eip"]);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("│")).collect();
        let pos = |needle: &str| lines.iter().position(|l| l.contains(needle)).expect(needle);
        assert!(pos("lb-1") < pos("web"));
        assert!(pos("web") < pos("eip.address"));
        assert!(pos("eip.id") < pos("zeta"));
        assert!(text.contains("127.0.20.5"));
    }

    #[test]
    fn list_rows_and_dropped_columns() {
        let v = json!({"items": [
            {"id": "lb-1", "name": "web", "eip": {"address": "127.0.20.5"}},
            {"id": "lb-2", "name": "api", "eip": null}
        ], "total": 5});
        let cols = [
            col("ID", "id"),
            col("NAME", "name"),
            col("EIP", "eip.address"),
            col("GONE", "nope"),
        ];
        let text = render_list(&v, &cols);
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("lb-")).collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].contains("web") && rows[0].contains("127.0.20.5"));
        assert!(rows[1].contains("api") && rows[1].contains('-'));
        assert!(text.contains("EIP") && !text.contains("GONE"));
        assert!(text.contains("2 of 5 shown"));
        assert_eq!(render_list(&json!({"items": [], "total": 0}), &cols), "(none)");
    }

    #[test]
    fn batch_counts_failures() {
        let v = json!({"done": ["rs-1"], "failed": [{"id": "rs-2", "error": {"code": "not_found", "message": "no such backend"}}]});
        let (text, failed) = render_batch(&v, "done");
        assert_eq!(failed, 1);
        assert!(text.contains("rs-1") && text.contains("failed: no such backend"));
        let (_, failed) = render_batch(&json!({"deleted": ["lb-1"], "failed": []}), "deleted");
        assert_eq!(failed, 0);
    }
}
