//! A sparkline: the last minute of one number as an inline SVG line, its limit (if any) as a
//! dashed line across, and the current value in words above. A plain function rather than a
//! component: it has no state, and each component type costs the page its own copy of Yew's
//! lifecycle code.

use yew::prelude::*;

use crate::view::chart::chart;

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 28.0;
/// Room above and below the box, so a line at 0 or at the top is not cut in half.
const MARGIN: f64 = 2.0;

/// One series.
pub struct Series<'a> {
    pub label: &'a str,
    /// For CSS and tests: `memory`, `cpu`, `pids`.
    pub kind: &'static str,
    /// Oldest first.
    pub values: Vec<f64>,
    pub limit: Option<f64>,
    /// Points a full chart holds.
    pub capacity: usize,
    /// The current value (and limit) in words.
    pub text: String,
}

pub fn sparkline(series: Series<'_>) -> Html {
    let drawn = chart(&series.values, series.limit, series.capacity, WIDTH, HEIGHT);
    let limit = drawn.limit_y.map(|y| {
        html! {
            <line class="limit" x1="0" x2={WIDTH.to_string()} y1={y.to_string()} y2={y.to_string()}
                vector-effect="non-scaling-stroke" />
        }
    });
    html! {
        <figure class={classes!("spark", series.kind)} data-series={series.kind}>
            <figcaption>
                <span class="spark-label">{ series.label }</span>
                <span class="spark-value">{ &series.text }</span>
            </figcaption>
            <svg viewBox={format!("0 {} {WIDTH} {}", -MARGIN, HEIGHT + 2.0 * MARGIN)}
                preserveAspectRatio="none" role="img"
                aria-label={format!("{}: {}", series.label, series.text)}>
                { limit }
                <polyline class="series" points={drawn.points} vector-effect="non-scaling-stroke" />
            </svg>
        </figure>
    }
}
