//! Flame graphs of a decoded pprof profile: folded stacks (the
//! `flamegraph.pl` / `inferno` input format) and a self-contained SVG.
//!
//! The SVG is the classic layout: one rectangle per call path, the root at
//! the bottom, width in proportion to the samples, callers below callees,
//! siblings sorted by name; hovering shows the function, its samples and
//! its share. It is static (no script), so it opens in any browser or image
//! viewer. For the interactive version (zoom, search), feed
//! [`folded`] output to `inferno-flamegraph` or `flamegraph.pl`.
//!
//! Written here rather than through the `inferno` crate: inferno's licence
//! (CDDL-1.0) is not in this workspace's `deny.toml` allow list, and the
//! layout is a tree walk of ~150 lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::pprof::{PprofProfile, PprofSample};

/// What [`svg`] and [`folded`] draw.
#[derive(Clone, Debug)]
pub struct FlameOptions {
    /// The title at the top of the SVG.
    pub title: String,
    /// Image width in pixels (at least 200), default 1200.
    pub width: u32,
    /// The sample value drawn, by type (`"cpu"`, `"samples"`); default:
    /// the last sample type, pprof's default.
    pub value: Option<String>,
    /// Only samples with this label value (`("spawn_site", "src/main.rs:42")`:
    /// the value must contain it), like `go tool pprof -tagfocus`.
    pub tag_focus: Option<(String, String)>,
    /// Puts each sample's value of this label (e.g. `spawn_site`) as the
    /// root frame, so the graph splits by it first.
    pub group_by: Option<String>,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: "CPU flame graph".into(),
            width: 1200,
            value: None,
            tag_focus: None,
            group_by: None,
        }
    }
}

/// Why a flame graph could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlameError(String);

impl std::fmt::Display for FlameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlameError {}

fn keep(opts: &FlameOptions, s: &PprofSample) -> bool {
    opts.tag_focus
        .as_ref()
        .is_none_or(|(k, v)| s.label(k).is_some_and(|x| x.contains(v.as_str())))
}

/// The profile's stacks as folded lines: `(root;…;leaf, value)`, merged
/// and sorted, filtered and grouped per `opts`.
pub fn folded(p: &PprofProfile, opts: &FlameOptions) -> Result<Vec<(String, i64)>, FlameError> {
    let index = match &opts.value {
        Some(ty) => p.value_index(ty).ok_or_else(|| {
            let types: Vec<&str> = p.sample_types.iter().map(|(t, _)| t.as_str()).collect();
            FlameError(format!("no sample type {ty:?} (the profile has {types:?})"))
        })?,
        None if p.sample_types.is_empty() => {
            return Err(FlameError("the profile has no sample types".into()));
        }
        None => p.sample_types.len() - 1,
    };
    let mut merged: BTreeMap<String, i64> = BTreeMap::new();
    for s in p.samples.iter().filter(|s| keep(opts, s)) {
        let value = s.values.get(index).copied().unwrap_or(0);
        if value <= 0 {
            continue;
        }
        let mut names = p.function_names(s);
        if let Some(label) = &opts.group_by {
            names.push(format!("{label}={}", s.label(label).unwrap_or("(none)")));
        }
        // Innermost first in pprof; folded lines go root first. `;` separates frames.
        let line = names
            .iter()
            .rev()
            .map(|n| n.replace(';', ":"))
            .collect::<Vec<_>>()
            .join(";");
        *merged.entry(line).or_insert(0) += value;
    }
    Ok(merged.into_iter().collect())
}

#[derive(Default)]
struct Node {
    value: i64,
    children: BTreeMap<String, Node>,
}

const ROW: f64 = 16.0;
const FONT: f64 = 12.0;
const PAD_TOP: f64 = 36.0;
const PAD_SIDE: f64 = 10.0;

/// A flame graph of `p` as a self-contained SVG document.
///
/// ```
/// use taskline_profile::flamegraph::{svg, FlameOptions};
/// use taskline_profile::pprof::PprofProfile;
/// let empty = PprofProfile { sample_types: vec![("cpu".into(), "nanoseconds".into())], ..Default::default() };
/// assert!(svg(&empty, &FlameOptions::default()).unwrap().contains("no samples"));
/// ```
pub fn svg(p: &PprofProfile, opts: &FlameOptions) -> Result<String, FlameError> {
    if opts.width < 200 {
        return Err(FlameError(format!(
            "width {} is below 200 pixels",
            opts.width
        )));
    }
    let lines = folded(p, opts)?;
    let mut root = Node::default();
    let mut depth = 0usize;
    for (line, value) in &lines {
        root.value += value;
        let mut node = &mut root;
        let mut d = 0;
        for frame in line.split(';') {
            node = node.children.entry(frame.to_owned()).or_default();
            node.value += value;
            d += 1;
        }
        depth = depth.max(d);
    }
    let width = f64::from(opts.width);
    let height = PAD_TOP + ROW * (depth as f64 + 1.0) + 2.0 * PAD_SIDE;
    let unit = p
        .sample_types
        .get(match &opts.value {
            Some(ty) => p.value_index(ty).unwrap_or(0),
            None => p.sample_types.len().saturating_sub(1),
        })
        .map_or("", |(_, u)| u.as_str());
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">
<style>text {{ font-family: Verdana, sans-serif; font-size: {FONT}px; fill: #000; }} rect:hover {{ stroke: #000; stroke-width: 0.5; }}</style>
<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f0"/>
<text x="{cx}" y="24" text-anchor="middle" style="font-size: 17px">{title}</text>
"##,
        cx = width / 2.0,
        title = escape(&opts.title),
    );
    if root.value == 0 {
        let _ = writeln!(
            out,
            r#"<text x="{PAD_SIDE}" y="{y}">no samples</text>"#,
            y = PAD_TOP + ROW
        );
    } else {
        let scale = (width - 2.0 * PAD_SIDE) / root.value as f64;
        let base = height - PAD_SIDE - ROW;
        let total = root.value;
        draw(&mut out, "all", &root, PAD_SIDE, base, scale, total, unit);
    }
    out.push_str("</svg>\n");
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn draw(
    out: &mut String,
    name: &str,
    node: &Node,
    x: f64,
    y: f64,
    scale: f64,
    total: i64,
    unit: &str,
) {
    let w = node.value as f64 * scale;
    if w < 0.1 {
        return;
    }
    let share = 100.0 * node.value as f64 / total as f64;
    let (r, g, b) = color(name);
    let _ = write!(
        out,
        r#"<g><title>{title} ({value} {unit}, {share:.2}%)</title><rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h}" fill="rgb({r},{g},{b})" rx="2"/>"#,
        title = escape(name),
        value = node.value,
        h = ROW - 1.0,
    );
    let fits = ((w - 6.0) / (FONT * 0.59)).floor();
    if fits >= 3.0 {
        let fits = fits as usize;
        let label: String = if name.chars().count() <= fits {
            name.to_owned()
        } else {
            name.chars().take(fits - 2).chain("..".chars()).collect()
        };
        let _ = write!(
            out,
            r#"<text x="{tx:.2}" y="{ty:.2}">{}</text>"#,
            escape(&label),
            tx = x + 3.0,
            ty = y + ROW - 4.5,
        );
    }
    out.push_str("</g>\n");
    let mut cx = x;
    for (child, n) in &node.children {
        draw(out, child, n, cx, y - ROW, scale, total, unit);
        cx += n.value as f64 * scale;
    }
}

/// flamegraph.pl's "hot" palette, seeded by the name (stable colours).
fn color(name: &str) -> (u8, u8, u8) {
    let mut h: u32 = 2_166_136_261;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    let f = |shift: u32| f64::from((h >> shift) & 0xff) / 255.0;
    (
        (205.0 + 50.0 * f(0)) as u8,
        (230.0 * f(8)) as u8,
        (55.0 * f(16)) as u8,
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::pprof::{PprofLine, PprofLocation};

    fn profile() -> PprofProfile {
        let loc = |id: u64, f: &str| {
            (
                id,
                PprofLocation {
                    address: id * 16,
                    lines: vec![PprofLine {
                        function: f.into(),
                        file: "x.rs".into(),
                        line: 1,
                    }],
                },
            )
        };
        let locations: HashMap<u64, PprofLocation> = [
            loc(1, "main"),
            loc(2, "hot<T>"),
            loc(3, "cold"),
            loc(4, "a;b"),
        ]
        .into_iter()
        .collect();
        let sample = |ids: &[u64], cpu: i64, site: &str| PprofSample {
            location_ids: ids.to_vec(),
            values: vec![1, cpu],
            labels: vec![("spawn_site".into(), site.into())],
        };
        PprofProfile {
            sample_types: vec![
                ("samples".into(), "count".into()),
                ("cpu".into(), "nanoseconds".into()),
            ],
            samples: vec![
                sample(&[2, 1], 70, "src/a.rs:1:1"),
                sample(&[2, 1], 5, "src/a.rs:1:1"),
                sample(&[3, 1], 20, "src/b.rs:2:2"),
                sample(&[4], 5, "src/b.rs:2:2"),
            ],
            locations,
            ..PprofProfile::default()
        }
    }

    #[test]
    fn folded_merges_filters_and_groups() {
        let p = profile();
        let all = folded(&p, &FlameOptions::default()).unwrap();
        assert_eq!(
            all,
            vec![
                ("a:b".into(), 5),
                ("main;cold".into(), 20),
                ("main;hot<T>".into(), 75)
            ]
        );
        let counts = FlameOptions {
            value: Some("samples".into()),
            ..FlameOptions::default()
        };
        assert_eq!(folded(&p, &counts).unwrap()[2], ("main;hot<T>".into(), 2));
        let focus = FlameOptions {
            tag_focus: Some(("spawn_site".into(), "src/b.rs".into())),
            group_by: Some("spawn_site".into()),
            ..FlameOptions::default()
        };
        assert_eq!(
            folded(&p, &focus).unwrap(),
            vec![
                ("spawn_site=src/b.rs:2:2;a:b".into(), 5),
                ("spawn_site=src/b.rs:2:2;main;cold".into(), 20)
            ]
        );
        let bad = FlameOptions {
            value: Some("alloc".into()),
            ..FlameOptions::default()
        };
        assert!(
            folded(&p, &bad)
                .unwrap_err()
                .to_string()
                .contains("no sample type \"alloc\"")
        );
    }

    #[test]
    fn svg_widths_follow_the_samples() {
        let svg = svg(&profile(), &FlameOptions::default()).unwrap();
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains("<title>hot&lt;T&gt; (75 nanoseconds, 75.00%)</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>all (100 nanoseconds, 100.00%)</title>"));
        // 1180 px for 100: hot is 885 px wide, cold 236.
        assert!(svg.contains(r#"width="885.00""#), "{svg}");
        assert!(svg.contains(r#"width="236.00""#), "{svg}");
        let narrow = FlameOptions {
            width: 100,
            ..FlameOptions::default()
        };
        assert!(super::svg(&profile(), &narrow).is_err());
    }
}
