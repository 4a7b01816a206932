//! A namespace's colour in the matrix: a hue from its inode, so the same namespace has the
//! same colour in every column it appears in (a shared cell is visibly shared), and two
//! different ones in a row never look alike.

/// Hues closer than this look alike; a row's namespaces are kept at least this far apart
/// when there is room.
const MIN_GAP: u16 = 24;

/// Steps a hue moves by to get out of another's way: coprime with 360, so it visits every
/// hue before coming back.
const STEP: u16 = 47;

/// A stable hue (0..360) for an inode: splitmix64's finaliser, so neighbouring inodes (the
/// kernel numbers namespaces in sequence) get far-apart hues.
pub fn hue(inode: u64) -> u16 {
    let mut z = inode.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % 360) as u16
}

/// The distance between two hues on the colour wheel.
pub fn distance(a: u16, b: u16) -> u16 {
    let d = a.abs_diff(b) % 360;
    d.min(360 - d)
}

/// The hues of one row's namespaces, as `(inode, hue)` by increasing inode: each its inode's
/// [`hue`], unless that is within [`MIN_GAP`] of a hue already given in the row (to a smaller
/// inode), in which case it moves on by [`STEP`] until it is not (with less room, a smaller
/// gap will do). Equal inodes get one hue; the same inodes in any order get the same hues.
pub fn row_hues(inodes: impl IntoIterator<Item = u64>) -> Vec<(u64, u16)> {
    let mut left: Vec<u64> = inodes.into_iter().collect();
    let mut hues: Vec<(u64, u16)> = Vec::with_capacity(left.len());
    // Smallest first, by selection (a row has at most a handful: no sort code in the page).
    while let Some(inode) = left.iter().copied().min() {
        left.retain(|i| *i != inode);
        let base = hue(inode);
        let free = |gap: u16| {
            (0..360u32)
                .map(|k| ((u32::from(base) + k * u32::from(STEP)) % 360) as u16)
                .find(|h| hues.iter().all(|(_, t)| distance(*h, *t) >= gap))
        };
        let chosen = [MIN_GAP, MIN_GAP / 2, 1]
            .into_iter()
            .find_map(free)
            .unwrap_or(base);
        hues.push((inode, chosen));
    }
    hues
}

/// The hue [`row_hues`] gave `inode`.
pub fn hue_in(hues: &[(u64, u16)], inode: u64) -> u16 {
    hues.iter()
        .find(|(i, _)| *i == inode)
        .map_or_else(|| hue(inode), |(_, h)| *h)
}

/// The cell's background for a hue.
pub fn css(hue: u16) -> String {
    format!("hsl({hue}, 55%, 30%)")
}
