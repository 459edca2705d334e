//! Server-side chart images for the console: one metric of one resource over
//! a time range, as a standalone SVG document.
//!
//! The document is written by hand rather than through a plotting library:
//! the chart is small (title, grid, two axes, one series), and writing it
//! directly keeps every element identifiable (`class` attributes the console
//! can style and tests can find), the tick positions and labels fully ours,
//! and the output byte-for-byte deterministic. Text is left to the viewer's
//! `sans-serif` font; nothing external (fonts, images, scripts, styles) is
//! referenced.

use std::fmt::{self, Write as _};

use time::{Date, OffsetDateTime};

use crate::Metric;

/// Default image width, in pixels.
pub const WIDTH: u32 = 800;
/// Default image height, in pixels.
pub const HEIGHT: u32 = 300;

/// What to draw: `points` are `(unix seconds, value)` samples of `metric`,
/// expected every `resolution_s` seconds over `[from, to]`.
#[derive(Debug, Clone, Copy)]
pub struct Chart<'a> {
    /// Shown above the chart; user input, escaped on output.
    pub title: &'a str,
    pub metric: Metric,
    /// Start of the x axis, unix seconds.
    pub from: i64,
    /// End of the x axis, unix seconds.
    pub to: i64,
    /// Spacing of the samples; consecutive points more than twice this apart
    /// are a gap in the data. Zero or negative: never break the line.
    pub resolution_s: i64,
    pub points: &'a [(i64, f64)],
}

/// A line chart as a standalone SVG document ([`WIDTH`]x[`HEIGHT`]): title,
/// x axis with UTC time labels (`HH:MM` for ranges up to 1 day — `HH:MM:SS`
/// if ticks are less than a minute apart —, `MM-DD HH:MM` or `MM-DD`
/// beyond), y axis labelled with the metric's unit and tick values with SI
/// suffixes (`1.5k`, `2M`, at most 3 significant digits), a grid, and the
/// series as a line.
///
/// Gaps in the data (consecutive points more than `2 × resolution_s` apart)
/// break the line into separate `<polyline>`s; a lone point between gaps is
/// also marked with a dot. Points outside `[from, to]` and non-finite values
/// are left out. An empty series renders the axes over `[from, to]` and a
/// "no data" text. The y axis starts at 0 (lower only if values are
/// negative) and its top is a little above the max (1 when all values are 0).
pub fn render(chart: &Chart) -> String {
    render_with_size(chart, WIDTH, HEIGHT)
}

/// [`render`] at another size (clamped to at least 240x140 so the layout
/// still fits).
pub fn render_with_size(chart: &Chart, width: u32, height: u32) -> String {
    let width = f64::from(width.max(240));
    let height = f64::from(height.max(140));
    let (from, to) = time_range(chart.from, chart.to, chart.resolution_s);
    let points = clean_points(chart.points, from, to);
    let (min, max) = points
        .iter()
        .fold((0.0_f64, 0.0_f64), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));

    let plot = Frame {
        left: 72.0,
        top: 36.0,
        right: width - 40.0,
        bottom: height - 30.0,
        from,
        to,
        y: YScale::new(min, max, height - 66.0),
    };
    let x_ticks = TimeTicks::new(from, to, plot.right - plot.left);
    let y_ticks = plot.y.ticks();

    let mut out = String::with_capacity(4096 + points.len() * 12);
    let svg = &mut out;
    w(
        svg,
        format_args!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect class=\"background\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n\
             <text class=\"title\" x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" \
             font-weight=\"bold\" fill=\"{TEXT}\">{}</text>\n",
            Px(width / 2.0),
            Xml(chart.title),
        ),
    );

    // Grid, under everything else.
    w(
        svg,
        format_args!("<g class=\"grid\" stroke=\"{GRID}\" stroke-width=\"1\">\n"),
    );
    for &v in &y_ticks {
        let y = Px(plot.y(v));
        let (l, r) = (Px(plot.left), Px(plot.right));
        w(
            svg,
            format_args!("<line x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\"/>\n"),
        );
    }
    for &t in &x_ticks.at {
        let x = Px(plot.x(t));
        let (top, bottom) = (Px(plot.top), Px(plot.bottom));
        w(
            svg,
            format_args!("<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{bottom}\"/>\n"),
        );
    }
    svg.push_str("</g>\n");

    // Axes: the two lines, tick marks and their labels, the unit.
    let (l, r, top, bottom) = (Px(plot.left), Px(plot.right), Px(plot.top), Px(plot.bottom));
    w(
        svg,
        format_args!(
            "<g class=\"axes\" stroke=\"{AXIS}\" stroke-width=\"1\">\n\
             <line x1=\"{l}\" y1=\"{top}\" x2=\"{l}\" y2=\"{bottom}\"/>\n\
             <line x1=\"{l}\" y1=\"{bottom}\" x2=\"{r}\" y2=\"{bottom}\"/>\n"
        ),
    );
    for &t in &x_ticks.at {
        let x = Px(plot.x(t));
        let end = Px(plot.bottom + 4.0);
        w(
            svg,
            format_args!("<line x1=\"{x}\" y1=\"{bottom}\" x2=\"{x}\" y2=\"{end}\"/>\n"),
        );
    }
    for &v in &y_ticks {
        let y = Px(plot.y(v));
        let start = Px(plot.left - 4.0);
        w(
            svg,
            format_args!("<line x1=\"{start}\" y1=\"{y}\" x2=\"{l}\" y2=\"{y}\"/>\n"),
        );
    }
    svg.push_str("</g>\n");

    w(
        svg,
        format_args!("<g class=\"x-labels\" text-anchor=\"middle\" fill=\"{TEXT}\">\n"),
    );
    let label_y = Px(plot.bottom + 17.0);
    for &t in &x_ticks.at {
        let (x, label) = (Px(plot.x(t)), x_ticks.format.label(t));
        w(
            svg,
            format_args!("<text x=\"{x}\" y=\"{label_y}\">{}</text>\n", Xml(&label)),
        );
    }
    svg.push_str("</g>\n");

    w(
        svg,
        format_args!("<g class=\"y-labels\" text-anchor=\"end\" fill=\"{TEXT}\">\n"),
    );
    let label_x = Px(plot.left - 7.0);
    for &v in &y_ticks {
        let y = Px(plot.y(v) + 4.0);
        w(
            svg,
            format_args!("<text x=\"{label_x}\" y=\"{y}\">{}</text>\n", Xml(&si(v))),
        );
    }
    svg.push_str("</g>\n");

    let (ux, uy) = (Px(16.0), Px((plot.top + plot.bottom) / 2.0));
    w(
        svg,
        format_args!(
            "<text class=\"unit\" x=\"{ux}\" y=\"{uy}\" transform=\"rotate(-90 {ux} {uy})\" \
             text-anchor=\"middle\" fill=\"{TEXT}\">{}</text>\n",
            Xml(chart.metric.unit()),
        ),
    );

    // The series, one polyline per run of points without a gap.
    if points.is_empty() {
        let (x, y) = (Px((plot.left + plot.right) / 2.0), Px((plot.top + plot.bottom) / 2.0));
        w(
            svg,
            format_args!(
                "<text class=\"no-data\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" \
                 font-size=\"14\" fill=\"{MUTED}\">no data</text>\n"
            ),
        );
    } else {
        w(
            svg,
            format_args!(
                "<g class=\"series\" fill=\"none\" stroke=\"{SERIES}\" stroke-width=\"1.5\" \
                 stroke-linejoin=\"round\" stroke-linecap=\"round\">\n"
            ),
        );
        for segment in segments(&points, chart.resolution_s) {
            svg.push_str("<polyline points=\"");
            for (i, &(t, v)) in segment.iter().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                w(svg, format_args!("{sep}{},{}", Px(plot.x(t)), Px(plot.y(v))));
            }
            svg.push_str("\"/>\n");
            if let [(t, v)] = segment {
                let (cx, cy) = (Px(plot.x(*t)), Px(plot.y(*v)));
                w(
                    svg,
                    format_args!("<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2\" fill=\"{SERIES}\" stroke=\"none\"/>\n"),
                );
            }
        }
        svg.push_str("</g>\n");
    }

    svg.push_str("</svg>\n");
    out
}

const TEXT: &str = "#333333";
const MUTED: &str = "#888888";
const GRID: &str = "#e6e6e6";
const AXIS: &str = "#666666";
const SERIES: &str = "#1f77b4";

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Values beyond any real rate or gauge are clamped to this, which keeps
/// the scale arithmetic finite.
const VALUE_LIMIT: f64 = 1e18;

/// Appends formatted text; writing into a `String` cannot fail.
fn w(out: &mut String, args: fmt::Arguments) {
    let _ = out.write_fmt(args);
}

/// Text escaped for XML content and attribute values. Characters XML 1.0
/// does not allow (most C0 controls, U+FFFE, U+FFFF) become U+FFFD so the
/// document stays well-formed whatever the input.
struct Xml<'a>(&'a str);

impl fmt::Display for Xml<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '&' => f.write_str("&amp;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                '\t' | '\n' | '\r' => f.write_char(c)?,
                '\0'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => f.write_char('\u{fffd}')?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A pixel coordinate, to a tenth of a pixel.
struct Px(f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Adding 0.0 turns -0.0 into 0.0.
        write!(f, "{:.1}", self.0 + 0.0)
    }
}

/// The plot area, in pixels, and the data ranges mapped onto it.
struct Frame {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    from: i64,
    to: i64,
    y: YScale,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        // `time_range` guarantees from < to, both well inside f64 precision.
        let f = (t - self.from) as f64 / (self.to - self.from) as f64;
        self.left + f * (self.right - self.left)
    }

    fn y(&self, v: f64) -> f64 {
        let f = (v - self.y.lo) / (self.y.hi - self.y.lo);
        self.bottom - f * (self.bottom - self.top)
    }
}

/// `[from, to]` made usable: within the dates `time` can format, ordered,
/// and at least a second (or one resolution step) long.
fn time_range(from: i64, to: i64, resolution_s: i64) -> (i64, i64) {
    let min = Date::MIN.midnight().assume_utc().unix_timestamp();
    let max = Date::MAX.midnight().assume_utc().unix_timestamp();
    let (from, to) = (from.clamp(min, max), to.clamp(min, max));
    let (from, to) = (from.min(to), from.max(to));
    if from < to {
        return (from, to);
    }
    let span = resolution_s.clamp(1, DAY);
    if from + span <= max {
        (from, from + span)
    } else {
        (max - span, max)
    }
}

/// The points to draw: inside `[from, to]`, finite, in time order.
fn clean_points(points: &[(i64, f64)], from: i64, to: i64) -> Vec<(i64, f64)> {
    let mut clean: Vec<_> = points
        .iter()
        .filter(|(t, v)| (from..=to).contains(t) && v.is_finite())
        .map(|&(t, v)| (t, v.clamp(-VALUE_LIMIT, VALUE_LIMIT)))
        .collect();
    clean.sort_by_key(|&(t, _)| t);
    clean
}

/// Runs of points with no gap longer than `2 × resolution_s` inside.
fn segments(points: &[(i64, f64)], resolution_s: i64) -> impl Iterator<Item = &[(i64, f64)]> {
    let max_step = resolution_s.saturating_mul(2);
    points.chunk_by(move |a, b| resolution_s <= 0 || b.0 - a.0 <= max_step)
}

/// The y axis: `[lo, hi]` in steps of `step`, all three "nice" numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct YScale {
    lo: f64,
    hi: f64,
    step: f64,
}

impl YScale {
    /// Covers `[min(0, min), max]` with some headroom above the max, in
    /// about one tick per 45 pixels of `height`.
    fn new(min: f64, max: f64, height: f64) -> YScale {
        const EMPTY: YScale = YScale {
            lo: 0.0,
            hi: 1.0,
            step: 0.2,
        };
        let (lo, hi) = (min.min(0.0), max.max(0.0));
        if hi <= lo {
            return EMPTY;
        }
        let headroom = hi + (hi - lo) * 0.05;
        let ticks = (height / 45.0).floor().clamp(2.0, 10.0);
        let step = nice_step((headroom - lo) / ticks);
        let scale = YScale {
            lo: (lo / step).floor() * step,
            hi: (headroom / step).ceil() * step,
            step,
        };
        // Only values at the very edges of f64 (subnormals) could fail this.
        let steps = (scale.hi - scale.lo) / step;
        if step > 0.0 && steps.is_finite() && steps >= 1.0 && scale.hi > max {
            scale
        } else {
            EMPTY
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round().clamp(1.0, 100.0) as u32;
        (0..=n).map(|i| self.lo + f64::from(i) * self.step).collect()
    }
}

/// The smallest of 1, 2, 2.5, 5 (times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = match fraction {
        f if f <= 1.0 => 1.0,
        f if f <= 2.0 => 2.0,
        f if f <= 2.5 => 2.5,
        f if f <= 5.0 => 5.0,
        _ => 10.0,
    };
    nice * magnitude
}

/// `v` to at most 3 significant digits, with an SI suffix from 1000 up:
/// `0.25`, `12`, `1.5k`, `250k`, `1M`, `3G`.
fn si(v: f64) -> String {
    const SUFFIXES: [(f64, &str); 6] = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
    ];
    if v == 0.0 || !v.is_finite() {
        return "0".to_owned();
    }
    // Round first, so 999.7 becomes "1k" rather than "1000".
    let v = round_significant(v, 3);
    let (scaled, suffix) = SUFFIXES
        .iter()
        .find(|(unit, _)| v.abs() >= *unit)
        .map_or((v, ""), |&(unit, suffix)| (v / unit, suffix));
    let decimals = (2.0 - scaled.abs().log10().floor()).clamp(0.0, 20.0) as usize;
    let mut s = format!("{scaled:.decimals$}");
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    s.push_str(suffix);
    s
}

fn round_significant(v: f64, digits: i32) -> f64 {
    let shift = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    let rounded = (v * shift).round() / shift;
    if rounded.is_finite() { rounded } else { v }
}

/// The x axis ticks: multiples of a round step (so whole minutes, hours,
/// UTC midnights), few enough that their labels don't overlap.
struct TimeTicks {
    at: Vec<i64>,
    format: TimeFormat,
}

/// How x labels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    /// `HH:MM:SS`: ranges up to a day with ticks less than a minute apart.
    Seconds,
    /// `HH:MM`: ranges up to a day.
    Minutes,
    /// `MM-DD HH:MM`: longer ranges, ticks within days.
    DayMinutes,
    /// `MM-DD`: longer ranges, ticks at midnights.
    Days,
}

impl TimeFormat {
    fn new(span: i64, step: i64) -> TimeFormat {
        match (span <= DAY, step) {
            (true, step) if step < MINUTE => TimeFormat::Seconds,
            (true, _) => TimeFormat::Minutes,
            (false, step) if step % DAY == 0 => TimeFormat::Days,
            (false, _) => TimeFormat::DayMinutes,
        }
    }

    /// Pixels a label needs, with some space to the next one.
    fn width(self) -> f64 {
        let chars = match self {
            TimeFormat::Seconds => 8.0,
            TimeFormat::Minutes | TimeFormat::Days => 5.0,
            TimeFormat::DayMinutes => 11.0,
        };
        chars * 7.0 + 16.0
    }

    fn label(self, t: i64) -> String {
        let Ok(at) = OffsetDateTime::from_unix_timestamp(t) else {
            return t.to_string();
        };
        let (month, day) = (u8::from(at.month()), at.day());
        let (hour, minute, second) = (at.hour(), at.minute(), at.second());
        match self {
            TimeFormat::Seconds => format!("{hour:02}:{minute:02}:{second:02}"),
            TimeFormat::Minutes => format!("{hour:02}:{minute:02}"),
            TimeFormat::DayMinutes => format!("{month:02}-{day:02} {hour:02}:{minute:02}"),
            TimeFormat::Days => format!("{month:02}-{day:02}"),
        }
    }
}

impl TimeTicks {
    /// Steps that divide a day evenly, then whole days.
    const STEPS: [i64; 21] = [
        1,
        2,
        5,
        10,
        15,
        30,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
    ];

    /// Ticks for `[from, to]` (from < to) over `width` pixels.
    fn new(from: i64, to: i64, width: f64) -> TimeTicks {
        let span = to - from;
        let fits = |step: i64| {
            let format = TimeFormat::new(span, step);
            let room = (width / format.width()).floor().max(2.0) as i64;
            (span / step < room).then_some(format)
        };
        let (step, format) = Self::STEPS
            .iter()
            .find_map(|&step| fits(step).map(|format| (step, format)))
            .unwrap_or_else(|| {
                // Longer than the table covers: whole days, as many as fit.
                let room = (width / TimeFormat::Days.width()).floor().max(2.0) as i64;
                ((span / room / DAY + 1) * DAY, TimeFormat::Days)
            });
        let first = from + (step - from.rem_euclid(step)) % step;
        let at = (0..).map(|i| first + i * step).take_while(|&t| t <= to).collect();
        TimeTicks { at, format }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_labels() {
        let cases = [
            (0.0, "0"),
            (0.25, "0.25"),
            (0.00025, "0.00025"),
            (1.0, "1"),
            (12.5, "12.5"),
            (999.0, "999"),
            (999.7, "1k"),
            (1500.0, "1.5k"),
            (250_000.0, "250k"),
            (1_000_000.0, "1M"),
            (1_250_000.0, "1.25M"),
            (1_234_567.0, "1.23M"),
            (3e9, "3G"),
            (4.5e12, "4.5T"),
            (-2000.0, "-2k"),
            (0.6000000000000001, "0.6"),
            (f64::NAN, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(si(v), want, "si({v})");
        }
    }

    #[test]
    fn y_scale_is_nice_with_headroom() {
        let s = YScale::new(0.0, 1_000_000.0, 234.0);
        assert_eq!(
            s,
            YScale {
                lo: 0.0,
                hi: 1_250_000.0,
                step: 250_000.0
            }
        );
        let s = YScale::new(0.0, 100.0, 234.0);
        assert_eq!((s.lo, s.hi), (0.0, 125.0));
        assert_eq!(YScale::new(0.0, 0.0, 234.0).hi, 1.0);
        let s = YScale::new(-10.0, 10.0, 234.0);
        assert!(s.lo <= -10.0 && s.hi > 10.0, "{s:?}");
        assert!(YScale::new(0.0, 5e-324, 234.0).hi > 0.0);
        assert!(YScale::new(0.0, VALUE_LIMIT, 234.0).hi > VALUE_LIMIT);
        for max in [0.003, 0.7, 3.0, 42.0, 999.0, 12_345.0, 7.7e9] {
            let s = YScale::new(0.0, max, 234.0);
            let n = s.ticks().len();
            assert!(s.hi > max && s.hi < max * 2.0, "{max}: {s:?}");
            assert!((3..=11).contains(&n), "{max}: {n} ticks");
        }
    }

    #[test]
    fn time_ticks_pick_round_steps() {
        let noon = 1_714_564_800; // 2024-05-01 12:00 UTC
        let hour = TimeTicks::new(noon - HOUR, noon, 688.0);
        assert_eq!(hour.format, TimeFormat::Minutes);
        assert_eq!(
            hour.at.iter().map(|&t| hour.format.label(t)).collect::<Vec<_>>()[..3],
            ["11:00", "11:05", "11:10"]
        );
        let day = TimeTicks::new(noon - DAY, noon, 688.0);
        assert_eq!(day.format, TimeFormat::Minutes);
        assert!(day.at.iter().all(|t| t % (2 * HOUR) == 0));
        let two_days = TimeTicks::new(noon - 2 * DAY, noon, 688.0);
        assert_eq!(two_days.format, TimeFormat::DayMinutes);
        assert_eq!(two_days.format.label(noon), "05-01 12:00");
        let week = TimeTicks::new(noon - 7 * DAY, noon, 688.0);
        assert_eq!(week.format, TimeFormat::Days);
        assert_eq!(week.format.label(noon), "05-01");
        let minute = TimeTicks::new(noon - MINUTE, noon, 688.0);
        assert_eq!(minute.format, TimeFormat::Seconds);
        let centuries = TimeTicks::new(0, 200 * 365 * DAY, 688.0);
        assert!((2..=14).contains(&centuries.at.len()));
    }

    #[test]
    fn time_range_is_always_usable() {
        assert_eq!(time_range(10, 20, 5), (10, 20));
        assert_eq!(time_range(20, 10, 5), (10, 20));
        assert_eq!(time_range(10, 10, 5), (10, 15));
        assert_eq!(time_range(10, 10, 0), (10, 11));
        let (from, to) = time_range(i64::MIN, i64::MAX, 0);
        assert!(from < to && OffsetDateTime::from_unix_timestamp(to).is_ok());
        let (from, to) = time_range(i64::MAX, i64::MAX, 60);
        assert_eq!(to - from, 60);
    }

    #[test]
    fn escaping() {
        let s = Xml("<a href='x'>&\"\u{0}\u{7}\t").to_string();
        assert_eq!(s, "&lt;a href=&apos;x&apos;&gt;&amp;&quot;\u{fffd}\u{fffd}\t");
    }
}
