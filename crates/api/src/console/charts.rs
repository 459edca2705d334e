//! The monitoring block of the LB and VServer pages: range links (1 h, 6 h,
//! 12 h, 1 d), a custom from/to form, and the SVG charts the metrics API
//! draws (no chart library ships to the browser).

use crate::ApiError;

/// Named ranges, as the metrics API takes them.
const RANGES: &[(&str, &str)] = &[
    ("1h", "1 hour"),
    ("6h", "6 hours"),
    ("12h", "12 hours"),
    ("1d", "1 day"),
];

pub struct RangeLink {
    pub href: String,
    pub label: &'static str,
    pub on: bool,
}

pub struct Chart {
    pub src: String,
    pub caption: &'static str,
}

pub struct Charts {
    pub ranges: Vec<RangeLink>,
    pub custom: bool,
    /// The custom form's values (as typed, `YYYY-MM-DDTHH:MM`, UTC).
    pub from: String,
    pub to: String,
    /// The metrics API's complaint about the custom range, by field.
    pub from_error: String,
    pub to_error: String,
    pub charts: Vec<Chart>,
    /// The page's path, for the custom form's action.
    pub action: String,
    /// Hidden fields the custom form keeps (e.g. the tab).
    pub keep: Vec<(String, String)>,
}

/// What the page asked for: `range=` or `from=`/`to=`.
pub struct Window {
    pub range: String,
    pub from: String,
    pub to: String,
}

impl Window {
    pub fn from_pairs(pairs: &[(String, String)]) -> Window {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        Window {
            range: get("range"),
            from: get("from"),
            to: get("to"),
        }
    }

    pub fn is_custom(&self) -> bool {
        !self.from.is_empty() || !self.to.is_empty()
    }

    /// The query for the metrics API: a named range, or from/to with the
    /// browser's `datetime-local` values read as UTC.
    pub fn api_query(&self) -> String {
        if self.is_custom() {
            format!(
                "from={}&to={}",
                super::encode(&rfc3339(&self.from)),
                super::encode(&rfc3339(&self.to))
            )
        } else {
            let r = RANGES.iter().find(|(n, _)| *n == self.range).map_or("1h", |(n, _)| n);
            format!("range={r}")
        }
    }
}

/// `2026-12-04T10:00` (what a datetime-local input sends) → RFC 3339 UTC;
/// anything else is passed on for the API to judge.
fn rfc3339(v: &str) -> String {
    let b = v.as_bytes();
    let local = (b.len() == 16 || b.len() == 19) && b.get(10) == Some(&b'T') && !v.ends_with('Z');
    match (local, b.len()) {
        (true, 16) => format!("{v}:00Z"),
        (true, _) => format!("{v}Z"),
        _ => v.to_string(),
    }
}

/// Builds the block. `api` is the resource's metrics path (without
/// `.svg`); `checked` is the metrics API's answer to the same window, whose
/// error (if any) is shown next to the field it names while the charts fall
/// back to the last hour.
pub fn build<T>(
    page: &str,
    keep: Vec<(String, String)>,
    api: &str,
    w: &Window,
    checked: Result<T, ApiError>,
    metrics: &[(&str, &'static str)],
) -> Charts {
    let (mut from_error, mut to_error) = (String::new(), String::new());
    let query = match checked {
        Ok(_) => w.api_query(),
        Err(ApiError(e)) => {
            match e.field.as_deref() {
                Some("to") => to_error = e.message,
                _ => from_error = e.message,
            }
            "range=1h".to_string()
        }
    };
    let keep_q: String = keep.iter().map(|(k, v)| format!("&{k}={}", super::encode(v))).collect();
    let on = if w.is_custom() {
        ""
    } else {
        RANGES.iter().find(|(n, _)| *n == w.range).map_or("1h", |(n, _)| n)
    };
    Charts {
        ranges: RANGES
            .iter()
            .map(|(n, label)| RangeLink {
                href: format!("{page}?range={n}{keep_q}"),
                label,
                on: *n == on,
            })
            .collect(),
        custom: w.is_custom(),
        from: w.from.clone(),
        to: w.to.clone(),
        from_error,
        to_error,
        charts: metrics
            .iter()
            .map(|(m, caption)| Chart {
                src: format!("{api}.svg?metric={m}&{query}"),
                caption,
            })
            .collect(),
        action: page.to_string(),
        keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w = Window::from_pairs(&[("range".into(), "6h".into())]);
        assert_eq!(w.api_query(), "range=6h");
        let w = Window::from_pairs(&[("range".into(), "bogus".into())]);
        assert_eq!(w.api_query(), "range=1h");
        let w = Window::from_pairs(&[
            ("from".into(), "2026-12-04T10:00".into()),
            ("to".into(), "2026-12-04T11:00".into()),
        ]);
        assert_eq!(
            w.api_query(),
            "from=2026-12-04T10%3A00%3A00Z&to=2026-12-04T11%3A00%3A00Z"
        );
        assert_eq!(rfc3339("2026-12-04T10:00:30"), "2026-12-04T10:00:30Z");
        assert_eq!(rfc3339("junk"), "junk");
    }
}
