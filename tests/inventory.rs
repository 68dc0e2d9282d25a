//! The inventory service through the real host (being written).
