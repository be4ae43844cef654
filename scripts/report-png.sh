#!/usr/bin/env bash
# Regenerates docs/report.png, the screenshot in docs/walkthrough.md section 7, from the program:
# the same run the walkthrough shows, rendered by headless Chromium (Debian's package).
# Usage: scripts/report-png.sh [extra run arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
chromium_bin=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium_bin" ]; then
  echo "error: $chromium_bin not found (apt-get install chromium)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q -p smmu-lab
# Exit code 1 is the expected verdict (the linux-6.1 run oopses); anything else is an error.
set +e
./target/release/smmu-lab run reboot --kernel linux-6.1 --seed 3 "$@" --report "$work/report.html" >/dev/null
code=$?
set -e
if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
  echo "error: smmu-lab run exited $code" >&2
  exit 2
fi
"$chromium_bin" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
  --user-data-dir="$work/profile" --window-size=1280,900 \
  --screenshot="$work/report.png" "file://$work/report.html" 2>/dev/null
mv "$work/report.png" docs/report.png
echo "wrote docs/report.png"
