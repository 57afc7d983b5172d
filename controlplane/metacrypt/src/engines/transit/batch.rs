//! Vault's batch semantics: `batch_input` items run independently, in
//! order; each result echoes its `reference` and carries either the output
//! or an `error`. The status: any caller error → 400, else any internal
//! fault → 500, unless `partial_failure_response_code` (1–599) is set and
//! at least one item succeeded; all succeeded → 200.
//!
//! Invariant: more than [`MAX_BATCH`] items (or none) is refused before any
//! item runs.

use serde::Serialize;
use serde::ser::SerializeMap;

use super::error::TransitError;

pub const MAX_BATCH: usize = 1000;

/// Refuses an empty or oversized `batch_input` before anything runs.
pub fn check_len(n: usize) -> Result<(), TransitError> {
    if n == 0 {
        return Err(TransitError::invalid(
            "batch_input",
            "missing batch input to process",
        ));
    }
    if n > MAX_BATCH {
        return Err(TransitError::invalid(
            "batch_input",
            format!("at most {MAX_BATCH} items"),
        ));
    }
    Ok(())
}

/// One item's outcome.
#[derive(Debug)]
pub struct ItemResult<T> {
    pub reference: Option<String>,
    pub outcome: Result<T, TransitError>,
}

impl<T: Serialize> Serialize for ItemResult<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The output's fields, then `error`, then `reference` (always, as Vault).
        let mut m = s.serialize_map(None)?;
        match &self.outcome {
            Ok(v) => {
                let value = serde_json::to_value(v).map_err(serde::ser::Error::custom)?;
                if let serde_json::Value::Object(fields) = value {
                    for (k, v) in fields {
                        m.serialize_entry(&k, &v)?;
                    }
                }
            }
            Err(e) => m.serialize_entry("error", &e.to_string())?,
        }
        m.serialize_entry("reference", self.reference.as_deref().unwrap_or(""))?;
        m.end()
    }
}

/// Every item's outcome, in input order.
#[derive(Debug, Serialize)]
pub struct BatchResults<T> {
    pub batch_results: Vec<ItemResult<T>>,
}

impl<T> BatchResults<T> {
    /// Runs `op` on every item; `reference` reads an item's reference.
    pub fn run<I>(
        items: &[I],
        reference: impl Fn(&I) -> Option<String>,
        mut op: impl FnMut(&I) -> Result<T, TransitError>,
    ) -> Result<Self, TransitError> {
        check_len(items.len())?;
        Ok(Self {
            batch_results: items
                .iter()
                .map(|i| ItemResult {
                    reference: reference(i),
                    outcome: op(i),
                })
                .collect(),
        })
    }

    /// The HTTP status Vault answers this batch with.
    pub fn status(&self, partial_failure_response_code: Option<u16>) -> u16 {
        let user = self
            .batch_results
            .iter()
            .any(|r| matches!(&r.outcome, Err(e) if !e.is_internal()));
        let internal = self
            .batch_results
            .iter()
            .any(|r| matches!(&r.outcome, Err(e) if e.is_internal()));
        let success = self.batch_results.iter().any(|r| r.outcome.is_ok());
        if !user && !internal {
            return 200;
        }
        let code = if user { 400 } else { 500 };
        match partial_failure_response_code {
            Some(c) if success && (1..=599).contains(&c) => c,
            _ => code,
        }
    }

    pub fn all_ok(&self) -> bool {
        self.batch_results.iter().all(|r| r.outcome.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize)]
    struct Out {
        v: u32,
    }

    fn run(items: &[i32]) -> BatchResults<Out> {
        BatchResults::run(
            items,
            |i| Some(format!("r{i}")),
            |&i| match i {
                i if i >= 0 => Ok(Out { v: i as u32 }),
                -1 => Err(TransitError::invalid("plaintext", "not base64")),
                _ => Err(TransitError::internal("boom")),
            },
        )
        .unwrap()
    }

    #[test]
    fn results_are_in_order_with_references_and_errors() {
        let b = run(&[3, -1, 5]);
        let j = serde_json::to_value(&b).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"batch_results": [
                {"v": 3, "reference": "r3"},
                {"error": "plaintext: not base64", "reference": "r-1"},
                {"v": 5, "reference": "r5"},
            ]})
        );
        let internal = serde_json::to_value(run(&[-2])).unwrap();
        assert_eq!(internal["batch_results"][0]["error"], "internal error");
    }

    #[test]
    fn status_follows_vault() {
        assert_eq!(run(&[1, 2]).status(None), 200);
        assert_eq!(run(&[1, 2]).status(Some(207)), 200);
        assert_eq!(run(&[1, -1]).status(None), 400);
        assert_eq!(run(&[1, -1]).status(Some(207)), 207);
        assert_eq!(
            run(&[-1, -1]).status(Some(207)),
            400,
            "no success: the override does not apply"
        );
        assert_eq!(run(&[1, -2]).status(None), 500);
        assert_eq!(
            run(&[1, -2, -1]).status(None),
            400,
            "a caller error wins over an internal one"
        );
        assert_eq!(
            run(&[1, -1]).status(Some(0)),
            400,
            "an invalid override is ignored"
        );
        assert_eq!(run(&[1, -1]).status(Some(600)), 400);
    }

    #[test]
    fn size_is_bounded_before_anything_runs() {
        let mut ran = 0;
        let big = vec![0; MAX_BATCH + 1];
        let e = BatchResults::<Out>::run(
            &big,
            |_| None,
            |_| {
                ran += 1;
                Ok(Out { v: 0 })
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "batch_input: at most 1000 items");
        assert_eq!(ran, 0);
        assert!(BatchResults::<Out>::run(&[] as &[i32], |_| None, |_| Ok(Out { v: 0 })).is_err());
        assert_eq!(
            BatchResults::run(&vec![1; MAX_BATCH], |_| None, |&i| Ok(Out { v: i }))
                .unwrap()
                .batch_results
                .len(),
            MAX_BATCH
        );
    }
}
