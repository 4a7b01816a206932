//! Numbers of the view as text.

use isolab_shared::protocol::view::IdRange;

/// Bytes in binary units: `512 B`, `1.5 KiB`, `32.0 MiB`, `2.00 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = if value < 10.0 { 2 } else { 1 };
    format!("{} {}", fixed(value, decimals), UNITS[unit])
}

/// CPUs with two decimals (`0.50 CPU`).
pub fn cpus(rate: f64) -> String {
    format!("{} CPU", fixed(rate, 2))
}

/// `value` with `decimals` (1 or 2) digits after the point, rounded; by integers, since
/// `{:.2}` pulls float formatting code into the page that nothing else needs.
fn fixed(value: f64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    let scaled = (value.max(0.0) * scale as f64).round() as u64;
    let width = decimals as usize;
    format!("{}.{:0width$}", scaled / scale, scaled % scale)
}

/// A namespace inode, short: its last five digits (the kernel numbers namespaces from
/// 4026531840 up, so the leading digits are the same for all of them).
pub fn short_inode(inode: u64) -> String {
    let text = inode.to_string();
    let cut = text.len().saturating_sub(5);
    if cut == 0 {
        text
    } else {
        format!("…{}", &text[cut..])
    }
}

/// A uid or gid map as `/proc/PID/uid_map` would put it, one range per entry:
/// `0 → 100000 (65536)`.
pub fn id_map(ranges: &[IdRange]) -> String {
    if ranges.is_empty() {
        return "none".to_string();
    }
    ranges
        .iter()
        .map(|r| format!("{} → {} ({})", r.inside, r.outside, r.count))
        .collect::<Vec<_>>()
        .join(", ")
}
