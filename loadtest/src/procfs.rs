//! CPU time and peak memory of processes, read from /proc.

use anyhow::{Context, Result, bail};

/// Linux reports `utime`/`stime` in USER_HZ ticks, which is 100 on every
/// architecture Linux supports today (it is fixed in the ABI, unlike HZ).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of `pid` (all its threads), from `/proc/PID/stat`.
pub(crate) fn cpu_seconds(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&stat).with_context(|| format!("parsing {path}"))
}

fn parse_stat_cpu(stat: &str) -> Result<f64> {
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so
    // split after the last `)`. Fields after it start at field 3 (state);
    // utime is field 14 and stime field 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no `)` after the command name");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("too few fields");
    };
    let ticks = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(ticks as f64 / USER_HZ)
}

/// Peak resident set size (`VmHWM`) of `pid` in KiB.
pub(crate) fn peak_rss_kib(pid: &str) -> Result<u64> {
    status_kib(pid, "VmHWM")
}

/// Resident set size now (`VmRSS`) of `pid` in KiB.
pub(crate) fn rss_kib(pid: &str) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

fn status_kib(pid: &str, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_kib(&status, field).with_context(|| format!("no {field} in {path}"))
}

fn parse_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds summed over `pids`.
pub(crate) fn cpu_total(pids: &[String]) -> Result<f64> {
    pids.iter().map(|p| cpu_seconds(p)).sum()
}

/// Peak RSS summed over `pids`, in KiB.
pub(crate) fn peak_rss_total(pids: &[String]) -> Result<u64> {
    pids.iter().map(|p| peak_rss_kib(p)).sum()
}

/// RSS now, summed over `pids`, in KiB.
pub(crate) fn rss_total(pids: &[String]) -> Result<u64> {
    pids.iter().map(|p| rss_kib(p)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_comm() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_cpu(stat).expect("parse"), 3.25);
    }

    #[test]
    fn own_process() {
        let me = std::process::id().to_string();
        assert!(cpu_seconds(&me).expect("self") >= 0.0);
        assert!(peak_rss_kib(&me).expect("self") > 0);
        assert!(rss_kib(&me).expect("self") > 0);
        let status = "VmPeak:\t 10 kB\nVmHWM:\t    1234 kB\nVmRSS:\t  99 kB\n";
        assert_eq!(parse_kib(status, "VmHWM"), Some(1234));
        assert_eq!(parse_kib(status, "VmRSS"), Some(99));
        assert_eq!(parse_kib(status, "VmSwap"), None);
    }
}
