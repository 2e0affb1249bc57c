/* SPDX-License-Identifier: MIT */
/*
 * cowd memory engine: simulated physical memory, processes, page tables,
 * copy-on-write fork, the zero page and per-process TLBs.
 *
 * The engine is a pure library. It does no I/O of its own, never prints and
 * knows nothing of sockets or protobuf. It is single-threaded: callers
 * serialise every call on one engine (the daemon runs it on its event loop).
 *
 * Files and devices can be mapped too. File pages come from and go to the
 * caller through struct cow_file_ops, as swap pages do: the engine keeps a
 * page cache (one frame per file page, shared by every mapping of the file)
 * but does no I/O itself. Two simulated devices, a framebuffer and a
 * console, live in frames of their own outside the pool.
 *
 * Error convention: functions return 0 (or a count) on success and a negative
 * errno on failure; output parameters are last, named ret_*, and are left
 * untouched on failure unless documented otherwise. cow_engine_strerror()
 * turns an error into a sentence for people.
 */
#ifndef COWD_ENGINE_H
#define COWD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cow_engine cow_engine;
typedef uint32_t cow_pid;

/* Protection bits, the same values as on the wire and as PROT_* on Linux. */
enum {
        COW_PROT_NONE = 0,
        COW_PROT_READ = 1u << 0,
        COW_PROT_WRITE = 1u << 1,
        COW_PROT_MASK = COW_PROT_READ | COW_PROT_WRITE,
};

enum cow_map_kind {
        COW_MAP_ANONYMOUS = 0,
        COW_MAP_FILE = 1,   /* a file named by a key, through the page cache */
        COW_MAP_DEVICE = 2, /* a simulated device (enum cow_device) */
};

/*
 * Simulated devices. The framebuffer holds fb_width x fb_height 32-bit pixels
 * (row after row, each pixel a little-endian 0xAARRGGBB word); the console is
 * one page, and every byte stored into it is also appended to the console log
 * (cow_engine_console_read()). Device pages are never copy-on-write (a device
 * mapping is always shared, so fork shares it), never evicted, never the zero
 * page and never counted in frames_used.
 */
enum cow_device {
        COW_DEV_FB0 = 0,
        COW_DEV_CONSOLE = 1,
};

#define COW_DEV_COUNT 2

/* "fb0", "console"; NULL for a value that is not a device. */
const char *cow_device_name(enum cow_device dev);

/* Parses a device name as cow_device_name() spells it: 0 or -EINVAL. */
int cow_device_parse(const char *name, enum cow_device *ret);

enum cow_advice {
        COW_MADV_NORMAL = 0,
        COW_MADV_DONTNEED = 1, /* drop the pages; private anonymous pages read as zero again */
};

/* A memory fault, named as the signal Linux would deliver. */
enum cow_fault_kind {
        COW_FAULT_NONE = 0,
        COW_SEGV_MAPERR = 1, /* no mapping at the address */
        COW_SEGV_ACCERR = 2, /* mapping exists, access not permitted */
        COW_BUS_ADRERR = 3,  /* a mapped file's page wholly beyond the file's end */
};

struct cow_fault {
        enum cow_fault_kind kind;
        uint64_t addr; /* first faulting byte */
};

/*
 * Engine-specific meanings of the negative errno values returned here:
 *   -EINVAL  invalid argument (alignment, length, protection, sizes)
 *   -ESRCH   no such process
 *   -EEXIST  range overlaps an existing mapping (and replacement not asked)
 *   -EFAULT  memory fault; struct cow_fault says which and where
 *   -ENOMEM  no free physical frame
 *   -ENOSPC  no free virtual address range of that size
 *   -EAGAIN  process limit reached
 *   -EMLINK  mapping-count limit of the process reached
 *   -ENOBUFS page-table memory budget exhausted
 *   -EOVERFLOW  address plus length overflows the address space
 *   -ENXIO   mprotect/madvise range is not wholly mapped
 *   -EOPNOTSUPP  mapping kind not supported by this engine
 *   -ENOMEM  also: no free frame and nothing could be evicted (memory and swap full)
 *   -ENOSPC, -EIO  also: returned as is from the swap backend (struct cow_swap_ops)
 *            or the file backend (struct cow_file_ops)
 *   -EMFILE  too many distinct files mapped or cached (max_files)
 *   -ENAMETOOLONG  a file key longer than max_file_key
 *   -EOPNOTSUPP  also: a file mapping while no file backend is set
 *   -EDQUOT  the process's owner is at its frame quota (max_frames_per_owner), or
 *            a page of it must go to swap and it is at its swap-slot quota
 *            (max_swap_slots_per_owner); see cow_engine_owner_charge()
 */
const char *cow_engine_strerror(int err);

/* Page replacement policies, for the whole engine and per process. */
enum cow_policy {
        COW_POLICY_CLOCK = 0, /* second chance on accessed bits (the default) */
        COW_POLICY_FIFO = 1,  /* the page loaded longest ago */
        COW_POLICY_LRU = 2,   /* the page used longest ago */
};

/* "clock", "fifo", "lru"; NULL for a value that is not a policy. */
const char *cow_policy_name(enum cow_policy p);

/* Parses a policy name as cow_policy_name() spells it: 0 or -EINVAL. */
int cow_policy_parse(const char *name, enum cow_policy *ret);

struct cow_engine_config {
        uint64_t mem_bytes;         /* simulated physical memory; default 256 MiB */
        uint32_t page_size;         /* power of two, 4 KiB..64 KiB; default 4 KiB */
        uint32_t tlb_entries;       /* per process; default 64 */
        uint32_t tlb_ways;          /* associativity; 0 = fully associative (default) */
        uint32_t max_procs;         /* live processes; default 4096 */
        uint32_t max_maps_per_proc; /* mappings per process; default 65530 */
        uint64_t max_pt_bytes;      /* page-table memory, all processes; default 1 GiB */
        uint64_t swap_slots;        /* pages of swap, < 2^31; 0 = no swap (default) */
        enum cow_policy policy;     /* global replacement policy; default COW_POLICY_CLOCK */
        uint64_t seed;              /* any randomness in the engine derives from it; default 1 */
        bool oom_kill;              /* kill the largest process when memory and swap are
                                     * full, rather than fail the access; default false */
        uint32_t fb_width;          /* framebuffer pixels per row; default 640 */
        uint32_t fb_height;         /* framebuffer rows; default 480; at most
                                     * COW_FB_MAX_BYTES of 32-bit pixels in all */
        uint32_t console_log_bytes; /* console log ring; default 64 KiB, 1 KiB..16 MiB */
        uint32_t max_files;         /* distinct files mapped or in the page cache at once;
                                     * default 1024, 1..65536 */
        uint32_t max_file_key;      /* longest file key, 1..COW_FILE_KEY_MAX; default 255 */
        uint64_t max_frames_per_owner;     /* frames charged to one owner; 0 = no quota
                                            * (default) */
        uint64_t max_swap_slots_per_owner; /* swap slots charged to one owner; 0 = no
                                            * quota (default) */
};

#define COW_FB_MAX_BYTES (UINT64_C(64) << 20)
#define COW_FILE_KEY_MAX 255
#define COW_FILE_SIZE_MAX (UINT64_C(1) << 62)

/* Fills *cfg with the defaults above. */
void cow_engine_config_init(struct cow_engine_config *cfg);

/* Validates cfg; on -EINVAL, *ret_why (if given) names the offending field. */
int cow_engine_config_check(const struct cow_engine_config *cfg, const char **ret_why);

/*
 * Creates an engine. Physical memory is reserved lazily from the host, so a
 * large simulated memory costs nothing until frames are touched.
 */
int cow_engine_new(const struct cow_engine_config *cfg, cow_engine **ret);

/*
 * The swap backend. The engine does no I/O: it hands whole pages (len = page
 * size) to these callbacks. Each returns 0 or a negative errno (-ENOSPC,
 * -EIO, ...), which the engine returns typed from the access that needed it.
 */
struct cow_swap_ops {
        int (*write)(void *ctx, uint64_t slot, const void *page, size_t len);
        int (*read)(void *ctx, uint64_t slot, void *page, size_t len);
};

/*
 * Gives the engine its swap backend, needed before any eviction when
 * swap_slots > 0 (without one, memory full is -ENOMEM). Also after
 * cow_engine_load(). ops and ctx must outlive the engine (or the next call).
 *
 * A backend error during swap-out leaves the page resident and the operation
 * that needed the frame fails with that errno, changing nothing. During
 * swap-in the access fails with it and the page stays swapped, data intact.
 */
void cow_engine_set_swap(cow_engine *e, const struct cow_swap_ops *ops, void *ctx);

/*
 * A copy of the engine made by fork() that saves a checkpoint reads the
 * swapped pages through the same backend (the same file) while this engine
 * goes on. cow_engine_swap_hold() makes that safe: no slot in use now is
 * written again until cow_engine_swap_release(). Slots freed meanwhile are
 * set aside rather than reused, and a full swap gives up no swap-cache
 * slot, so swap may run out sooner while held. cow_engine_save() of a held
 * engine fails with -EBUSY (its free slots are split across two lists).
 */
void cow_engine_swap_hold(cow_engine *e);
void cow_engine_swap_release(cow_engine *e);

/* Frees the engine and everything in it. Accepts NULL. */
void cow_engine_free(cow_engine *e);

uint32_t cow_engine_page_size(const cow_engine *e);

/*
 * The file backend. File pages come from and go to the caller, as swap pages
 * do: the engine does no I/O. A file is named by a key string (at most
 * max_file_key bytes, chosen by the caller, e.g. "1000/notes.txt"), which the
 * engine keeps, saves in checkpoints and passes back. Offsets are in bytes.
 */
struct cow_file_ops {
        /* Reads up to len bytes at offset: the count read (short or 0 at the end
         * of the file) or a negative errno. */
        ssize_t (*read)(void *ctx, const char *key, uint64_t offset, void *buf, size_t len);
        /* Writes len bytes at offset, all of them: 0 or a negative errno. The
         * engine never writes past the file size it was given at mmap, so a
         * write never extends the file. */
        int (*write)(void *ctx, const char *key, uint64_t offset, const void *buf, size_t len);
        /* Makes what was written to key durable (fsync): 0 or a negative errno. */
        int (*sync)(void *ctx, const char *key);
};

/*
 * Gives the engine its file backend, needed for file mappings (without one,
 * mmap of kind FILE is -EOPNOTSUPP). Also after cow_engine_load(): the page
 * cache is in the checkpoint, but later reads and write-backs need the
 * backend. ops and ctx must outlive the engine (or the next call).
 *
 * A backend error is returned typed from the call that needed the I/O and
 * changes nothing: a failed read leaves the page out of memory, a failed
 * write-back leaves the page dirty in the page cache, its data intact.
 */
void cow_engine_set_files(cow_engine *e, const struct cow_file_ops *ops, void *ctx);

/* ---- processes -------------------------------------------------------- */

#define COW_NAME_MAX 31

/*
 * Creates an empty address space. owner is an opaque tag kept with the
 * process and inherited by fork (the daemon stores the client's uid). name
 * may be NULL; longer names are truncated to COW_NAME_MAX bytes.
 */
int cow_engine_spawn(cow_engine *e, const char *name, uint32_t owner, cow_pid *ret_pid);

/*
 * Spawning with a shape of its own, for replays.
 *
 * max_resident limits the pages (real frames and zero-page mappings) this
 * process's page table holds present. At the limit, a fault that needs a
 * frame for it first evicts one of its own resident pages, chosen by policy
 * (local replacement, like a memory cgroup's limit): a zero-page mapping is
 * simply dropped; an anonymous page goes to swap, so with swap_slots = 0 that
 * access fails with -ENOMEM. Pages of shared mappings are never evicted.
 */
struct cow_spawn_args {
        const char *name;       /* may be NULL */
        uint32_t owner;
        uint64_t max_resident;  /* resident pages this process may hold; 0 = no limit */
        uint32_t tlb_entries;   /* 0 = the engine's */
        uint32_t tlb_ways;      /* with tlb_entries: 0 = fully associative */
        enum cow_policy policy; /* used when this process's own limit forces an eviction */
};

/* cow_engine_spawn() with args; -EINVAL for a bad TLB shape or policy. */
int cow_engine_spawn_args(cow_engine *e, const struct cow_spawn_args *args, cow_pid *ret_pid);

/*
 * Forks pid. The child copies the limit, TLB shape and policy. Private writable pages become copy-on-write in both; shared
 * mappings stay shared; read-only pages are shared. Costs the same whatever
 * the process's size: page-table nodes are shared and copied on demand.
 */
int cow_engine_fork(cow_engine *e, cow_pid pid, cow_pid *ret_child);

/*
 * Releases the process and everything it maps. Dirty pages of its shared file
 * mappings are written back first. The process ends even if a write-back
 * fails: those pages stay dirty in the page cache (counted in file_errors;
 * the file stays in use) until cow_engine_sync_files() or a later write-back
 * succeeds. Returns 0 or -ESRCH.
 */
int cow_engine_exit(cow_engine *e, cow_pid pid);

struct cow_proc_info {
        cow_pid pid;
        cow_pid ppid; /* 0 for a spawned process */
        uint32_t owner;
        char name[COW_NAME_MAX + 1];
        uint64_t rss_pages;
};

int cow_engine_proc_info(const cow_engine *e, cow_pid pid, struct cow_proc_info *ret);

/* The smallest live pid greater than after, or 0 when there is none. */
cow_pid cow_engine_proc_next(const cow_engine *e, cow_pid after);

/* ---- mappings --------------------------------------------------------- */

struct cow_mmap_args {
        uint64_t addr;   /* 0: the engine chooses */
        uint64_t length; /* bytes, > 0; rounded up to whole pages */
        unsigned prot;   /* COW_PROT_* */
        bool shared;     /* MAP_SHARED rather than MAP_PRIVATE */
        bool fixed;      /* replace whatever overlaps, as MAP_FIXED */
        enum cow_map_kind kind;
        /* COW_MAP_FILE: */
        const char *file_key; /* 1..max_file_key bytes; copied */
        uint64_t file_size;   /* the file's size in bytes now (the caller's stat),
                               * at most COW_FILE_SIZE_MAX */
        uint64_t offset;      /* FILE and DEVICE: where the mapping starts, page aligned */
        /* COW_MAP_DEVICE: */
        enum cow_device device;
};

/*
 * Maps a range. A non-zero addr must be page aligned and is taken exactly; an
 * overlap is refused with -EEXIST unless args->fixed asks for replacement
 * (dirty file pages in the replaced range are written back first; a failed
 * write-back fails the call and changes nothing).
 *
 * COW_MAP_FILE maps file_key from offset, through the page cache: every
 * mapping of one key, in any process, finds the same frame for a page.
 * Shared: a write is seen at once by every mapper and reaches the file on
 * msync, munmap, exit, cow_engine_sync_files() or eviction. Private: the
 * pages are the page cache's until this process writes one, which then gets
 * its own copy (a later shared write by another shows through only on pages
 * this process has not written); nothing reaches the file. Bytes past the end
 * of the file in its last page read as zero (bytes a shared mapper stores
 * there stay in memory while the page does, as on Linux, but never reach the
 * file); a page wholly beyond the end faults with COW_BUS_ADRERR, changing
 * nothing (mapping it is allowed, as on Linux). The key's
 * size is taken from the first mapping while the engine holds the file; a
 * later mapping giving another file_size is -EINVAL. A key longer than
 * max_file_key is -ENAMETOOLONG; an empty key, a size above
 * COW_FILE_SIZE_MAX, an unaligned offset or one whose pages overflow is
 * -EINVAL; more than max_files keys at once, -EMFILE.
 *
 * COW_MAP_DEVICE maps device from offset; offset + length must lie within
 * the device (its size rounded up to whole pages), else -EINVAL. A device
 * mapping is always shared, whatever args->shared says: a device has no
 * copy-on-write.
 */
int cow_engine_mmap(cow_engine *e, cow_pid pid, const struct cow_mmap_args *args,
                    uint64_t *ret_addr);

/*
 * Unmaps any page-aligned sub-range; splits mappings as needed. Dirty pages
 * of shared file mappings in the range are written back first; if a
 * write-back fails, the call returns its error and nothing is unmapped.
 */
int cow_engine_munmap(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length);

/*
 * Writes back the dirty pages of the shared file mappings in a page-aligned
 * range, which must be wholly mapped (-ENXIO); other mappings in it are
 * skipped. With sync, every file in the range that was written to since its
 * last sync is then synced (ops->sync) before the call returns. Returns 0 or
 * the first backend error (pages not written stay dirty).
 */
int cow_engine_msync(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length, bool sync);

/*
 * Writes back every dirty page of every file (at daemon shutdown) and, with
 * sync, syncs each file written since its last sync. Carries on past a
 * failure and returns the first error, or 0. Files no longer mapped and clean
 * leave the page cache.
 */
int cow_engine_sync_files(cow_engine *e, bool sync);

/*
 * Whether any mapping or any page in the page cache refers to key. While it
 * does, the caller must not replace or remove the file behind the key.
 */
bool cow_engine_file_in_use(const cow_engine *e, const char *key);

/* A device's size in bytes (the framebuffer: fb_width * fb_height * 4); 0 for no device. */
uint64_t cow_engine_device_bytes(const cow_engine *e, enum cow_device dev);

/*
 * Copies len bytes of a device's memory at offset into buf (a screenshot of
 * fb0). -EINVAL when the range is not within cow_engine_device_bytes().
 */
int cow_engine_device_read(cow_engine *e, enum cow_device dev, uint64_t offset, void *buf,
                           size_t len);

/*
 * The console log: every byte stored into a mapped console page, in the order
 * of the writes, whatever process made them, in a ring of console_log_bytes.
 * Positions count bytes since the engine began (checkpoints keep them), so
 * several readers can follow the log independently; reading takes nothing
 * away. cow_engine_console_read() copies up to len bytes from position pos
 * into buf and returns how many (0: nothing new); *ret_pos is the position of
 * the first byte copied: pos, or, when pos has already left the ring, the
 * oldest position still kept (the bytes between were lost).
 */
int cow_engine_console_read(const cow_engine *e, uint64_t pos, void *buf, size_t len,
                            uint64_t *ret_pos);

/* The position after the last byte written to the console. */
uint64_t cow_engine_console_end(const cow_engine *e);

/* Changes protection of a page-aligned range, which must be wholly mapped. */
int cow_engine_mprotect(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length,
                        unsigned prot);

/*
 * Advises on a page-aligned range, which must be wholly mapped (-ENXIO).
 * COW_MADV_DONTNEED drops the range's page-table entries: a private page
 * reads as zero again; a shared page keeps its data in its memory object.
 */
int cow_engine_madvise(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length,
                       enum cow_advice advice);

struct cow_map_info {
        uint64_t addr;
        uint64_t length;
        unsigned prot;
        bool shared;
        enum cow_map_kind kind;
        uint64_t offset;        /* FILE and DEVICE: bytes into the file or device */
        const char *file_key;   /* FILE: the key; NULL otherwise. Valid until the next
                                 * call that changes the engine. */
        enum cow_device device; /* DEVICE */
};

/*
 * Lists pid's mappings in address order, starting with the first that ends
 * after addr, into out[0..cap-1]. Returns how many were written (fewer than
 * cap: there are no more) or a negative errno.
 */
int cow_engine_maps(const cow_engine *e, cow_pid pid, uint64_t addr, struct cow_map_info *out,
                    size_t cap);

/* ---- memory access ---------------------------------------------------- */

/*
 * Reads or writes len bytes at addr through the process's TLB and page table.
 * Every page is checked before anything changes: on a fault the call returns
 * -EFAULT, fills *ret_fault (if given) with the first faulting address and
 * changes nothing; with no free frame it returns -ENOMEM, with the
 * page-table budget spent -ENOBUFS, and with the process's owner at its frame
 * quota -EDQUOT, again changing nothing (see "per-owner quotas" below).
 */
int cow_engine_read(cow_engine *e, cow_pid pid, uint64_t addr, void *buf, size_t len,
                    struct cow_fault *ret_fault);
int cow_engine_write(cow_engine *e, cow_pid pid, uint64_t addr, const void *buf, size_t len,
                     struct cow_fault *ret_fault);

/* ---- statistics and introspection -------------------------------------- */

struct cow_proc_stats {
        cow_pid pid;
        cow_pid ppid;
        uint64_t vsize_bytes;     /* sum of mapping lengths */
        uint64_t rss_pages;       /* pages mapped to a real frame (zero page excluded) */
        uint64_t pss_bytes;       /* each resident page's size divided by its sharers */
        uint64_t uss_pages;       /* resident pages no other process maps */
        uint64_t shared_pages;    /* resident pages some other process maps too */
        uint64_t zero_pages;      /* pages mapped to the zero page */
        uint64_t maps;            /* number of mappings */
        uint64_t faults_zero_map; /* read faults served by mapping the zero page */
        uint64_t faults_zero_fill;/* a frame allocated and cleared */
        uint64_t faults_cow_copy; /* a shared page copied on write */
        uint64_t faults_cow_reuse;/* a copy-on-write page reused: this process was the only user */
        uint64_t faults_segv;     /* accesses refused with a segmentation fault */
        uint64_t tlb_hits;
        uint64_t tlb_misses;
        uint64_t pt_bytes;        /* bytes of page-table nodes this process reaches */
        uint64_t faults_major;    /* faults served by reading the page from swap or a file */
        uint64_t faults_first_touch; /* faults on a page with no page-table entry at all */
        uint64_t swapped_pages;   /* entries of its page table that are swap entries */
        uint64_t max_resident;    /* its limit; 0 = none */
        uint64_t file_pages;      /* resident pages that are page-cache pages of a file */
        uint64_t dirty_pages;     /* of those, pages with writes not yet written back */
        uint64_t device_pages;    /* resident pages of a device */
        uint64_t writebacks;      /* pages its msync, munmap and exit wrote back */
        uint64_t faults_bus;      /* accesses refused beyond a mapped file's end */
};

int cow_engine_proc_stats(cow_engine *e, cow_pid pid, struct cow_proc_stats *ret);

struct cow_sys_stats {
        uint32_t page_size;
        uint64_t frames_total;     /* usable frames; the zero page is extra */
        uint64_t frames_used;
        uint64_t frames_free;
        uint64_t zero_page_maps;   /* page-table entries, over all processes, on the zero page */
        uint64_t cow_copies;
        uint64_t cow_reuses;
        uint64_t zero_fills;
        uint64_t zero_maps;
        uint64_t segv_faults;
        int64_t bytes_saved;       /* (resident virtual pages - frames used - device frames
                                    * mapped) * page size */
        uint64_t pt_bytes;         /* page-table memory actually allocated */
        uint64_t pt_nodes;
        uint64_t procs;            /* live processes */
        uint64_t procs_created;    /* spawned or forked over the engine's life */
        uint64_t tlb_hits;         /* over all processes, living and exited */
        uint64_t tlb_misses;
        uint32_t frame_meta_bytes; /* metadata bytes per frame */
        uint64_t swap_slots_total;
        uint64_t swap_slots_used;  /* slots holding a page some entry or the swap cache needs */
        uint64_t swap_ins;         /* pages read from swap */
        uint64_t swap_outs;        /* pages written to swap */
        uint64_t evictions;        /* frames taken back from their mappers */
        uint64_t swap_cache_hits;  /* swap faults that found the page still in memory */
        uint64_t oom_kills;
        uint64_t swap_errors;      /* backend calls that failed */
        uint64_t files;            /* files the engine holds: mapped, or with pages cached */
        uint64_t file_pages;       /* frames in the page cache (counted in frames_used) */
        uint64_t dirty_pages;      /* page-cache frames not yet written back */
        uint64_t writebacks;       /* pages written back to their files */
        uint64_t file_reads;       /* pages read from files */
        uint64_t file_errors;      /* file backend calls that failed */
        uint64_t bus_faults;       /* accesses refused beyond a mapped file's end */
        uint64_t device_frames;    /* frames of devices, outside frames_total */
        uint64_t console_bytes;    /* bytes written to the console since the start */
        uint64_t frame_quota_refusals; /* accesses refused: the owner at max_frames_per_owner */
        uint64_t swap_quota_refusals;  /* evictions refused: the owner at
                                        * max_swap_slots_per_owner */
        uint64_t charge_owners;        /* owners with a live process or a charge (0 when
                                        * charges are not kept) */
};

void cow_engine_sys_stats(cow_engine *e, struct cow_sys_stats *ret);

enum {
        COW_PAGE_MAPPED = 1u << 0,   /* inside a mapping */
        COW_PAGE_PRESENT = 1u << 1,  /* has a frame (possibly the zero page) */
        COW_PAGE_WRITABLE = 1u << 2, /* a write would proceed without a fault */
        COW_PAGE_COW = 1u << 3,      /* private, write-allowed, but write-protected: a write faults */
        COW_PAGE_ZERO = 1u << 4,     /* mapped to the zero page */
        COW_PAGE_IN_TLB = 1u << 5,   /* the process's TLB holds this page */
        COW_PAGE_SHARED = 1u << 6,   /* inside a MAP_SHARED mapping */
        COW_PAGE_SWAPPED = 1u << 7,  /* not present: its data is in swap slot swap_slot */
        COW_PAGE_FILE = 1u << 8,     /* present on a page-cache frame of a file */
        COW_PAGE_DIRTY = 1u << 9,    /* with FILE: written, not yet written back */
        COW_PAGE_DEVICE = 1u << 10,  /* present on a device frame (numbered above frames_total) */
};

struct cow_page_info {
        uint64_t addr;
        uint32_t frame;   /* frame number when present; 0 is the zero page */
        uint32_t sharers; /* processes mapping this frame (for the zero page: every
                           * mapping of it, all processes together); 0 when absent */
        uint32_t flags;   /* COW_PAGE_* */
        uint32_t prot;    /* the mapping's protection */
        uint64_t swap_slot; /* with COW_PAGE_SWAPPED */
};

/*
 * Describes npages pages from page-aligned addr into out[0..npages-1].
 * Pure introspection: no TLB counters move and nothing is faulted in.
 */
int cow_engine_page_map(cow_engine *e, cow_pid pid, uint64_t addr, size_t npages,
                        struct cow_page_info *out);

/*
 * Checks every internal invariant: frame reference counts against the page
 * tables, frames used against frames referenced, page-table node counts and
 * counters, mappings, and that no TLB entry disagrees with its page table.
 * Returns 0, or -EUCLEAN with a description in msg. For tests and debugging;
 * it walks everything.
 */
int cow_engine_verify(cow_engine *e, char *msg, size_t msglen);

/*
 * Writes into out[0..cap-1] the pids the OOM killer ended since the last call,
 * oldest first, and forgets them. Returns how many were written.
 */
int cow_engine_oom_victims(cow_engine *e, cow_pid *out, size_t cap);

/* ---- per-owner quotas ------------------------------------------------ */

/*
 * Charges, as Linux's memory cgroup makes them. They are kept only by an
 * engine created with max_frames_per_owner or max_swap_slots_per_owner set.
 *
 * A frame is charged to the owner of the process whose fault allocated it: a
 * zero fill, a copy-on-write copy, a swap-in into a new frame, a file page
 * read into the page cache, a page of shared memory touched first. It stays
 * charged to that owner while it lives, whoever else maps it (fork, a shared
 * or file mapping), and is uncharged when it is freed, whoever frees it. A
 * swap slot is charged to the owner of the frame written to it, and
 * uncharged when the slot is freed. The zero page and device frames are never
 * charged.
 *
 * At its frame quota an owner's access that would allocate frames fails with
 * -EDQUOT before anything changes; its pages are not pushed to swap to make
 * room (max_resident does that per process). At its swap-slot quota, the
 * frames charged to it that would need a new slot are not evicted: global
 * replacement passes them by, and a process of that owner at its
 * max_resident whose every candidate is such a frame fails with -EDQUOT.
 */

/*
 * What uid is charged for: frames and swap slots. -ENOENT when uid has no
 * process and no charge, -EOPNOTSUPP when charges are not kept.
 */
int cow_engine_owner_charge(const cow_engine *e, uint32_t uid, uint64_t *ret_frames,
                            uint64_t *ret_slots);

enum cow_quota {
        COW_QUOTA_NONE = 0,
        COW_QUOTA_FRAMES = 1,     /* max_frames_per_owner */
        COW_QUOTA_SWAP_SLOTS = 2, /* max_swap_slots_per_owner */
};

/* Which quota the latest -EDQUOT came from (COW_QUOTA_NONE before any). */
enum cow_quota cow_engine_last_quota(const cow_engine *e);

/*
 * Changes the quotas of a running engine (a reload). Charges already made
 * stay, even above a lowered quota: only new ones are refused. -EOPNOTSUPP
 * when the engine keeps no charges (it was created with both quotas 0) and a
 * quota is asked for; 0 otherwise.
 */
int cow_engine_set_quotas(cow_engine *e, uint64_t max_frames_per_owner,
                          uint64_t max_swap_slots_per_owner);

/* ---- checkpoints ----------------------------------------------------- */

/* Receives len bytes of a checkpoint: returns 0 or a negative errno. */
typedef int (*cow_sink_fn)(void *ctx, const void *buf, size_t len);

/* Supplies exactly len bytes: returns 0, -ENODATA at the end, or a negative errno. */
typedef int (*cow_source_fn)(void *ctx, void *buf, size_t len);

/*
 * Writes the whole simulated state: frames and their contents, processes,
 * page tables with their sharing intact, mappings and memory objects, TLB
 * contents and every counter. The format is versioned and ends with a
 * CRC-32 of everything before it. The page cache (keys, sizes, pages and
 * their dirty marks), file and device mappings, device memory and the console
 * log are saved too; nothing is written back. Returns 0 or the sink's error.
 */
int cow_engine_save(cow_engine *e, cow_sink_fn sink, void *ctx);

/*
 * Builds an engine from a checkpoint. cfg gives the limits; its memory size,
 * page size and TLB shape must match the checkpoint's. The restored engine
 * is indistinguishable from the one that saved it. A checkpoint holding
 * files needs cow_engine_set_files() afterwards, before any file I/O.
 * Returns 0, or:
 *   -EBADMSG          corrupt: bad magic, checksum, truncation, or contents
 *                     that break an invariant
 *   -EPROTONOSUPPORT  written by a format version this engine cannot read
 *   -EINVAL           the checkpoint does not fit cfg (framebuffer geometry and
 *                     console log size included)
 *   or the source's error. *ret_why (if given) says what, for people.
 */
int cow_engine_load(const struct cow_engine_config *cfg, cow_source_fn source, void *ctx,
                    cow_engine **ret, const char **ret_why);

/*
 * cow_engine_save() of an engine using swap also reads every swapped page
 * through its backend into the checkpoint (a read error is returned and
 * nothing is written past it). cow_engine_load_swap() restores such a
 * checkpoint, writing those pages back through ops/swap_ctx (which become the
 * new engine's backend, as by cow_engine_set_swap()). cow_engine_load() with
 * swap pages in the checkpoint fails with -EINVAL ("needs a swap backend").
 */
int cow_engine_load_swap(const struct cow_engine_config *cfg, cow_source_fn source, void *ctx,
                         const struct cow_swap_ops *ops, void *swap_ctx, cow_engine **ret,
                         const char **ret_why);

#ifdef __cplusplus
}
#endif

#endif /* COWD_ENGINE_H */
