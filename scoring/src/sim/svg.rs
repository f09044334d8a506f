//! Line charts written as plain SVG: no fonts or system libraries are needed to produce them, and any
//! browser renders them.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// y value per x = 0, 1, 2, …
    pub values: Vec<f64>,
}

const COLORS: [&str; 10] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4",
    "#b2df8a",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Render series as a line chart, x from 0 to the longest series, y from 0 to `y_max` (or the data
/// maximum when `None`).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    y_max: Option<f64>,
) -> String {
    let (w, h) = (900.0, 480.0);
    let (left, right, top, bottom) = (70.0, 210.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0).max(2);
    let data_max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let y_top = y_max.unwrap_or(if data_max > 0.0 { data_max * 1.05 } else { 1.0 });
    let x_of = |i: usize| left + pw * i as f64 / (len - 1) as f64;
    let y_of = |v: f64| top + ph * (1.0 - (v / y_top).clamp(0.0, 1.0));

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="22" font-size="16" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        escape(title)
    );
    for k in 0..=5 {
        let v = y_top * f64::from(k) / 5.0;
        let y = y_of(v);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/>"##,
            left + pw
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.3}</text>"#,
            left - 6.0,
            y + 4.0
        );
    }
    let ticks = 5.min(len - 1);
    for k in 0..=ticks {
        let i = (len - 1) * k / ticks.max(1);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{i}</text>"#,
            x_of(i),
            top + ph + 18.0
        );
    }
    let _ = write!(
        s,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 10.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        escape(y_label)
    );
    for (k, ser) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = ser
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 10.0 + 20.0 * k as f64;
        let lx = left + pw + 15.0;
        let _ = write!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/>"#,
            lx + 20.0
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 26.0,
            ly + 4.0,
            escape(&ser.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_one_line_per_series_and_escapes_labels() {
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[
                Series {
                    label: "a<b".into(),
                    values: vec![0.0, 1.0, 0.5],
                },
                Series {
                    label: "c".into(),
                    values: vec![1.0],
                },
            ],
            None,
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
    }
}
