//! MCIAS security regression suite: one test per item of the adversarial
//! review (issue 12), each performing the attack on the wire against a real
//! `mcd controlplane` and asserting the refusal.

mod sessions;
mod web;
