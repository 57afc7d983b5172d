//! MCIAS security regression suite: one test per item of the adversarial review.

mod web;
