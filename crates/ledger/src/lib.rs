//! Pure payment logic: pricing, adjusted tokens and reservations (DESIGN §6).
//! No I/O here, so every rule can be unit- and property-tested.

mod pricing;

pub use pricing::{
    adjusted, Charge, RootParams, TokenClass, TokenCounts, COEFFICIENT_ONE, MULTIPLIER_ONE,
};
