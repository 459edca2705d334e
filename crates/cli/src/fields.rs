//! Maps the `field` of an API error (`health_check.interval_s`, `rules[2].priority`, …)
//! to the CLI flag that sets it (`--health-interval`, `--rule`, …).
//!
//! Each command group owns a static table of `(api field path, flag)`; a lookup
//! normalises the path (array indices and JSON-pointer slashes removed), tries the
//! group's table, then [`COMMON`], and walks up to the parent path until one matches
//! (`tls.foo` → `tls`).

/// `(normalised API field path, flag text shown to the user)`.
pub type FieldMap = &'static [(&'static str, &'static str)];

/// Fields that mean the same flag in every command group.
pub const COMMON: FieldMap = &[
    ("name", "--name"),
    ("comment", "--comment"),
    ("search", "--search"),
    ("limit", "--limit"),
    ("offset", "--offset"),
    ("ids", "--ids"),
    ("alarm_template_id", "--alarm-template"),
];

/// `rules[2].priority`, `rules.2.priority` and `/rules/2/priority` all become `rules.priority`.
pub fn normalize(field: &str) -> String {
    let dotted = field.trim().trim_start_matches('/').replace('/', ".");
    let mut no_brackets = String::with_capacity(dotted.len());
    let mut depth = 0usize;
    for ch in dotted.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => no_brackets.push(ch),
            _ => {}
        }
    }
    no_brackets
        .split('.')
        .filter(|seg| !seg.is_empty() && !seg.chars().all(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(".")
}

/// The flag that sets `field`, if the group's table or [`COMMON`] knows it or one of its parents.
pub fn flag_for(field: &str, map: FieldMap) -> Option<&'static str> {
    let norm = normalize(field);
    let mut key = norm.as_str();
    loop {
        if let Some(flag) = lookup(map, key).or_else(|| lookup(COMMON, key)) {
            return Some(flag);
        }
        key = &key[..key.rfind('.')?];
    }
}

fn lookup(map: FieldMap, key: &str) -> Option<&'static str> {
    map.iter().find(|(f, _)| *f == key).map(|(_, flag)| *flag)
}

/// The first array index in a field path (`rules[1].priority` → 1), i.e. which of the
/// values of a repeatable flag is to blame.
pub fn first_index(field: &str) -> Option<usize> {
    field
        .split(['.', '/', '[', ']'])
        .find(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()))
        .and_then(|seg| seg.parse().ok())
}

/// The line printed under `error: …` when the API named a field.
pub fn hint(field: &str, map: FieldMap) -> String {
    match (flag_for(field, map), first_index(field)) {
        (Some(flag), Some(i)) => format!("  field: {field} (set with {flag}, value #{})", i.saturating_add(1)),
        (Some(flag), None) => format!("  field: {field} (set with {flag})"),
        (None, _) => format!("  field: {field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: FieldMap = &[
        ("port", "--port"),
        ("health_check", "--health-*"),
        ("health_check.interval_s", "--health-interval"),
        ("vpc_id", "--vpc"),
        ("rules", "--rule"),
    ];

    #[test]
    fn normalizes_indices_and_pointers() {
        assert_eq!(normalize("rules[2].priority"), "rules.priority");
        assert_eq!(normalize("rules.2.priority"), "rules.priority");
        assert_eq!(normalize("/rules/2/priority"), "rules.priority");
        assert_eq!(normalize("backend_ids[0]"), "backend_ids");
        assert_eq!(normalize("port"), "port");
    }

    #[test]
    fn maps_exact_parent_and_common() {
        assert_eq!(flag_for("port", MAP), Some("--port"));
        assert_eq!(flag_for("vpc_id", MAP), Some("--vpc"));
        assert_eq!(flag_for("health_check.interval_s", MAP), Some("--health-interval"));
        assert_eq!(flag_for("health_check.bogus", MAP), Some("--health-*"));
        assert_eq!(flag_for("rules[3].source", MAP), Some("--rule"));
        assert_eq!(flag_for("name", MAP), Some("--name"));
        assert_eq!(flag_for("limit", MAP), Some("--limit"));
        assert_eq!(flag_for("unknown.thing", MAP), None);
        assert_eq!(flag_for("", MAP), None);
    }

    #[test]
    fn hint_names_field_and_flag() {
        assert_eq!(hint("port", MAP), "  field: port (set with --port)");
        assert_eq!(hint("whatever", MAP), "  field: whatever");
        assert_eq!(
            hint("rules[1].priority", MAP),
            "  field: rules[1].priority (set with --rule, value #2)"
        );
    }

    #[test]
    fn finds_first_index() {
        assert_eq!(first_index("rules[1].priority"), Some(1));
        assert_eq!(first_index("/rules/0/source"), Some(0));
        assert_eq!(first_index("tls.extra_certificate_ids.3"), Some(3));
        assert_eq!(first_index("health_check.interval_s"), None);
    }
}
