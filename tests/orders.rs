//! The orders service through the real host (being written).
