//! The SVG charts, checked through their parsed XML.

use roxmltree::{Document, Node};
use time::macros::datetime;
use weir_metrics::Metric;
use weir_metrics::svg::{Chart, render};

const SVG_NS: &str = "http://www.w3.org/2000/svg";

fn chart<'a>(metric: Metric, from: i64, to: i64, resolution_s: i64, points: &'a [(i64, f64)]) -> Chart<'a> {
    Chart {
        title: "lb-1 / web",
        metric,
        from,
        to,
        resolution_s,
        points,
    }
}

/// Renders and parses, failing the test on malformed XML.
fn parse(svg: &str) -> Document<'_> {
    Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"))
}

fn with_class<'a, 'i>(doc: &'a Document<'i>, class: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .collect()
}

/// The series' polylines, each as its list of (x, y).
fn segments(doc: &Document) -> Vec<Vec<(f64, f64)>> {
    doc.descendants()
        .filter(|n| n.has_tag_name((SVG_NS, "polyline")))
        .map(|n| {
            let points = n.attribute("points").expect("points");
            points
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').expect("x,y");
                    (x.parse().expect("x"), y.parse().expect("y"))
                })
                .collect()
        })
        .collect()
}

/// The text of every `<text>` under elements of `class`.
fn texts(doc: &Document, class: &str) -> Vec<String> {
    with_class(doc, class)
        .into_iter()
        .flat_map(|g| {
            g.descendants()
                .filter(|n| n.has_tag_name("text"))
                .map(|n| n.text().unwrap_or("").to_owned())
        })
        .collect()
}

/// `n` points `step` seconds apart from `start`, values from `value`.
fn series(start: i64, step: i64, n: i64, value: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..n).map(|i| (start + i * step, value(i))).collect()
}

#[test]
fn standalone_svg_without_external_references() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = series(from, 60, 61, |i| (i % 7) as f64);
    let svg = render(&chart(Metric::RequestsPerS, from, from + 3600, 60, &points));
    let doc = parse(&svg);
    let root = doc.root_element();
    assert!(root.has_tag_name((SVG_NS, "svg")));
    assert_eq!(root.attribute("width"), Some("800"));
    assert_eq!(root.attribute("height"), Some("300"));
    for node in doc.descendants().filter(Node::is_element) {
        let name = node.tag_name().name();
        assert!(
            !["script", "image", "use", "foreignObject", "style", "a", "feImage"].contains(&name),
            "unexpected <{name}>"
        );
        for attr in node.attributes() {
            assert!(!attr.name().contains("href"), "{} on <{name}>", attr.name());
            assert!(!attr.value().contains("url("), "{}={}", attr.name(), attr.value());
            assert!(!attr.name().starts_with("on"), "event handler {}", attr.name());
        }
    }
    assert!(!svg.contains("@import") && !svg.contains("NaN") && !svg.contains("inf"));
    assert_eq!(with_class(&doc, "grid").len(), 1);
    assert_eq!(with_class(&doc, "axes").len(), 1);
}

#[test]
fn a_series_without_gaps_is_one_line_through_every_point() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = series(from, 10, 360, |i| (i as f64 / 10.0).sin().abs() * 50.0);
    let doc_text = render(&chart(Metric::ActiveConnections, from, from + 3600, 10, &points));
    let doc = parse(&doc_text);
    let lines = segments(&doc);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].len(), 360);
    // Left to right, inside the image, higher values higher up.
    assert!(lines[0].windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        lines[0]
            .iter()
            .all(|&(x, y)| (0.0..=800.0).contains(&x) && (0.0..=300.0).contains(&y))
    );
    let peak = points
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(i, _)| i)
        .expect("points");
    assert!(lines[0].iter().all(|p| p.1 >= lines[0][peak].1));
}

#[test]
fn gaps_break_the_line() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    // 10 points, a 5-minute hole, 10 points.
    let mut points = series(from, 60, 10, |_| 5.0);
    points.extend(series(from + 15 * 60, 60, 10, |_| 7.0));
    let doc_text = render(&chart(Metric::RequestsPerS, from, from + 3600, 60, &points));
    let lines = segments(&parse(&doc_text));
    assert_eq!(lines.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10]);

    // Exactly twice the resolution is still continuous.
    let points = [(from, 1.0), (from + 120, 2.0), (from + 240, 3.0)];
    let lines = segments(&parse(&render(&chart(
        Metric::RequestsPerS,
        from,
        from + 3600,
        60,
        &points,
    ))));
    assert_eq!(lines.len(), 1);

    // A lone point between gaps still shows.
    let points = [(from, 1.0), (from + 600, 2.0), (from + 1200, 3.0), (from + 1260, 3.0)];
    let svg = render(&chart(Metric::RequestsPerS, from, from + 3600, 60, &points));
    let doc = parse(&svg);
    assert_eq!(segments(&doc).iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 2]);
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("circle")).count(), 2);
}

#[test]
fn the_title_is_escaped_text() {
    let title = "<script>alert(1)</script> & \"lb\" 'x' ]]> <!--";
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = [(from, 1.0)];
    let svg = render(&Chart {
        title,
        ..chart(Metric::RequestsPerS, from, from + 3600, 60, &points)
    });
    assert!(!svg.contains("<script"), "{svg}");
    let doc = parse(&svg);
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    assert_eq!(texts(&doc, "title"), [title]);
    assert_eq!(with_class(&doc, "title")[0].text(), Some(title));

    // Characters XML cannot carry are replaced, not passed through.
    let svg = render(&Chart {
        title: "a\u{0}b\u{1b}c",
        ..chart(Metric::RequestsPerS, from, from + 3600, 60, &points)
    });
    assert_eq!(with_class(&parse(&svg), "title")[0].text(), Some("a\u{fffd}b\u{fffd}c"));
}

#[test]
fn axes_show_the_unit_and_utc_times() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = series(from, 60, 120, |i| i as f64);
    let svg = render(&chart(Metric::BytesInPerS, from, from + 2 * 3600, 60, &points));
    let doc = parse(&svg);
    assert_eq!(texts(&doc, "unit"), ["bytes/s"]);
    let times = texts(&doc, "x-labels");
    assert!(times.iter().any(|t| t == "12:00"), "{times:?}");
    assert!(
        times.iter().all(|t| t.len() == 5 && t.as_bytes()[2] == b':'),
        "{times:?}"
    );
    assert!(times.len() >= 4 && times.len() <= 14, "{times:?}");
    assert_eq!(texts(&doc, "y-labels").first().map(String::as_str), Some("0"));
}

#[test]
fn ranges_over_a_day_label_dates() {
    let to = datetime!(2024-05-03 00:00 UTC).unix_timestamp();
    let points = [(to - 3600, 1.0)];
    let doc_text = render(&chart(Metric::ActiveConnections, to - 2 * 86400, to, 300, &points));
    let times = texts(&parse(&doc_text), "x-labels");
    assert!(times.iter().any(|t| t == "05-02 00:00"), "{times:?}");

    let doc_text = render(&chart(Metric::ActiveConnections, to - 7 * 86400, to, 3600, &points));
    let times = texts(&parse(&doc_text), "x-labels");
    assert!(times.iter().any(|t| t == "05-01"), "{times:?}");
    assert!(
        times.iter().all(|t| t.len() == 5 && t.as_bytes()[2] == b'-'),
        "{times:?}"
    );
}

#[test]
fn an_empty_series_says_no_data() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let svg = render(&chart(Metric::Http5xxPerS, from, from + 3600, 60, &[]));
    let doc = parse(&svg);
    assert_eq!(texts(&doc, "no-data"), ["no data"]);
    assert!(segments(&doc).is_empty());
    assert!(texts(&doc, "x-labels").iter().any(|t| t == "11:30"));
    assert_eq!(texts(&doc, "y-labels").last().map(String::as_str), Some("1"));
    assert_eq!(texts(&doc, "unit"), ["requests/s"]);

    // Points that are all unusable are no data either.
    let points = [(from - 60, 1.0), (from + 60, f64::NAN)];
    let doc_text = render(&chart(Metric::Http5xxPerS, from, from + 3600, 60, &points));
    assert_eq!(texts(&parse(&doc_text), "no-data"), ["no data"]);
}

#[test]
fn all_zero_values_scale_to_one() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = series(from, 60, 60, |_| 0.0);
    let svg = render(&chart(Metric::DroppedPerS, from, from + 3600, 60, &points));
    let doc = parse(&svg);
    assert_eq!(texts(&doc, "y-labels").last().map(String::as_str), Some("1"));
    assert!(texts(&doc, "no-data").is_empty());
    assert_eq!(segments(&doc)[0].len(), 60);
}

#[test]
fn large_rates_get_si_tick_labels() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = series(from, 60, 60, |i| i as f64 * 1_000_000.0 / 59.0);
    let svg = render(&chart(Metric::BytesOutPerS, from, from + 3600, 60, &points));
    let labels = texts(&parse(&svg), "y-labels");
    assert!(labels.iter().any(|l| l == "1M" || l == "1.0M"), "{labels:?}");
    assert!(labels.iter().any(|l| l.ends_with('k')), "{labels:?}");
    for label in &labels {
        let digits = label
            .trim_start_matches(['0', '.'])
            .chars()
            .filter(char::is_ascii_digit)
            .count();
        assert!(digits <= 3 && label.len() <= 6, "{label}");
    }
    // The top tick is above the max, but not far.
    let top = labels.last().expect("labels");
    assert!(
        ["1.05M", "1.1M", "1.2M", "1.25M", "1.5M"].contains(&top.as_str()),
        "{labels:?}"
    );

    let points = [(from, 3.2e9)];
    let labels = texts(
        &parse(&render(&chart(Metric::BytesOutPerS, from, from + 3600, 60, &points))),
        "y-labels",
    );
    assert!(labels.iter().any(|l| l.ends_with('G')), "{labels:?}");
}

#[test]
fn non_finite_values_are_skipped() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = [
        (from, 1.0),
        (from + 60, f64::NAN),
        (from + 120, 2.0),
        (from + 180, f64::INFINITY),
        (from + 240, f64::NEG_INFINITY),
        (from + 300, 3.0),
        (from + 360, f64::MAX),
        (from + 420, -1.0),
    ];
    let svg = render(&chart(Metric::RequestsPerS, from, from + 3600, 60, &points));
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    let doc = parse(&svg);
    let lines = segments(&doc);
    assert_eq!(lines.iter().map(Vec::len).sum::<usize>(), 5);
    assert!(
        lines
            .iter()
            .flatten()
            .all(|&(x, y)| x.is_finite() && y.is_finite() && (0.0..=300.0).contains(&y))
    );
}

#[test]
fn odd_ranges_do_not_panic() {
    let points = [(5, 1.0), (0, 2.0), (10, 3.0)];
    for (from, to, resolution_s) in [
        (0, 10, 1),
        (10, 0, 1),
        (5, 5, 0),
        (i64::MIN, i64::MAX, -1),
        (i64::MAX, i64::MAX, i64::MAX),
    ] {
        let svg = render(&chart(Metric::RequestsPerS, from, to, resolution_s, &points));
        parse(&svg);
    }
    // Unsorted input is drawn in time order.
    let lines = segments(&parse(&render(&chart(Metric::RequestsPerS, 0, 10, 5, &points))));
    assert!(lines[0].windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn output_is_deterministic() {
    let from = datetime!(2024-05-01 11:00 UTC).unix_timestamp();
    let points = series(from, 60, 60, |i| (i * i) as f64);
    let c = chart(Metric::RequestsPerS, from, from + 3600, 60, &points);
    assert_eq!(render(&c), render(&c));
}
