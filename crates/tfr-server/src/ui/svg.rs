//! Charts drawn as SVG by our own code. Colours and shades are CSS classes (the page's
//! Content-Security-Policy allows no inline styles); each mark has a `<title>`, which browsers
//! show on hover and screen readers read.

use std::fmt::Write as _;

/// Escapes text for SVG (XML) content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One bar of a stacked bar chart: its label and its segments `(series index, count)`.
pub struct StackedBar {
    pub label: String,
    pub segments: Vec<(usize, u64)>,
}

/// A stacked bar chart. `series` names the series (their colours are `c0`..`c7`, cycling).
pub fn stacked_bars(bars: &[StackedBar], series: &[String], title: &str) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 36.0;
    const BOTTOM: f64 = 24.0;
    let max = bars
        .iter()
        .map(|bar| bar.segments.iter().map(|(_, n)| n).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_width = WIDTH - LEFT;
    let plot_height = HEIGHT - BOTTOM - 8.0;
    let slot = plot_width / bars.len().max(1) as f64;
    let bar_width = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="bars-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" preserveAspectRatio="none">"#,
        escape(title)
    );
    let _ = write!(
        svg,
        r#"<text class="axis" x="0" y="14">{max}</text><text class="axis" x="0" y="{}">0</text>"#,
        HEIGHT - BOTTOM
    );
    let _ = write!(
        svg,
        r#"<line class="baseline" x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}"/>"#,
        y = HEIGHT - BOTTOM
    );
    let label_every = (bars.len() / 6).max(1);
    for (index, bar) in bars.iter().enumerate() {
        let x = LEFT + index as f64 * slot + (slot - bar_width) / 2.0;
        let mut y = HEIGHT - BOTTOM;
        let total: u64 = bar.segments.iter().map(|(_, n)| n).sum();
        let mut tooltip = format!("{}: {total}", bar.label);
        for (series_index, count) in &bar.segments {
            if let Some(name) = series.get(*series_index) {
                let _ = write!(tooltip, ", {name} {count}");
            }
        }
        let _ = write!(svg, "<g><title>{}</title>", escape(&tooltip));
        // An invisible full-height rect makes the whole column hoverable.
        let _ = write!(
            svg,
            r#"<rect class="hit" x="{:.1}" y="8" width="{slot:.1}" height="{plot_height:.1}"/>"#,
            LEFT + index as f64 * slot
        );
        for (series_index, count) in &bar.segments {
            let height = *count as f64 / max as f64 * plot_height;
            y -= height;
            let _ = write!(
                svg,
                r#"<rect class="c{}" x="{x:.1}" y="{y:.1}" width="{bar_width:.1}" height="{height:.1}"/>"#,
                series_index % 8
            );
        }
        svg.push_str("</g>");
        // A label starts at its bar; one that would run past the right edge is left out.
        let label_fits = x + bar.label.chars().count() as f64 * 6.5 <= WIDTH;
        if index % label_every == 0 && label_fits {
            let _ = write!(
                svg,
                r#"<text class="axis" x="{x:.1}" y="{}">{}</text>"#,
                HEIGHT - 6.0,
                escape(&bar.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A heat map of changes per weekday (rows, Monday first) and hour (columns).
pub fn heat_map(counts: &[[u64; 24]; 7], title: &str) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const CELL: f64 = 26.0;
    const LEFT: f64 = 36.0;
    const TOP: f64 = 16.0;
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let width = LEFT + CELL * 24.0;
    let height = TOP + CELL * 7.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="heat-map" viewBox="0 0 {width} {height}" role="img" aria-label="{}">"#,
        escape(title)
    );
    for hour in (0..24).step_by(3) {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="11">{hour:02}h</text>"#,
            LEFT + hour as f64 * CELL
        );
    }
    for (day, row) in counts.iter().enumerate() {
        let y = TOP + day as f64 * CELL;
        let _ = write!(
            svg,
            r#"<text class="axis" x="0" y="{:.1}">{}</text>"#,
            y + CELL * 0.65,
            DAYS[day]
        );
        for (hour, count) in row.iter().enumerate() {
            // Six shades: none, then five steps of the maximum.
            let shade = if *count == 0 {
                0
            } else {
                1 + (*count * 4 / max).min(4)
            };
            let _ = write!(
                svg,
                r#"<rect class="h{shade}" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"><title>{} {hour:02}:00–{:02}:00: {count} changes</title></rect>"#,
                LEFT + hour as f64 * CELL,
                CELL - 2.0,
                CELL - 2.0,
                DAYS[day],
                (hour + 1) % 24
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let bars = vec![StackedBar {
            label: "<script>".into(),
            segments: vec![(0, 3)],
        }];
        let svg = stacked_bars(&bars, &["a\"b".into()], "t<");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;: 3, a&quot;b 3"));
        assert!(svg.contains(r#"aria-label="t&lt;""#));
    }

    #[test]
    fn labels_that_would_be_cut_at_the_right_edge_are_left_out() {
        let bars: Vec<StackedBar> = (1..=31)
            .map(|day| StackedBar {
                label: format!("2026-10-{day:02}"),
                segments: vec![(0, 1)],
            })
            .collect();
        let svg = stacked_bars(&bars, &["deploy".into()], "t");
        assert!(svg.contains(">2026-10-01</text>"), "{svg}");
        assert!(svg.contains(">2026-10-26</text>"), "{svg}");
        // The 31st bar is labelled in turn (every 5th), but its label would not fit.
        assert!(!svg.contains(">2026-10-31</text>"), "{svg}");
    }

    #[test]
    fn heat_map_has_a_cell_per_hour_and_day() {
        let mut counts = [[0u64; 24]; 7];
        counts[2][14] = 9;
        let svg = heat_map(&counts, "heat");
        assert_eq!(svg.matches("<rect").count(), 7 * 24);
        assert!(svg.contains(r#"<rect class="h5""#));
        assert!(svg.contains("Wed 14:00–15:00: 9 changes"));
    }
}
