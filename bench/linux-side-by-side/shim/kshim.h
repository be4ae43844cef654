/* SPDX-License-Identifier: MIT */
/*
 * smmu-lab's userspace stand-in for the kernel headers that Linux's io-pgtable-arm.c, iova.c
 * and lib/rbtree.c include. Written for this project (no kernel code): one CPU, no-op locks,
 * compiler-only barriers, no DMA syncs (the benches use a coherent walk), page and slab
 * allocations on the C heap, no deferred work. Every header under shim/linux/ and shim/asm/
 * includes this one file.
 */
#ifndef SMMU_LAB_KSHIM_H
#define SMMU_LAB_KSHIM_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

/* ---- types ---- */
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef u64 phys_addr_t;
typedef u64 dma_addr_t;
typedef unsigned int gfp_t;
typedef struct { int counter; } atomic_t;
typedef struct { int unused; } spinlock_t;
struct mutex { int unused; };
struct hlist_node { struct hlist_node *next, **pprev; };
struct list_head { struct list_head *next, *prev; };
struct device { int numa_node; };
struct work_struct { int unused; };
struct delayed_work { struct work_struct work; };

/* ---- compiler ---- */
#define __percpu
#define __rcu
#define __init
#define __initdata
#define __initconst
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define __must_check
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define barrier() __asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) do { *(volatile __typeof__(x) *)&(x) = (v); } while (0)
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define static_assert(e) _Static_assert(e, #e)
#define BUILD_BUG_ON(e) _Static_assert(!(e), #e)
#define EXPORT_SYMBOL(s)
#define EXPORT_SYMBOL_GPL(s)
#define MODULE_AUTHOR(s)
#define MODULE_DESCRIPTION(s)
#define MODULE_LICENSE(s)
#define subsys_initcall(f)
/* the one config the sources ask about is CONFIG_IOMMU_IOVA, which this build compiles */
#define IS_REACHABLE(c) 1
#define IS_ENABLED(c) 0

/* ---- barriers: one CPU, so only the compiler must not reorder ---- */
#define wmb() barrier()
#define dma_wmb() barrier()
#define smp_wmb() barrier()
#define smp_mb() barrier()

/* ---- diagnostics ---- */
#define pr_err(...) fprintf(stderr, __VA_ARGS__)
#define pr_info(...) ((void)0)
#define pr_warn(...) fprintf(stderr, __VA_ARGS__)
#define dev_err(dev, ...) fprintf(stderr, __VA_ARGS__)
#define WARN_ON(c) ({ int __w = !!(c); if (unlikely(__w)) fprintf(stderr, "WARN_ON %s:%d\n", __FILE__, __LINE__); unlikely(__w); })
#define WARN(c, ...) ({ int __w = !!(c); if (unlikely(__w)) fprintf(stderr, __VA_ARGS__); unlikely(__w); })
#define BUG_ON(c) do { if (unlikely(c)) abort(); } while (0)
#define VM_BUG_ON(c) ((void)0)
#define ERR_PTR(e) ((void *)(long)(e))
#define kmemleak_transient_leak(p) ((void)(p))

/* ---- bits and arithmetic ---- */
#define BITS_PER_LONG 64
#define BIT(n) (1UL << (n))
#define BIT_ULL(n) (1ULL << (n))
#define GENMASK_ULL(h, l) ((~0ULL >> (63 - (h))) & (~0ULL << (l)))
#define GENMASK(h, l) ((~0UL >> (63 - (h))) & (~0UL << (l)))
#define __ffs(x) ((unsigned long)__builtin_ctzl(x))
#define __fls(x) ((unsigned long)(63 - __builtin_clzl(x)))
#define fls_long(x) ((x) ? 64 - __builtin_clzl(x) : 0)
#define ilog2(n) ((int)(63 - __builtin_clzll((unsigned long long)(n))))
#define is_power_of_2(n) ((n) != 0 && (((n) & ((n) - 1)) == 0))
#define roundup_pow_of_two(n) (1UL << fls_long((unsigned long)(n) - 1))
#define order_base_2(n) ((n) > 1 ? ilog2((n) - 1) + 1 : 0)
#define ALIGN(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define min(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a < _b ? _a : _b; })
#define max(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a > _b ? _a : _b; })
#define min_t(t, a, b) ({ t _a = (a); t _b = (b); _a < _b ? _a : _b; })
#define swap(a, b) do { __typeof__(a) _t = (a); (a) = (b); (b) = _t; } while (0)
#define for_each_set_bit(bit, addr, size) \
	for ((bit) = 0; (bit) < (size); (bit)++) if (*(addr) & (1UL << (bit)))
static inline void set_bit(long nr, unsigned long *addr) { *addr |= 1UL << nr; }

/* ---- sizes ---- */
#define SZ_4K 0x00001000UL
#define SZ_16K 0x00004000UL
#define SZ_64K 0x00010000UL
#define SZ_2M 0x00200000UL
#define SZ_32M 0x02000000UL
#define SZ_512M 0x20000000UL
#define SZ_1G 0x40000000UL
#define SZ_2G 0x80000000UL
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
static inline int get_order(unsigned long size)
{
	return size <= PAGE_SIZE ? 0 : ilog2(size - 1) - PAGE_SHIFT + 1;
}

/* ---- memory: the process's address space stands in for physical memory ---- */
#define GFP_KERNEL 0x1u
#define GFP_ATOMIC 0x2u
#define __GFP_NOWARN 0x4u
#define __GFP_HIGHMEM 0x8u
#define __GFP_ZERO 0x10u
#define NUMA_NO_NODE (-1)
#define virt_to_phys(p) ((phys_addr_t)(uintptr_t)(p))
#define __pa(p) ((phys_addr_t)(uintptr_t)(p))
#define __va(x) ((void *)(uintptr_t)(x))
#define dev_to_node(dev) NUMA_NO_NODE
#define set_dev_node(dev, n) ((void)0)
static inline void *kmalloc(size_t size, gfp_t gfp) { (void)gfp; return malloc(size); }
static inline void *kzalloc(size_t size, gfp_t gfp) { (void)gfp; return calloc(1, size); }
static inline void *kcalloc(size_t n, size_t size, gfp_t gfp) { (void)gfp; return calloc(n, size); }
static inline void kfree(const void *p) { free((void *)p); }

/* slab caches: a size, allocations on the heap */
struct kmem_cache { size_t size; };
#define SLAB_HWCACHE_ALIGN 0
static inline struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
						   unsigned long flags, void *ctor)
{
	(void)name; (void)align; (void)flags; (void)ctor;
	struct kmem_cache *c = malloc(sizeof(*c));
	if (c)
		c->size = size;
	return c;
}
static inline void kmem_cache_destroy(struct kmem_cache *c) { free(c); }
static inline void *kmem_cache_alloc(struct kmem_cache *c, gfp_t gfp) { (void)gfp; return malloc(c->size); }
static inline void *kmem_cache_zalloc(struct kmem_cache *c, gfp_t gfp) { (void)gfp; return calloc(1, c->size); }
static inline void kmem_cache_free(struct kmem_cache *c, void *p) { (void)c; free(p); }

/*
 * Page-table pages: zeroed, naturally aligned. Freed single pages go to a free list and are
 * reused, as the kernel's per-CPU page lists would hand them back, so that a pass does not
 * measure the C library returning memory to the OS and faulting it back in.
 */
struct kshim_free_page { struct kshim_free_page *next; };
static struct kshim_free_page *kshim_free_pages;
static inline void *iommu_alloc_pages_node(int nid, gfp_t gfp, int order)
{
	(void)nid; (void)gfp;
	size_t size = PAGE_SIZE << order;
	void *p = NULL;
	if (order == 0 && kshim_free_pages) {
		p = kshim_free_pages;
		kshim_free_pages = kshim_free_pages->next;
	} else if (posix_memalign(&p, size, size)) {
		return NULL;
	}
	memset(p, 0, size);
	return p;
}
static inline void iommu_free_pages(void *p, int order)
{
	if (!p)
		return;
	if (order == 0) {
		struct kshim_free_page *f = p;
		f->next = kshim_free_pages;
		kshim_free_pages = f;
		return;
	}
	free(p);
}

/* ---- DMA: never reached with a coherent walk ---- */
enum dma_data_direction { DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE };
static inline dma_addr_t dma_map_single(struct device *dev, void *p, size_t size, int dir)
{
	(void)dev; (void)size; (void)dir;
	return virt_to_phys(p);
}
static inline int dma_mapping_error(struct device *dev, dma_addr_t a) { (void)dev; (void)a; return 0; }
static inline void dma_unmap_single(struct device *dev, dma_addr_t a, size_t size, int dir)
{
	(void)dev; (void)a; (void)size; (void)dir;
}
static inline void dma_sync_single_for_device(struct device *dev, dma_addr_t a, size_t size, int dir)
{
	(void)dev; (void)a; (void)size; (void)dir;
}

/* ---- atomics: one CPU ---- */
#define cmpxchg64_relaxed(p, o, n) ({ __typeof__(*(p)) __old = *(p); if (__old == (o)) *(p) = (n); __old; })

/* ---- locks: one CPU, no preemption ---- */
#define spin_lock_init(l) ((void)(l))
#define spin_lock(l) ((void)(l))
#define spin_unlock(l) ((void)(l))
#define spin_lock_irqsave(l, f) ((void)(l), (f) = 0)
#define spin_unlock_irqrestore(l, f) ((void)(l), (void)(f))
#define assert_spin_locked(l) ((void)(l))
#define DEFINE_MUTEX(m) struct mutex m
#define mutex_lock(m) ((void)(m))
#define mutex_unlock(m) ((void)(m))

/* ---- RCU: nothing to wait for ---- */
#define rcu_assign_pointer(p, v) WRITE_ONCE(p, v)
#define rcu_dereference_raw(p) READ_ONCE(p)

/* ---- per-CPU data and CPU hotplug: one CPU ---- */
#define NR_CPUS 1
#define cache_line_size() 64
#define num_online_cpus() 1u
#define for_each_possible_cpu(cpu) for ((cpu) = 0; (cpu) < 1; (cpu)++)
#define for_each_online_cpu(cpu) for ((cpu) = 0; (cpu) < 1; (cpu)++)
static inline void *__alloc_percpu(size_t size, size_t align)
{
	void *p = NULL;
	if (posix_memalign(&p, align, size))
		return NULL;
	memset(p, 0, size);
	return p;
}
#define free_percpu(p) free(p)
#define per_cpu_ptr(p, cpu) ((void)(cpu), (p))
#define raw_cpu_ptr(p) (p)
#define CPUHP_IOMMU_IOVA_DEAD 0
#define cpuhp_setup_state_multi(state, name, start, stop) 0
#define cpuhp_remove_multi_state(state) ((void)0)
#define cpuhp_state_add_instance_nocalls(state, node) 0
#define cpuhp_state_remove_instance_nocalls(state, node) ((void)0)
#define hlist_entry_safe(p, type, member) ((p) ? container_of(p, type, member) : NULL)

/* ---- deferred work: never runs (the benches are single-threaded and short) ---- */
#define msecs_to_jiffies(m) (m)
#define INIT_DELAYED_WORK(w, f) ((void)(w), (void)(f))
#define schedule_delayed_work(w, d) ((void)(w), (void)(d))
#define cancel_delayed_work_sync(w) ((void)(w))

/* ---- IOMMU core types io-pgtable.h and io-pgtable-arm.c use ---- */
#define IOMMU_READ (1 << 0)
#define IOMMU_WRITE (1 << 1)
#define IOMMU_CACHE (1 << 2)
#define IOMMU_NOEXEC (1 << 3)
#define IOMMU_MMIO (1 << 4)
#define IOMMU_PRIV (1 << 5)
#define IOMMU_DIRTY_NO_CLEAR (1 << 0)
struct iommu_iotlb_gather {
	unsigned long start;
	unsigned long end;
	size_t pgsize;
	bool queued;
};
struct iommu_dirty_bitmap { int unused; };
static inline bool iommu_iotlb_gather_queued(struct iommu_iotlb_gather *g)
{
	return g && g->queued;
}
static inline void iommu_dirty_bitmap_record(struct iommu_dirty_bitmap *d, unsigned long iova,
					     unsigned long length)
{
	(void)d; (void)iova; (void)length;
}

#endif
