#!/usr/bin/env bash
# Side-by-side benchmark: Linux's io-pgtable-arm.c and iova.c (built as userspace C against
# our shim) beside smmu-lab's pgtable and IOVA allocator, same loops, seeds and address
# patterns, in one sitting. Usage, from anywhere in the repository:
#
#   bench/linux-side-by-side/run.sh [--rounds N] [--cpu C] [--callgrind]
#
# 1. Installs Debian's linux-source-6.12 if /usr/src/linux-source-6.12.tar.xz is missing
#    (apt-get; needs root or sudo).
# 2. Extracts only io-pgtable-arm.{c,h}, iova.c, lib/rbtree.c and the headers they need from
#    that tarball into target/linux-side-by-side/ (Linux code is never committed).
# 3. Builds them with `gcc -O2` against shim/ (ours: one CPU, no-op locks, compiler-only
#    barriers, empty TLB callbacks, heap-backed pages) plus driver.c.
# 4. Builds the two smmu-lab benches (`cargo bench -p pgtable --bench pgtable`,
#    `cargo bench -p iommu --bench iova`), whose `side_by_side` functions run the same rows.
# 5. Runs N alternating rounds (default 15) pinned to one CPU (default 1), thread CPU time,
#    and prints one table: min / median per side and the ratio of the medians. Every row also
#    compares a checksum of the results (translations, unmapped bytes, allocated pfns): the two
#    sides must agree, or the script fails.
# 6. With --callgrind, also counts instructions per op for every row on both sides
#    (valgrind --tool=callgrind, only the row's loop function collected).
set -euo pipefail

VERSION=6.12
ROUNDS=15
CPU=1
CALLGRIND=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS="$2"; shift 2 ;;
	--cpu) CPU="$2"; shift 2 ;;
	--callgrind) CALLGRIND=1; shift ;;
	*) echo "usage: $0 [--rounds N] [--cpu C] [--callgrind]" >&2; exit 2 ;;
	esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "--rounds needs a positive number" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/target/linux-side-by-side"
SRC="$OUT/linux-$VERSION"
TARBALL="/usr/src/linux-source-$VERSION.tar.xz"
mkdir -p "$OUT"

# 1. The source package.
if [ ! -f "$TARBALL" ]; then
	echo "installing linux-source-$VERSION (Debian package) ..." >&2
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		"linux-source-$VERSION" >&2
fi

# 2. Only the files the build needs.
MEMBERS=(
	drivers/iommu/io-pgtable-arm.c
	drivers/iommu/io-pgtable-arm.h
	drivers/iommu/iova.c
	lib/rbtree.c
	include/linux/io-pgtable.h
	include/linux/iova.h
	include/linux/rbtree.h
	include/linux/rbtree_types.h
	include/linux/rbtree_augmented.h
)
if [ ! -f "$SRC/.extracted" ] || [ "$TARBALL" -nt "$SRC/.extracted" ]; then
	echo "extracting ${#MEMBERS[@]} files from $TARBALL ..." >&2
	rm -rf "$SRC"
	mkdir -p "$SRC"
	tar -xJf "$TARBALL" -C "$SRC" --strip-components=1 \
		"${MEMBERS[@]/#/linux-source-$VERSION/}"
	touch "$SRC/.extracted"
fi

# 3. The Linux side.
LINUX_BIN="$OUT/linux-bench-$VERSION"
CFLAGS=(-O2 -I "$SRC/include" -I "$HERE/shim")
OBJS=()
for f in drivers/iommu/io-pgtable-arm.c drivers/iommu/iova.c lib/rbtree.c "$HERE/driver.c"; do
	case "$f" in /*) c="$f" ;; *) c="$SRC/$f" ;; esac
	o="$OUT/$(basename "${c%.c}").o"
	gcc "${CFLAGS[@]}" -c "$c" -o "$o"
	OBJS+=("$o")
done
gcc -O2 -o "$LINUX_BIN" "${OBJS[@]}"

# 4. The smmu-lab side.
bench_bin() {
	(cd "$ROOT" && cargo bench -p "$1" --bench "$2" --no-run 2>&1) |
		sed -n "s|.*Executable benches/$2.rs (\(.*\))|\1|p" | tail -1
}
PGTABLE_BIN="$ROOT/$(bench_bin pgtable pgtable)"
IOVA_BIN="$ROOT/$(bench_bin iommu iova)"
[ -x "$PGTABLE_BIN" ] && [ -x "$IOVA_BIN" ] || { echo "could not build the smmu-lab benches" >&2; exit 1; }

LOOKUPS="$OUT/lookups.bin"
RESULTS="$OUT/rounds.txt"
: > "$RESULTS"
run_smmu_lab() {
	(cd "$ROOT/crates/pgtable" && SIDE_BY_SIDE=1 SIDE_BY_SIDE_LOOKUPS="$LOOKUPS" \
		taskset -c "$CPU" "$PGTABLE_BIN" --bench nothing_matches)
	(cd "$ROOT/crates/iommu" && SIDE_BY_SIDE=1 taskset -c "$CPU" "$IOVA_BIN" --bench nothing_matches)
}
run_linux() {
	SIDE_BY_SIDE_LOOKUPS="$LOOKUPS" taskset -c "$CPU" "$LINUX_BIN"
}

# 5. Alternating rounds (the smmu-lab side first: it writes the lookup file).
echo "$ROUNDS rounds on CPU $CPU, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq 1 "$ROUNDS"); do
	run_smmu_lab | awk -v r="$r" 'NF == 3 { print "smmu-lab", r, $0 }' >> "$RESULTS"
	run_linux | awk -v r="$r" 'NF == 3 { print "linux", r, $0 }' >> "$RESULTS"
	echo "  round $r/$ROUNDS done" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# 6. Instruction counts.
IR="$OUT/instructions.txt"
: > "$IR"
if [ "$CALLGRIND" = 1 ]; then
	command -v valgrind > /dev/null || { echo "--callgrind needs valgrind" >&2; exit 1; }
	# Shorter IOVA runs under valgrind (pairs per row); page-table rows run in full.
	declare -A PAIRS=([iova_one_page_cached]=1000000 [iova_working_set_cached]=200000
		[iova_working_set_uncached]=20000)
	declare -A OPS=([map_4k_per_page]=262144 [map_4k_batched_512]=262144
		[unmap_4k_per_page]=262144 [unmap_4k_batched_512]=262144
		[iova_to_phys_random_1M]=1000000 [map_unmap_2m_block]=32768)
	count() { # side row command...
		local side=$1 row=$2 cg="$OUT/callgrind.$1.$2"
		shift 2
		# The page-table warm-ups do not run the row's function; the IOVA one-page warm-up
		# does, so it is skipped there.
		local warm=1
		case "$row" in iova_*) warm=0 ;; esac
		env SIDE_BY_SIDE=1 SIDE_BY_SIDE_ROWS="$row" SIDE_BY_SIDE_WARMUP="$warm" \
			SIDE_BY_SIDE_LOOKUPS="$LOOKUPS" "SIDE_BY_SIDE_PAIRS_$row=${PAIRS[$row]:-0}" \
			valgrind --tool=callgrind --callgrind-out-file="$cg" \
			--toggle-collect="*row_${row,,}*" "$@" > /dev/null 2>&1
		local ir ops=${OPS[$row]:-${PAIRS[$row]:-}}
		ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$cg")
		echo "$side $row $ir $ops" >> "$IR"
	}
	for row in map_4k_per_page map_4k_batched_512 unmap_4k_per_page unmap_4k_batched_512 \
		iova_to_phys_random_1M map_unmap_2m_block; do
		echo "  callgrind $row" >&2
		count linux "$row" "$LINUX_BIN"
		(cd "$ROOT/crates/pgtable" && count smmu-lab "$row" "$PGTABLE_BIN" --bench nothing_matches)
	done
	for row in iova_one_page_cached iova_working_set_cached iova_working_set_uncached; do
		echo "  callgrind $row" >&2
		count linux "$row" "$LINUX_BIN"
		(cd "$ROOT/crates/iommu" && count smmu-lab "$row" "$IOVA_BIN" --bench nothing_matches)
	done
fi

python3 "$HERE/summarize.py" "$RESULTS" "$IR" "$VERSION" "$ROUNDS"
