//! OpenMetrics → Prometheus text format 0.0.4, for scrapers and tools that
//! do not ask for OpenMetrics (`promtool check metrics`, curl, older agents).
//!
//! Invariant: every sample line of the input is kept (minus its exemplar),
//! and every family's `# HELP`/`# TYPE` names the samples it heads: a
//! counter family `x` becomes `x_total` (OpenMetrics names the family without
//! the suffix, 0.0.4 with it); `info` and `stateset` become gauges, `unknown`
//! becomes `untyped`; `_created` samples, `# UNIT` and `# EOF` are dropped
//! (0.0.4 has no place for them).

/// The 0.0.4 rendering of an OpenMetrics exposition.
pub(crate) fn from_openmetrics(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut help: Option<&str> = None;
    // The current family's name and whether `<name>_created` samples are to be dropped.
    let mut family: Option<(&str, bool)> = None;
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (suffix, kind) = match kind {
                "counter" if !name.ends_with("_total") => ("_total", "counter"),
                "info" if !name.ends_with("_info") => ("_info", "gauge"),
                "info" | "stateset" => ("", "gauge"),
                "gaugehistogram" => ("", "histogram"),
                "unknown" => ("", "untyped"),
                other => ("", other),
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            family = Some((name, matches!(kind, "counter" | "histogram" | "summary")));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            // `# UNIT`, `# EOF` and a HELP without TYPE have no 0.0.4 form.
            continue;
        }
        let metric = line.split(['{', ' ']).next().unwrap_or("");
        if let Some((name, has_created)) = family
            && has_created
            && metric.strip_prefix(name) == Some("_created")
        {
            continue;
        }
        // An exemplar follows ` # ` after the value; label values are quoted,
        // so look for it only after the label set closes.
        let body_from = labels_end(line);
        let sample = match line[body_from..].find(" # ") {
            Some(i) => &line[..body_from + i],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

/// The byte offset just past a sample's label set (0 without one), skipping
/// quoted label values with their `\"` escapes.
fn labels_end(line: &str) -> usize {
    let Some(open) = line
        .find(['{', ' '])
        .filter(|&i| line[i..].starts_with('{'))
    else {
        return 0;
    };
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return open + i + 1,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::from_openmetrics;

    #[test]
    fn counters_are_named_with_their_total_suffix_and_eof_goes() {
        let om = "# HELP mc_requests Requests.\n# TYPE mc_requests counter\n\
                  mc_requests_total{route=\"/a # b}\\\" # {\"} 3\nmc_requests_created 1.5e9\n\
                  # HELP mc_up Up.\n# TYPE mc_up gauge\n# UNIT mc_up seconds\nmc_up 1\n# EOF\n";
        assert_eq!(
            from_openmetrics(om),
            "# HELP mc_requests_total Requests.\n# TYPE mc_requests_total counter\n\
             mc_requests_total{route=\"/a # b}\\\" # {\"} 3\n\
             # HELP mc_up Up.\n# TYPE mc_up gauge\nmc_up 1\n"
        );
    }

    #[test]
    fn exemplars_are_dropped_and_other_types_mapped() {
        let om = "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2 # {trace=\"x\"} 0.5\n\
                  h_count 2\nh_sum 1\n# TYPE i info\ni_info{v=\"1\"} 1\n# TYPE u unknown\nu 7\n";
        assert_eq!(
            from_openmetrics(om),
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\nh_sum 1\n\
             # TYPE i_info gauge\ni_info{v=\"1\"} 1\n# TYPE u untyped\nu 7\n"
        );
    }
}
