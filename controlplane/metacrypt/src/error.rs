//! Metacrypt's errors are the kit's [`ApiError`]: one HTTP status with
//! `{"error": …}` and one gRPC code per outcome, as every service answers.
//! The sealed answer is `Unavailable("sealed")`: 503 `{"error":"sealed"}`,
//! gRPC `UNAVAILABLE` "sealed", and it never names a mount, key or path.

pub use mc_kit::api::ApiError as CryptError;

/// The one sealed answer.
pub fn sealed() -> CryptError {
    CryptError::Unavailable("sealed".to_owned())
}
