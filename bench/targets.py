#!/usr/bin/env python3
"""targets.py - the result lines of bench/run.sh against issue 8's targets,
and of bench/round2.sh against issue 20's.

  targets.py RESULTS                       the target table (markdown)
  targets.py --round2 RESULTS IDLE OUT     issue 20's table; writes OUT/idle.dat, OUT/refs.gp
  targets.py --json LABEL FIG              `sockit bench --json` on stdin -> one result line
  targets.py --redis-csv LABEL FIG         redis-benchmark --csv on stdin -> one result line
  targets.py --openssl LABEL FIG           `openssl speed -bytes N sha256` on stdin -> MB/s line

Result lines are "LABEL FIGURE key=value ..." as the reference kit's run.sh
writes them; LABEL "X~bench" is server X measured with `sockit bench`.
"""
import json
import sys

KEEP = ("req_s", "mb_s", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "seconds",
        "bytes", "hash", "answered_ping", "established", "rss_per_conn_kb",
        "server_rss_growth_kb", "setup_s", "deliveries_s", "messages_s", "members", "senders")


def from_json(label, fig):
    d = json.loads(sys.stdin.read())
    kv = ["%s=%s" % (k, d[k]) for k in KEEP if k in d]
    if "answered_ping" in d:
        kv.append("answered=%s/%s" % (d["answered_ping"], d["conns"]))
        kv.append("rss_growth_kb=%s" % d.get("server_rss_growth_kb"))
    print("%s %s %s" % (label, fig, " ".join(kv)))


def from_redis(label, fig):
    for line in sys.stdin:
        f = [x.strip('"') for x in line.strip().split(",")]
        if f and f[0].upper().startswith("PING"):
            print("%s %s req_s=%s p50_us=%.0f p99_us=%.0f" % (
                label, fig, f[1], float(f[4]) * 1000, float(f[6]) * 1000))


def from_openssl(label, fig):
    for line in sys.stdin:
        if line.startswith("sha256"):
            kb_s = line.split()[-1].rstrip("k")  # "1141234.12k": 1000s of bytes per second
            print("%s %s mb_s=%.1f" % (label, fig, float(kb_s) / 1000))


def load(path):
    res = {}
    for line in open(path):
        t = line.split()
        if len(t) < 3 or line.startswith("#") or t[2] == "FAILED":
            continue
        kv = dict(x.split("=", 1) for x in t[2:] if "=" in x)
        res.setdefault((t[0], t[1]), []).append(kv)
    return res


def val(res, label, fig, key):
    xs = []
    for kv in res.get((label, fig), []):
        try:
            xs.append(float(kv[key].split("/")[0]))
        except (KeyError, ValueError):
            pass
    return sum(xs) / len(xs) if xs else None


def row(out, what, got, need, ok, note=""):
    if got is None:
        out.append("| %s | not measured | %s | - | %s |" % (what, need, note))
    else:
        out.append("| %s | %s | %s | %s | %s |" % (what, got, need, "met" if ok else "**not met**",
                                                    note))


def ratio_target(out, res, what, fig, key, ref, want, higher=True):
    s, r = val(res, "sockit", fig, key), val(res, ref, fig, key)
    if s is None or r is None or r == 0:
        row(out, what, None, "", False)
        return
    x = s / r
    row(out, what, "%.2fx %s (%.0f vs %.0f)" % (x, ref, s, r),
        "%s %.2fx" % (">=" if higher else "<=", want), x >= want if higher else x <= want)


def agreement(out, res):
    out.append("")
    out.append("| figure | server | loadgen | sockit bench | bench / loadgen |")
    out.append("| --- | --- | --- | --- | --- |")
    for (label, fig) in sorted(res):
        if label.endswith("~bench") or (label + "~bench", fig) not in res:
            continue
        key = ("req_s" if fig.startswith("echo") else
               "rss_per_conn_kb" if fig.startswith("conns") else "mb_s")
        a, b = val(res, label, fig, key), val(res, label + "~bench", fig, key)
        if a and b:
            flag = "" if abs(b / a - 1) <= 0.10 else " (**over 10 %**)"
            out.append("| %s | %s | %.6g %s | %.6g | %.2f%s |" % (fig, label, a, key, b, b / a, flag))


def table(path):
    res = load(path)
    out = ["| target | measured | needs | verdict | note |", "| --- | --- | --- | --- | --- |"]
    ratio_target(out, res, "1. echo c50 p16 vs epoll_echo", "echo64_c50_p16", "req_s", "epoll", 0.9)
    ratio_target(out, res, "1. echo c50 p16 vs redis", "echo64_c50_p16", "req_s", "redis", 1.0)
    ratio_target(out, res, "2. echo c50 p1 vs epoll_echo", "echo64_c50_p1", "req_s", "epoll", 0.9)
    ratio_target(out, res, "3. p50, c1 p1 pinned, vs epoll_echo", "echo64_c1_p1@cpu0", "p50_us",
                 "epoll", 1.3, higher=False)
    s, e = val(res, "sockit", "put_fastest", "mb_s"), val(res, "epoll", "put", "mb_s")
    row(out, "4. put, fastest hash, vs epoll_echo put",
        s and e and "%.2fx (%.0f vs %.0f MB/s)" % (s / e, s, e), ">= 0.90x", s and e and s / e >= 0.9)
    s, o = val(res, "sockit", "put_sha256", "mb_s"), val(res, "openssl", "put_sha256", "mb_s")
    row(out, "4. put sha256 vs openssl speed sha256",
        s and o and "%.2fx (%.0f vs %.0f MB/s)" % (s / o, s, o), ">= 0.85x", s and o and s / o >= 0.85)
    for h in ("fastest", "sha256"):
        g, p = val(res, "sockit~bench", "get_" + h, "mb_s"), val(res, "sockit~bench", "put_" + h, "mb_s")
        row(out, "4. get (%s) vs put (%s)" % (h, h), g and p and "%.0f vs %.0f MB/s" % (g, p),
            ">= put", g and p and g >= p)
    for fig in sorted({f for (l, f) in res if f.startswith("conns") and l.startswith("sockit")}):
        lab = "sockit" if ("sockit", fig) in res else "sockit~bench"
        kb, ans = val(res, lab, fig, "rss_per_conn_kb"), val(res, lab, fig, "answered_ping")
        row(out, "5. %s RSS per connection" % fig, kb is not None and "%.2f KiB, %d answered" % (kb, ans or 0),
            "<= 2 KiB, all answer", kb is not None and kb <= 2 and ans == float(fig[5:]))
    for fig in sorted({f for (l, f) in res if f.startswith("chat")}):
        d, p99 = val(res, "sockit~bench", fig, "deliveries_s"), val(res, "sockit~bench", fig, "p99_us")
        p50 = val(res, "sockit~bench", fig, "p50_us")
        row(out, "6. %s fan-out" % fig, d is not None and "%.0f deliveries/s, p50 %.0f us, p99 %.0f us"
            % (d, p50, p99), "(first figure)", d is not None, "sockit bench only: loadgen has no chat")
    agreement(out, res)
    print("\n".join(out))


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if not n else xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def rounds(res, label, fig):
    """{round: kv} of the alternating-round figures"""
    return {kv.get("round"): kv for kv in res.get((label, fig), [])}


def round_ratio(res, label, ref, fig, key):
    """median over rounds of label/ref, and the medians of each side"""
    a, b = rounds(res, label, fig), rounds(res, ref, fig)
    pairs = [(float(a[r][key]), float(b[r][key])) for r in a if r in b and float(b[r][key]) > 0]
    if not pairs:
        return None, None, None
    return (median([x / y for x, y in pairs]), median([x for x, _ in pairs]),
            median([y for _, y in pairs]))


def line20(out, num, what, got, ref, ratio, need, ok):
    if ratio is None:
        out.append("| %s | %s | not measured | | | %s | MISS |" % (num, what, need))
    else:
        verdict = "info" if need.startswith("(") else "PASS" if ok else "**MISS**"
        out.append("| %s | %s | %s | %s | %.2f | %s | %s |" % (num, what, got, ref, ratio, need, verdict))


def table20(path, idle, outdir):
    res = load(path)
    out = ["| # | figure | sockit | reference | ratio | target | result |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for fig, name in (("cpu_c50_p16", "c50 p16"), ("cpu_c50_p1", "c50 p1")):
        for lab, auth in (("sockit", "plain"), ("sockit_auth", "auth"), ("sockit_t1", "plain, one loop"),
                          ("sockit_auth_t1", "auth, one loop")):
            r, s, e = round_ratio(res, lab, "epoll", fig, "cpu_us")
            line20(out, 1, "server CPU per echo, %s, %s (median of rounds)" % (name, auth),
                   s and "%.3f us" % s, e and "%.3f us epoll_echo" % e, r, "<= 1.10", r and r <= 1.1)
            r, s, e = round_ratio(res, lab, "epoll", fig, "req_s")
            line20(out, 1, "echo throughput, %s, %s" % (name, auth), s and "%.0f/s" % s,
                   e and "%.0f/s epoll_echo" % e, r, ">= 0.90", r and r >= 0.9)
    s, e = val(res, "sockit", "echo64_c1_p1@cpu0", "p50_us"), val(res, "epoll", "echo64_c1_p1@cpu0", "p50_us")
    line20(out, 2, "p50 latency c1 p1, pinned to CPU 0", s and "%.1f us" % s, e and "%.1f us epoll_echo" % e,
           s and e and s / e, "<= 1.10", s and e and s / e <= 1.1)
    s, o = val(res, "sockit", "put_sha256", "mb_s"), val(res, "openssl", "put_sha256", "mb_s")
    line20(out, 3, "put sha256 (loadgen --hash)", s and "%.0f MB/s" % s,
           o and "%.0f MB/s openssl speed -evp sha256" % o, s and o and s / o, ">= 0.70", s and o and s / o >= 0.7)
    c, o = val(res, "sockit", "put_sha256", "server_cpu_s"), val(res, "openssl", "put_sha256_cpu", "mb_s")
    gib = val(res, "sockit", "put_sha256", "bytes")
    if c and o and gib:
        o = gib / 1e6 / o  # openssl's CPU seconds for the same bytes
        line20(out, 3, "... the server's CPU for that put (hash, receive, write)", "%.2f s" % c,
               "%.2f s openssl sha256 of the same bytes" % o, o / c, "(where it goes)", True)
    s, e = val(res, "sockit", "put_fastest", "mb_s"), val(res, "epoll", "put", "mb_s")
    line20(out, 3, "put, fastest hash (loadgen)", s and "%.0f MB/s" % s, e and "%.0f MB/s epoll_echo" % e,
           s and e and s / e, ">= 0.90", s and e and s / e >= 0.9)
    for h in ("fastest", "sha256"):
        g, p = val(res, "sockit~bench", "get_" + h, "mb_s"), val(res, "sockit~bench", "put_" + h, "mb_s")
        line20(out, 3, "get vs put, %s (sockit bench)" % h, g and "%.0f MB/s get" % g,
               p and "%.0f MB/s put" % p, g and p and g / p, ">= 1.00", g and p and g >= p)
    for fig in sorted({f for (l, f) in res if l == "tls" and f[:4] in ("put_", "get_")}):
        t, p = val(res, "tls", fig, "mb_s"), val(res, "plain", fig, "mb_s")
        line20(out, 4, "%s TLS vs plain (sockit put/get, mean of runs)" % fig.replace("_", " "), t and "%.0f MB/s" % t,
               p and "%.0f MB/s plain" % p, t and p and t / p, ">= 0.80", t and p and t / p >= 0.8)
        t, p = val(res, "tls", fig, "server_cpu_s"), val(res, "plain", fig, "server_cpu_s")
        line20(out, 4, "... the server's CPU for it, plain vs TLS", t and "%.2f s" % t,
               p and "%.2f s plain" % p, t and p and p / t, "(where it goes)", True)
    t, p = val(res, "tls", "echo64_c50_p16", "req_s"), val(res, "plain", "echo64_c50_p16", "req_s")
    line20(out, 4, "echo c50 p16 TLS vs plain (sockit bench)", t and "%.0f/s" % t, p and "%.0f/s plain" % p,
           t and p and t / p, ">= 0.75", t and p and t / p >= 0.75)
    h, x = val(res, "tls", "handshakes", "per_core_s"), val(res, "openssl", "x25519", "ops_s")
    line20(out, 4, "full handshakes per server-core second", h and "%.0f/s" % h,
           x and "%.0f/s = X25519 %.0f ops/s / 2" % (x / 2, x), h and x and h / (x / 2), ">= 0.50",
           h and x and h / (x / 2) >= 0.5)
    for lab, name, lim in (("plain", "plain", 1.5), ("tls", "TLS", 16)):
        kb, ans = val(res, lab, "conns%d" % idle, "rss_per_conn_kb"), val(res, lab, "conns%d" % idle, "answered_ping")
        line20(out, 5, "%d idle authenticated, %s: memory per connection" % (idle, name),
               kb is not None and "%.2f KiB" % kb, ans is not None and "%d of %d answered a ping" % (ans, idle),
               kb, "<= %g KiB, all answer" % lim, kb is not None and kb <= lim and ans == idle)
    r, b, lg = round_ratio(res, "bench", "loadgen", "client_cpu_c50_p16", "cpu_us")
    line20(out, 6, "client CPU per echo c50 p16, sockit bench vs loadgen", b and "%.3f us" % b,
           lg and "%.3f us loadgen" % lg, r, "<= 1.10", r and r <= 1.1)
    r, b, lg = round_ratio(res, "bench", "loadgen", "client_cpu_c50_p16", "req_s")
    line20(out, 6, "... and the req/s the two clients see", b and "%.0f/s" % b, lg and "%.0f/s loadgen" % lg,
           r, "0.90..1.10", r and 0.9 <= r <= 1.1)
    print("\n".join(out))
    write_plot_data(res, idle, outdir)


def write_plot_data(res, idle, outdir):
    """idle.dat (server RSS growth, MiB, against idle connections) and refs.gp
    (the reference lines of the plots: gnuplot variables)"""
    steps = sorted({int(f[4:]) for (l, f) in res if f.startswith("idle")} | {idle})
    with open(outdir + "/idle.dat", "w") as f:
        f.write("# conns sockit_plain_mib sockit_tls_mib epoll_mib\n")
        for n in steps:
            row = [str(n)]
            for lab, fig in (("sockit", "idle%d"), ("tls", "idle%d"), ("epoll", "idle%d")):
                v = val(res, lab, fig % n, "server_rss_growth_kb")
                if v is None and n == idle and lab != "epoll":
                    v = val(res, "plain" if lab == "sockit" else "tls", "conns%d" % n, "server_rss_growth_kb")
                row.append("NaN" if v is None else "%.2f" % (v / 1024))
            f.write(" ".join(row) + "\n")
    e = median([float(kv["req_s"]) for kv in res.get(("epoll", "cpu_c50_p16"), [])])
    refs = {"epoll_c50p16": e, "openssl_sha256": val(res, "openssl", "put_sha256", "mb_s"),
            "iperf3": val(res, "iperf3", "loopback", "mb_s"), "epoll_put": val(res, "epoll", "put", "mb_s")}
    with open(outdir + "/refs.gp", "w") as f:
        for k, v in refs.items():
            f.write("%s = %s\n" % (k, "NaN" if v is None else "%.6g" % v))


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "--round2":
        table20(a[1], int(a[2]), a[3])
        return
    if len(a) == 3 and a[0] == "--json":
        from_json(a[1], a[2])
    elif len(a) == 3 and a[0] == "--redis-csv":
        from_redis(a[1], a[2])
    elif len(a) == 3 and a[0] == "--openssl":
        from_openssl(a[1], a[2])
    elif len(a) == 1 and not a[0].startswith("-"):
        table(a[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
