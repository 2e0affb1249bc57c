/* SPDX-License-Identifier: MIT */
/*
 * A simulated process: an address space (page-table root and mappings), its
 * TLB and its fault counters; and the table of live processes, kept sorted by
 * pid (pids only grow, so a new process is always appended).
 */
#ifndef COWD_ENGINE_PROCESS_H
#define COWD_ENGINE_PROCESS_H

#include <cowd/engine.h>

#include "tlb.h"
#include "vma.h"

struct pt_node;

struct proc_faults {
        uint64_t zero_map;
        uint64_t zero_fill;
        uint64_t cow_copy;
        uint64_t cow_reuse;
        uint64_t segv;
        uint64_t major;       /* served by a read from swap */
        uint64_t first_touch; /* the entry was empty */
        uint64_t bus;         /* beyond a mapped file's end */
};

struct cow_proc {
        cow_pid pid;
        cow_pid ppid;
        uint32_t owner;
        uint16_t charge;        /* its owner's entry in the charge table; 0 when not kept */
        char name[COW_NAME_MAX + 1];
        struct pt_node *root;
        struct vma_set vmas;
        struct tlb tlb;
        struct proc_faults faults;
        uint64_t max_resident;  /* 0 = no limit */
        enum cow_policy policy; /* for local replacement */
        uint64_t clock_hand;    /* local clock: the next page number it looks at */
        uint64_t writebacks;    /* pages its msync, munmap and exit wrote back */
};

struct proc_table {
        struct cow_proc **v;
        uint32_t n, cap;
};

struct cow_proc *proc_table_find(const struct proc_table *t, cow_pid pid);

/* Index of the first process with a pid greater than after. */
uint32_t proc_table_upper(const struct proc_table *t, cow_pid after);

/* Appends p, whose pid is greater than every pid in the table. */
int proc_table_append(struct proc_table *t, struct cow_proc *p);

void proc_table_remove(struct proc_table *t, cow_pid pid);

void proc_table_fini(struct proc_table *t);

#endif /* COWD_ENGINE_PROCESS_H */
