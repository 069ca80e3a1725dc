#!/usr/bin/env bash
# e2e.sh OUTDIR: the lab's end-to-end check for automated tests. Runs one failing scenario
# (rst-refused) and one successful one (success-tls) with fresh namespaces (names with a unique
# suffix, so it can run beside another lab run) and writes their captures, key logs and
# expected files into OUTDIR (never into captures/). Prints the path of each pcap, one a line.
# Exit status: 0 success, 1 failure, 77 when not root or network namespaces are unavailable
# (the caller should skip then). Takes about 20 s; bounded to 90 s.
set -euo pipefail
LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -ne 1 ]]; then echo "usage: $0 OUTDIR" >&2; exit 2; fi
if [[ $EUID -ne 0 ]]; then echo "e2e: SKIP: not root" >&2; exit 77; fi
probe="rdpt-probe-e2e-$$"
if ! ip netns add "$probe" 2>/dev/null; then echo "e2e: SKIP: network namespaces unavailable" >&2; exit 77; fi
ip netns del "$probe"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
export RDPT_OUT="$out" RDPT_SUFFIX="-e$$" RDPT_SCENARIO_TIMEOUT=45
for name in rst-refused success-tls; do
	if ! "$LAB_DIR/run-one" "$name" >"$out/$name.log" 2>&1; then
		echo "e2e: $name failed; its log:" >&2
		cat "$out/$name.log" >&2
		exit 1
	fi
	[[ -s $out/$name.pcap && -s $out/$name.expected.json ]] || { echo "e2e: $name wrote nothing" >&2; exit 1; }
	echo "$out/$name.pcap"
done
