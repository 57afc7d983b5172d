//! Prometheus helpers every component shares: the row encoder that
//! components' scrape-time collectors use. The registry and `/metrics`
//! endpoint of a process live in `mc-shell`.

/// Labels of one row of a collected family: `(name, value)` pairs.
pub type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Encodes one counter or gauge family from rows summed at scrape time —
/// what components' [`prometheus_client::collector::Collector`]s use.
pub fn encode_family(
    enc: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: prometheus_client::metrics::MetricType,
    rows: &[(Labels<'_>, u64)],
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::NoLabelSet;
    use prometheus_client::metrics::MetricType;
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let mut f = m.encode_family(labels)?;
        match kind {
            MetricType::Counter => f.encode_counter::<NoLabelSet, _, u64>(v, None)?,
            _ => f.encode_gauge(&i64::try_from(*v).unwrap_or(i64::MAX))?,
        }
    }
    Ok(())
}
