//! The payment service through the real host (being written).
