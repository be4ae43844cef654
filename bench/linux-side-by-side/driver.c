/* SPDX-License-Identifier: MIT */
/*
 * smmu-lab's side-by-side driver for Linux's io-pgtable-arm.c and iova.c, built as userspace C
 * against shim/kshim.h. It runs the loops, address patterns and seeds of
 * crates/pgtable/benches/pgtable.rs and crates/iommu/benches/iova.rs (their `side_by_side`
 * functions) and prints one line per row: `<row> <ns per op> <check>`, where `check` is a sum
 * of the results (translated addresses, allocated pfns) that the smmu-lab side prints too.
 *
 * Environment: SIDE_BY_SIDE_LOOKUPS=<file> (required for the lookup row: 1M little-endian u64
 * IOVAs written by the smmu-lab pgtable bench), SIDE_BY_SIDE_ROWS=<row,...> (default all),
 * SIDE_BY_SIDE_WARMUP=0 (skip the untimed warm-ups; the IOVA one-page warm-up runs the row's
 * own function, so callgrind needs this for that row).
 * Each row's measured loop is one noinline function named row_<row>, so that
 * `valgrind --tool=callgrind --toggle-collect='*row_<row>*'` (row in lower case) counts only its instructions.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/io-pgtable.h>
#include <linux/iova.h>

#define NOINLINE __attribute__((noinline))

/* page tables: 4K granule, stage 1, IAS = OAS = 48, 1 GiB as 262,144 pages */
#define PAGES 262144UL
#define IOVA_BASE 0x4000000000UL
#define PA_BASE 0x800000000UL
#define LOOKUPS 1000000UL
#define BLOCKS 512UL
/* passes of the 2 MiB row per measurement: one pass is only ~10 us */
#define BLOCK_PASSES 64UL
#define PROT (IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE)

/* IOVA: 4K granule, start_pfn 1, 32-bit limit */
#define LIMIT_PFN 0xfffffUL
#define WORKING_SET 4096
#define SCRIPT 65536

static u64 now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

static volatile u64 sink;

static void tlb_flush_all(void *cookie) { (void)cookie; }
static void tlb_flush_walk(unsigned long iova, size_t size, size_t granule, void *cookie)
{
	(void)iova; (void)size; (void)granule; (void)cookie;
}
static void tlb_add_page(struct iommu_iotlb_gather *g, unsigned long iova, size_t granule,
			 void *cookie)
{
	(void)g; (void)iova; (void)granule; (void)cookie;
}
static const struct iommu_flush_ops empty_tlb = {
	.tlb_flush_all = tlb_flush_all,
	.tlb_flush_walk = tlb_flush_walk,
	.tlb_add_page = tlb_add_page,
};

static struct device walker;

/* what alloc_io_pgtable_ops does for ARM_64_LPAE_S1 */
static struct io_pgtable_ops *table_new(void)
{
	struct io_pgtable_cfg cfg = {
		.pgsize_bitmap = SZ_4K | SZ_2M | SZ_1G,
		.ias = 48,
		.oas = 48,
		.coherent_walk = true,
		.tlb = &empty_tlb,
		.iommu_dev = &walker,
	};
	struct io_pgtable *iop = io_pgtable_arm_64_lpae_s1_init_fns.alloc(&cfg, NULL);
	if (!iop) {
		fprintf(stderr, "io-pgtable alloc failed\n");
		exit(1);
	}
	iop->fmt = ARM_64_LPAE_S1;
	iop->cookie = NULL;
	iop->cfg = cfg;
	return &iop->ops;
}

static void table_free(struct io_pgtable_ops *ops)
{
	io_pgtable_arm_64_lpae_s1_init_fns.free(io_pgtable_ops_to_pgtable(ops));
}

static void must_map(struct io_pgtable_ops *ops, unsigned long iova, phys_addr_t pa, size_t pgsize,
		     size_t count)
{
	size_t mapped = 0;
	if (ops->map_pages(ops, iova, pa, pgsize, count, PROT, GFP_ATOMIC, &mapped) ||
	    mapped != pgsize * count) {
		fprintf(stderr, "map failed at %#lx\n", iova);
		exit(1);
	}
}

static void map_all_batched(struct io_pgtable_ops *ops)
{
	for (unsigned long c = 0; c < PAGES / 512; c++)
		must_map(ops, IOVA_BASE + c * SZ_2M, PA_BASE + c * SZ_2M, SZ_4K, 512);
}

NOINLINE static u64 row_map_4k_per_page(struct io_pgtable_ops *ops)
{
	for (unsigned long i = 0; i < PAGES; i++)
		must_map(ops, IOVA_BASE + i * SZ_4K, PA_BASE + i * SZ_4K, SZ_4K, 1);
	return PAGES;
}

NOINLINE static u64 row_map_4k_batched_512(struct io_pgtable_ops *ops)
{
	map_all_batched(ops);
	return PAGES;
}

NOINLINE static u64 row_unmap_4k_per_page(struct io_pgtable_ops *ops)
{
	u64 sum = 0;
	for (unsigned long i = 0; i < PAGES; i++) {
		struct iommu_iotlb_gather g = { .start = ULONG_MAX };
		sum += ops->unmap_pages(ops, IOVA_BASE + i * SZ_4K, SZ_4K, 1, &g);
	}
	return sum;
}

NOINLINE static u64 row_unmap_4k_batched_512(struct io_pgtable_ops *ops)
{
	u64 sum = 0;
	for (unsigned long c = 0; c < PAGES / 512; c++) {
		struct iommu_iotlb_gather g = { .start = ULONG_MAX };
		sum += ops->unmap_pages(ops, IOVA_BASE + c * SZ_2M, SZ_4K, 512, &g);
	}
	return sum;
}

NOINLINE static u64 row_iova_to_phys_random_1m(struct io_pgtable_ops *ops, const u64 *iovas)
{
	u64 acc = 0;
	for (unsigned long i = 0; i < LOOKUPS; i++)
		acc += ops->iova_to_phys(ops, iovas[i]);
	return acc;
}

NOINLINE static u64 row_map_unmap_2m_block(struct io_pgtable_ops *ops)
{
	u64 sum = 0;
	for (unsigned long pass = 0; pass < BLOCK_PASSES; pass++) {
		for (unsigned long i = 0; i < BLOCKS; i++)
			must_map(ops, IOVA_BASE + i * SZ_2M, PA_BASE + i * SZ_2M, SZ_2M, 1);
		for (unsigned long i = 0; i < BLOCKS; i++) {
			struct iommu_iotlb_gather g = { .start = ULONG_MAX };
			sum += ops->unmap_pages(ops, IOVA_BASE + i * SZ_2M, SZ_2M, 1, &g);
		}
	}
	return sum;
}

/* splitmix64, as crates/iommu/benches/iova.rs */
static u64 rng_state;
static u64 rng_next(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	u64 z = rng_state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const unsigned long SIZES[5] = { 1, 2, 4, 8, 16 };

struct working_set {
	struct iova_domain dom;
	bool rcache;
	unsigned long live_pfn[WORKING_SET];
	unsigned long live_size[WORKING_SET];
	uint32_t victim[SCRIPT];
	uint8_t size[SCRIPT];
	unsigned pos;
};

static void domain_init(struct iova_domain *dom, bool rcache)
{
	init_iova_domain(dom, SZ_4K, 1);
	if (rcache && iova_domain_init_rcaches(dom)) {
		fprintf(stderr, "rcache init failed\n");
		exit(1);
	}
}

static unsigned long dom_alloc(struct iova_domain *dom, bool rcache, unsigned long size)
{
	if (rcache)
		return alloc_iova_fast(dom, size, LIMIT_PFN, true);
	struct iova *iova = alloc_iova(dom, size, LIMIT_PFN, true);
	return iova ? iova->pfn_lo : 0;
}

static void dom_free(struct iova_domain *dom, bool rcache, unsigned long pfn, unsigned long size)
{
	if (rcache)
		free_iova_fast(dom, pfn, size);
	else
		free_iova(dom, pfn);
}

static struct working_set *working_set_new(bool rcache)
{
	struct working_set *ws = calloc(1, sizeof(*ws));
	ws->rcache = rcache;
	domain_init(&ws->dom, rcache);
	rng_state = 0x5eed1028ull;
	for (int i = 0; i < WORKING_SET; i++) {
		unsigned long s = SIZES[rng_next() % 5];
		ws->live_pfn[i] = dom_alloc(&ws->dom, rcache, s);
		ws->live_size[i] = s;
	}
	for (int i = 0; i < SCRIPT; i++) {
		ws->victim[i] = (uint32_t)(rng_next() % WORKING_SET);
		ws->size[i] = (uint8_t)(rng_next() % 5);
	}
	return ws;
}

static u64 working_set_run(struct working_set *ws, u64 pairs)
{
	u64 sum = 0;
	for (u64 n = 0; n < pairs; n++) {
		uint32_t v = ws->victim[ws->pos];
		uint8_t s = ws->size[ws->pos];
		ws->pos = (ws->pos + 1) & (SCRIPT - 1);
		dom_free(&ws->dom, ws->rcache, ws->live_pfn[v], ws->live_size[v]);
		unsigned long p = dom_alloc(&ws->dom, ws->rcache, SIZES[s]);
		ws->live_pfn[v] = p;
		ws->live_size[v] = SIZES[s];
		sum += p;
	}
	return sum;
}

static void working_set_free(struct working_set *ws)
{
	put_iova_domain(&ws->dom);
	free(ws);
}

NOINLINE static u64 row_iova_one_page_cached(struct iova_domain *dom, u64 pairs)
{
	u64 sum = 0;
	for (u64 n = 0; n < pairs; n++) {
		unsigned long p = alloc_iova_fast(dom, 1, LIMIT_PFN, true);
		free_iova_fast(dom, p, 1);
		sum += p;
	}
	return sum;
}

/* The two working-set rows differ only in the domain: the distinct marker keeps the compiler
 * from folding them into one function, which callgrind could then not tell apart. */
#define ROW_MARKER(n) __asm__ volatile("" ::"r"(n))

NOINLINE static u64 row_iova_working_set_cached(struct working_set *ws, u64 pairs)
{
	ROW_MARKER(1);
	return working_set_run(ws, pairs);
}

NOINLINE static u64 row_iova_working_set_uncached(struct working_set *ws, u64 pairs)
{
	ROW_MARKER(2);
	return working_set_run(ws, pairs);
}

static const u64 *lookups;
static bool warmup = true;
static const char *rows_wanted;

static bool wanted(const char *row)
{
	if (!rows_wanted || !*rows_wanted)
		return true;
	size_t n = strlen(row);
	for (const char *p = rows_wanted; (p = strstr(p, row)); p += n)
		if ((p == rows_wanted || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

static void report(const char *row, u64 ns, u64 ops, u64 check)
{
	printf("%s %.3f %llu\n", row, (double)ns / (double)ops, (unsigned long long)check);
	fflush(stdout);
}

static u64 pairs_for(const char *row, u64 dflt)
{
	char name[96];
	snprintf(name, sizeof(name), "SIDE_BY_SIDE_PAIRS_%s", row);
	const char *v = getenv(name);
	return v ? strtoull(v, NULL, 0) : dflt;
}

/*
 * The warm-up before each page-table row: map the whole 1 GiB on a fresh table and free it,
 * so that the pages the row will use have been touched (and, on the smmu-lab side, written,
 * which makes the allocator zero them again as Linux's page allocator always does). It does
 * not call the row's function, so callgrind's per-row count sees only the measured pass.
 */
static void warm_up(void)
{
	if (!warmup)
		return;
	struct io_pgtable_ops *ops = table_new();
	map_all_batched(ops);
	table_free(ops);
}

/* A page-table row: warm-up, then a fresh table (mapped first when `premapped`), timed. */
#define PGTABLE_ROW(name, ops_count, premapped, call)                                    \
	do {                                                                             \
		if (!wanted(#name))                                                      \
			break;                                                           \
		warm_up();                                                               \
		struct io_pgtable_ops *ops = table_new();                                \
		if (premapped)                                                           \
			map_all_batched(ops);                                            \
		u64 t0 = now_ns();                                                       \
		u64 check = call;                                                        \
		u64 t1 = now_ns();                                                       \
		table_free(ops);                                                         \
		report(#name, t1 - t0, ops_count, check);                                \
	} while (0)

int main(void)
{
	rows_wanted = getenv("SIDE_BY_SIDE_ROWS");
	const char *w = getenv("SIDE_BY_SIDE_WARMUP");
	warmup = !(w && !strcmp(w, "0"));

	PGTABLE_ROW(map_4k_per_page, PAGES, false, row_map_4k_per_page(ops));
	PGTABLE_ROW(map_4k_batched_512, PAGES, false, row_map_4k_batched_512(ops));
	PGTABLE_ROW(unmap_4k_per_page, PAGES, true, row_unmap_4k_per_page(ops));
	PGTABLE_ROW(unmap_4k_batched_512, PAGES, true, row_unmap_4k_batched_512(ops));
	if (wanted("iova_to_phys_random_1M")) {
		const char *path = getenv("SIDE_BY_SIDE_LOOKUPS");
		FILE *f = path ? fopen(path, "rb") : NULL;
		u64 *buf = malloc(LOOKUPS * sizeof(u64));
		if (!f || fread(buf, sizeof(u64), LOOKUPS, f) != LOOKUPS) {
			fprintf(stderr, "SIDE_BY_SIDE_LOOKUPS must name the 1M-lookup file\n");
			return 2;
		}
		fclose(f);
		lookups = buf;
		PGTABLE_ROW(iova_to_phys_random_1M, LOOKUPS, true,
			    row_iova_to_phys_random_1m(ops, lookups));
	}
	if (wanted("map_unmap_2m_block")) {
		warm_up();
		struct io_pgtable_ops *ops = table_new();
		u64 t0 = now_ns();
		u64 check = row_map_unmap_2m_block(ops);
		u64 t1 = now_ns();
		table_free(ops);
		report("map_unmap_2m_block", t1 - t0, BLOCKS * BLOCK_PASSES, check);
	}

	if (iova_cache_get()) {
		fprintf(stderr, "iova_cache_get failed\n");
		return 1;
	}
	if (wanted("iova_one_page_cached")) {
		struct iova_domain dom;
		domain_init(&dom, true);
		u64 n = pairs_for("iova_one_page_cached", 10000000);
		if (warmup)
			row_iova_one_page_cached(&dom, n / 10);
		u64 t0 = now_ns();
		u64 check = row_iova_one_page_cached(&dom, n);
		u64 t1 = now_ns();
		put_iova_domain(&dom);
		report("iova_one_page_cached", t1 - t0, n, check);
	}
	if (wanted("iova_working_set_cached")) {
		struct working_set *ws = working_set_new(true);
		u64 n = pairs_for("iova_working_set_cached", 2000000);
		u64 t0 = now_ns();
		u64 check = row_iova_working_set_cached(ws, n);
		u64 t1 = now_ns();
		working_set_free(ws);
		report("iova_working_set_cached", t1 - t0, n, check);
	}
	if (wanted("iova_working_set_uncached")) {
		struct working_set *ws = working_set_new(false);
		u64 n = pairs_for("iova_working_set_uncached", 200000);
		u64 t0 = now_ns();
		u64 check = row_iova_working_set_uncached(ws, n);
		u64 t1 = now_ns();
		working_set_free(ws);
		report("iova_working_set_uncached", t1 - t0, n, check);
	}
	iova_cache_put();
	return 0;
}
