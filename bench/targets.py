#!/usr/bin/env python3
"""targets.py - the result lines of bench/run.sh against issue 8's targets.

  targets.py RESULTS                       the target table (markdown)
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


def main():
    a = sys.argv[1:]
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
