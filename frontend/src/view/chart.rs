//! A sparkline's geometry: the polyline of a series and the y of its limit, in an SVG box.
//! The newest point is at the right edge; a minute of history fills the width.

/// What a sparkline draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// `x,y x,y …` for `<polyline points>`; empty without values.
    pub points: String,
    /// Where the limit's line goes, if there is one.
    pub limit_y: Option<f64>,
}

/// Lays out `values` (oldest first) in a `width`×`height` box that holds `capacity` points.
/// The scale's top is 10% above the larger of the highest value and the limit, so the line
/// reaching the limit is seen doing so.
pub fn chart(
    values: &[f64],
    limit: Option<f64>,
    capacity: usize,
    width: f64,
    height: f64,
) -> Chart {
    let highest = values.iter().copied().fold(0.0_f64, f64::max);
    let top = highest.max(limit.unwrap_or(0.0)) * 1.1;
    let top = if top > 0.0 { top } else { 1.0 };
    let y = |v: f64| round(height - (v.clamp(0.0, top) / top) * height);
    let slots = capacity.max(values.len()).max(2) - 1;
    let first = capacity.max(values.len()) - values.len();
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = round(width * (first + i) as f64 / slots as f64);
            format!("{x},{}", y(*v))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Chart {
        points,
        limit_y: limit.map(y),
    }
}

/// Two decimals are plenty for a few hundred pixels (and keep the DOM short).
fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
