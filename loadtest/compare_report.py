#!/usr/bin/env python3
"""Helpers for loadtest/compare: run h2load with CPU accounting, merge fields
into result lines, and render the Markdown table.

  compare_report.py h2load --label L --scenario S --cpu N [--pid P]... -- H2LOAD ARGS
  compare_report.py dnsperf --label L --scenario S --cpu N [--pid P]... -- DNSPERF ARGS
  compare_report.py merge FILE key=value...
  compare_report.py line FILE
  compare_report.py noisy FILE PCT DURATION
  compare_report.py less-noisy FILE_A FILE_B
  compare_report.py table RESULTS.jsonl
"""

import json
import re
import resource
import statistics
import subprocess
import sys

USER_HZ = 100.0


def ticks(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def hwm_kib(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def to_us(value, unit):
    return float(value) * {"us": 1.0, "ms": 1000.0, "s": 1e6}[unit]


def parse_flags(argv):
    label = scenario = cpu = None
    pids = []
    while argv and argv[0] != "--":
        flag, value = argv[0], argv[1]
        argv = argv[2:]
        if flag == "--label":
            label = value
        elif flag == "--scenario":
            scenario = value
        elif flag == "--cpu":
            cpu = value
        elif flag == "--pid":
            pids.append(value)
        else:
            sys.exit(f"unknown flag {flag}")
    return label, scenario, cpu, pids, argv[1:]


def run_client(cpu, pids, argv):
    """Runs a client pinned to `cpu`; returns its output, the servers' CPU
    seconds over the run and the client's own CPU seconds."""
    before = ticks(pids)
    proc = subprocess.run(["taskset", "-c", cpu, *argv], capture_output=True, text=True)
    after = ticks(pids)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write(proc.stdout + proc.stderr)
    return proc.stdout, (after - before) / USER_HZ, usage.ru_utime + usage.ru_stime


def server_fields(pids, cpu_s, done, elapsed):
    if not pids:
        return {}
    return {
        "server_pids": [int(p) for p in pids],
        "server_cpu_s": round(cpu_s, 2),
        "server_cpu_us_per_req": round(cpu_s * 1e6 / done, 2) if done else None,
        "server_cpu_pct": round(cpu_s / elapsed * 100, 1),
        "server_peak_rss_kib": hwm_kib(pids),
    }


def cmd_dnsperf(argv):
    label, scenario, cpu, pids, args = parse_flags(argv)
    stdout, cpu_s, client_cpu = run_client(cpu, pids, ["dnsperf", *args])
    out = {"scenario": scenario, "target": label, "client": "dnsperf"}
    done = re.search(r"Queries completed:\s+(\d+)", stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", stdout)
    qps = re.search(r"Queries per second:\s+([\d.]+)", stdout)
    run = re.search(r"Run time \(s\):\s+([\d.]+)", stdout)
    if not (done and qps and run):
        out["failed"] = True
        print(json.dumps(out))
        return
    n, elapsed = int(done.group(1)), float(run.group(1))
    out.update(
        requests=n,
        errors_total=int(lost.group(1)) if lost else 0,
        throughput=float(qps.group(1)),
        rps=float(qps.group(1)),
        unit="req/s",
        elapsed_s=elapsed,
        client_cpu_s=round(client_cpu, 2),
    )
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", stdout)
    if lat:
        out["latency_us"] = {"mean": round(float(lat.group(1)) * 1e6, 1)}
    codes = re.search(r"Response codes:\s+(.+)", stdout)
    if codes:
        out["rcodes"] = {
            m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+) (\d+) \(", codes.group(1))
        }
    out.update(server_fields(pids, cpu_s, n, elapsed))
    print(json.dumps(out))


def cmd_h2load(argv):
    label, scenario, cpu, pids, args = parse_flags(argv)
    stdout, cpu_s, client_cpu = run_client(cpu, pids, ["h2load", *args])
    out = {"scenario": scenario, "target": label, "client": "h2load"}
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", stdout)
    r = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout",
        stdout,
    )
    if not m or not r:
        out["failed"] = True
        print(json.dumps(out))
        return
    elapsed, rps = float(m.group(1)), float(m.group(2))
    succeeded = int(r.group(4))
    out.update(
        requests=succeeded,
        errors_total=int(r.group(5)) + int(r.group(6)) + int(r.group(7)),
        throughput=rps,
        rps=rps,
        unit="req/s",
        elapsed_s=elapsed,
        client_cpu_s=round(client_cpu, 2),
    )
    lat = re.search(
        r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)",
        stdout,
    )
    if lat:
        out["latency_us"] = {
            "min": to_us(lat.group(1), lat.group(2)),
            "max": to_us(lat.group(3), lat.group(4)),
            "mean": to_us(lat.group(5), lat.group(6)),
        }
    tls = [
        re.search(rf"^{k}: (.+)$", stdout, re.M)
        for k in ("TLS Protocol", "Cipher", "Server Temp Key", "Application protocol")
    ]
    out["tls"] = " ".join(t.group(1).strip() for t in tls if t)
    out.update(server_fields(pids, cpu_s, succeeded, elapsed))
    print(json.dumps(out))


def cmd_merge(path, pairs):
    with open(path) as f:
        d = json.loads(f.readline())
    for kv in pairs:
        k, v = kv.split("=", 1)
        try:
            d[k] = float(v) if any(c in v for c in ".e") else int(v)
        except ValueError:
            d[k] = v
    client = d.get("client_cpu_s") or 0
    server = d.get("server_cpu_s") or 0
    if "machine_busy_s" in d:
        # CPU used on the machine by anything but the router, the load
        # generator and the backend: interference from other work.
        d["other_cpu_s"] = round(
            d["machine_busy_s"] - server - client - d.get("backend_cpu_s", 0), 2
        )
    print(json.dumps(d))


def cmd_line(path):
    with open(path) as f:
        d = json.loads(f.readline())
    if d.get("failed"):
        print(f"  round {d.get('round')} {d['scenario']:10} {d['target']:14} FAILED")
        return
    per = d.get("server_cpu_us_per_mib") or d.get("server_cpu_us_per_req")
    unit = "µs/MiB" if "server_cpu_us_per_mib" in d else "µs/req"
    per_s = f"{per:8.1f} {unit}" if per is not None else "       -"
    p99 = d.get("latency_us", {}).get("p99")
    print(
        f"  round {d.get('round')} {d['scenario']:10} {d['target']:14} "
        f"{d['throughput'] if d.get('throughput') is not None else float('nan'):10.1f} {d['unit']:6} router {per_s}  cpu {d.get('server_cpu_pct', '-')}%  "
        f"p99 {p99 if p99 is not None else '-'} µs  errors {d.get('errors_total', 0)}  "
        f"other cpu {d.get('other_cpu_s', '-')} s"
    )


def fmt(x, digits=0):
    if x is None:
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def cmd_table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    scenarios, routers = [], []
    for r in rows:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
        if r["target"] not in routers:
            routers.append(r["target"])
    def reference(scen):
        return "mcns" if scen.startswith(("dns", "dnsperf")) else "mcproxy"

    def med(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    def summary(scen, router):
        runs = [
            r
            for r in rows
            if r["scenario"] == scen and r["target"] == router and not r.get("failed")
        ]
        failed = sum(
            1 for r in rows if r["scenario"] == scen and r["target"] == router and r.get("failed")
        )
        if not runs:
            return None
        per_key = "server_cpu_us_per_mib" if "server_cpu_us_per_mib" in runs[0] else "server_cpu_us_per_req"
        tput = [r["throughput"] for r in runs if r.get("throughput") is not None]
        if not tput:
            return None
        return {
            "n": len(runs),
            "failed": failed,
            "unit": runs[0]["unit"],
            "per_unit": "µs/MiB" if per_key.endswith("mib") else "µs/req",
            "tput": med(tput),
            "min": min(tput),
            "max": max(tput),
            "cpu": med([r.get(per_key) for r in runs]),
            "cpu_min": min((r.get(per_key) for r in runs if r.get(per_key) is not None), default=None),
            "cpu_max": max((r.get(per_key) for r in runs if r.get(per_key) is not None), default=None),
            "pct": med([r.get("server_cpu_pct") for r in runs]),
            "p99": med([r.get("latency_us", {}).get("p99") for r in runs]),
            "rss": max((r.get("server_peak_rss_kib") or 0) for r in runs) / 1024 or None,
            "errors": sum(r.get("errors_total", 0) for r in runs),
            "other": med([r.get("other_cpu_s") for r in runs]),
            "tls": runs[0].get("tls", ""),
            "noisy": sum(1 for r in runs if r.get("noisy")),
        }

    print(
        "| scenario | server | throughput, median (min–max) | server CPU per unit, median (min–max) "
        "| server CPU % | p99 µs | peak RSS MiB | errors | throughput ÷ ours | CPU/unit ÷ ours | other CPU s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    tls_seen = {}
    for scen in scenarios:
        ref = reference(scen)
        base = summary(scen, ref)
        for router in routers:
            if not any(r["scenario"] == scen and r["target"] == router for r in rows):
                continue
            s = summary(scen, router)
            if s is None:
                print(f"| {scen} | {router} | failed | | | | | | | | |")
                continue
            if s["tls"]:
                tls_seen.setdefault(s["tls"], set()).add(scen)
            tput_ratio = cpu_ratio = "–"
            if base and router != ref:
                tput_ratio = f"{s['tput'] / base['tput']:.2f}×" if base["tput"] else "–"
                if s["cpu"] is not None and base["cpu"]:
                    cpu_ratio = f"{s['cpu'] / base['cpu']:.2f}×"
            elif router == ref:
                tput_ratio = cpu_ratio = "1.00×"
            if base is None:
                tput_ratio = cpu_ratio = "–"
            digits = 1 if s["unit"] == "MiB/s" else 0
            cpu = (
                f"{fmt(s['cpu'], 1)} {s['per_unit']} ({fmt(s['cpu_min'], 1)}–{fmt(s['cpu_max'], 1)})"
                if s["cpu"] is not None
                else "–"
            )
            errors = f"{s['errors']}" + (f" ({s['failed']} runs failed)" if s["failed"] else "")
            if s["noisy"]:
                errors += f" ({s['noisy']} noisy)"
            print(
                f"| {scen} | {router} | {fmt(s['tput'], digits)} {s['unit']} "
                f"({fmt(s['min'], digits)}–{fmt(s['max'], digits)}) | {cpu} | {fmt(s['pct'], 0)} | "
                f"{fmt(s['p99'])} | {fmt(s['rss'], 1)} | {errors} | {tput_ratio} | {cpu_ratio} | "
                f"{fmt(s['other'], 2)} |"
            )
    print()
    print(
        "Ours = MC-Proxy (`mcproxy`) for the L4 scenarios, MCNS (`mcns`, issue 5) for DNS. "
        "A CPU/unit ratio above 1 means the peer needs more CPU than ours for the same work."
    )
    if any(r.get("unit") == "KiB/conn" for r in rows):
        print(
            "idle-*: the throughput column is the router's RSS growth per idle connection "
            "(KiB/conn, lower is better); CPU per unit is CPU per connection opened."
        )
    print(f"Rounds per cell: {max((summary(s, r) or {'n': 0})['n'] for s in scenarios for r in routers)}.")
    for tls, scens in tls_seen.items():
        print(f"Negotiated ({', '.join(sorted(scens))}): {tls}")


def cmd_noisy(path, pct, duration):
    """Exit 0 when other processes used more than `pct` % of one CPU during the run."""
    with open(path) as f:
        d = json.loads(f.readline())
    sys.exit(0 if (d.get("other_cpu_s") or 0) > float(pct) / 100 * float(duration) else 1)


def cmd_less_noisy(a, b):
    """Exit 0 when run A was less disturbed by other work than run B."""
    other = [json.loads(open(p).readline()).get("other_cpu_s") or 0 for p in (a, b)]
    sys.exit(0 if other[0] < other[1] else 1)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "noisy":
        cmd_noisy(*args)
    elif cmd == "less-noisy":
        cmd_less_noisy(*args)
    elif cmd == "dnsperf":
        cmd_dnsperf(args)
    elif cmd == "h2load":
        cmd_h2load(args)
    elif cmd == "merge":
        cmd_merge(args[0], args[1:])
    elif cmd == "line":
        cmd_line(args[0])
    elif cmd == "table":
        cmd_table(args[0])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
