"""Running one side of a benchmark as a whole process under /usr/bin/time -v: its output, wall
time (seconds) and peak resident memory (MiB). Shared by the bench/*/run_bench.py scripts."""
import subprocess
import sys


def measure(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    wall = rss = None
    for line in r.stderr.splitlines():
        if "Elapsed (wall clock)" in line:
            parts = [float(p) for p in line.split()[-1].split(":")]
            wall = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
        if "Maximum resident set size" in line:
            rss = int(line.split()[-1]) / 1024
    return r.stdout, wall, rss
