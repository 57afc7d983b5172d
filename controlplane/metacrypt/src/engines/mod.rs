//! Engines mounted by name. The transit core lives here; the engine frame
//! (the `Engine` trait, mounts) wires it to storage and policy.

pub mod transit;
