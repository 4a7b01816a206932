//! The sparklines' data: a fixed-size ring of the latest points, one a second.

use isolab_shared::protocol::view::CgroupView;

/// Points kept per series: a minute at one a second.
pub const HISTORY_POINTS: usize = 60;

/// The last `capacity` values pushed, oldest first. (A `Vec` shifted by one on each push
/// when full: for 60 points that costs nothing, and keeps `VecDeque` out of the page.)
#[derive(Debug, Clone, PartialEq)]
pub struct Ring<T> {
    items: Vec<T>,
    capacity: usize,
}

impl<T: Copy> Ring<T> {
    pub fn new(capacity: usize) -> Ring<T> {
        Ring {
            items: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Adds a value, dropping the oldest when full.
    pub fn push(&mut self, value: T) {
        if self.items.len() == self.capacity {
            self.items.remove(0);
        }
        self.items.push(value);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The newest value.
    pub fn last(&self) -> Option<T> {
        self.items.last().copied()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.items.iter().copied()
    }
}

impl Ring<f64> {
    /// The values to draw, oldest first.
    pub fn points(&self) -> Vec<f64> {
        self.iter().collect()
    }
}

impl Ring<u64> {
    /// The values as numbers to draw, oldest first (`u64` is not `Into<f64>`).
    pub fn points(&self) -> Vec<f64> {
        // Precision: memory in bytes stays exact far beyond any container's limit (2^53).
        self.iter().map(|v| v as f64).collect()
    }
}

/// A container's cgroup numbers over the last minute.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// `memory_current`, bytes.
    pub memory: Ring<u64>,
    /// `cpu_rate`, CPUs.
    pub cpu: Ring<f64>,
    /// `pids_current`.
    pub pids: Ring<u64>,
}

impl Default for History {
    fn default() -> History {
        History {
            memory: Ring::new(HISTORY_POINTS),
            cpu: Ring::new(HISTORY_POINTS),
            pids: Ring::new(HISTORY_POINTS),
        }
    }
}

impl History {
    /// One point of each series.
    pub fn push(&mut self, cgroup: &CgroupView) {
        self.memory.push(cgroup.memory_current);
        self.cpu.push(cgroup.cpu_rate);
        self.pids.push(cgroup.pids_current);
    }
}
