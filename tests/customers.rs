//! The customers service through the real host (being written).
