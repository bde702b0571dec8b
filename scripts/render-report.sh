#!/usr/bin/env bash
# Renders OUTPUT_DIR/logs/report.html (written at the end of training or by `qa-train report OUTPUT_DIR`)
# in headless Chromium (Debian package `chromium`) to a PNG, and checks that the plots were drawn: the
# page has drawn series, the PNG is not trivial, and it holds pixels in the series' colours.
#
# usage: scripts/render-report.sh OUTPUT_DIR [PNG]     (PNG defaults to OUTPUT_DIR/logs/report.png)
# environment: WINDOW_SIZE (default 1200,2400), MIN_BYTES (default 20000), CHROMIUM (default: chromium)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUTPUT_DIR [PNG]" >&2
  exit 2
fi
out_dir=$1
report="$out_dir/logs/report.html"
png=${2:-$out_dir/logs/report.png}
window=${WINDOW_SIZE:-1200,2400}
min_bytes=${MIN_BYTES:-20000}

if [ ! -f "$report" ]; then
  echo "render-report: $report not found (train, or run 'qa-train report $out_dir', first)" >&2
  exit 1
fi
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
  done
fi
if [ -z "$browser" ]; then
  echo "render-report: no headless browser: install Debian's chromium (apt-get install -y chromium)" >&2
  exit 1
fi

# What the page itself promises: drawn series (a path with a move and at least one more command).
series=$(grep -Eo '<path class="series" d="M[0-9.]+ [0-9.]+[LHVMZ ]' "$report" | wc -l)
if [ "$series" -lt 1 ]; then
  echo "render-report: $report has no drawn series" >&2
  exit 1
fi

abs_report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
mkdir -p "$(dirname "$png")"
abs_png=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
rm -f "$abs_png"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
cmd=("$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile"
     --screenshot="$abs_png" --window-size="$window" "file://$abs_report")
echo "render-report: ${cmd[*]}"
timeout 120 "${cmd[@]}" >"$profile/chromium.log" 2>&1 || {
  echo "render-report: $browser failed:" >&2
  tail -20 "$profile/chromium.log" >&2
  exit 1
}
if [ ! -s "$abs_png" ]; then
  echo "render-report: $browser wrote no screenshot" >&2
  tail -20 "$profile/chromium.log" >&2
  exit 1
fi
bytes=$(stat -c %s "$abs_png")
if [ "$bytes" -lt "$min_bytes" ]; then
  echo "render-report: $abs_png is only $bytes bytes (< $min_bytes): the page looks blank" >&2
  exit 1
fi

# The plots are on the screenshot: count pixels near the first two series colours (#1f77b4, #d62728).
python3 - "$abs_png" <<'EOF'
import struct, sys, zlib

path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("render-report: %s is not a PNG" % path)
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = ihdr
channels = {2: 3, 6: 4}.get(ctype)
if depth != 8 or channels is None or interlace:
    print("render-report: PNG %dx%d (colour type %d): pixel check skipped" % (w, h, ctype))
    sys.exit(0)
raw, stride = zlib.decompress(idat), w * channels
prev, i = bytearray(stride), 0
colours = {"#1f77b4": (31, 119, 180), "#d62728": (214, 39, 40)}
hits = dict.fromkeys(colours, 0)
for _ in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - channels] if x >= channels else 0
        b = prev[x]
        c = prev[x - channels] if x >= channels else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, channels):
        r, g, bl = line[x], line[x + 1], line[x + 2]
        for name, (cr, cg, cb) in colours.items():
            if abs(r - cr) < 40 and abs(g - cg) < 40 and abs(bl - cb) < 40:
                hits[name] += 1
    prev = line
print("render-report: %dx%d screenshot; series-coloured pixels: %s" % (w, h, ", ".join("%s %d" % kv for kv in hits.items())))
if min(hits.values()) < 200:
    sys.exit("render-report: too few series-coloured pixels: the plots were not drawn")
EOF
echo "render-report: $abs_png ($bytes bytes, $series drawn series in the page)"
