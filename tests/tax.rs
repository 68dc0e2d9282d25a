//! The tax service through the real host (being written).
