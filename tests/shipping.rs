//! The shipping service through the real host (being written).
