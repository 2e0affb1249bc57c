/* SPDX-License-Identifier: MIT */
/*
 * Memory access through a process's TLB and page table, and the page-fault
 * handler behind it. Outcomes are named as in Linux's fault path: a read of
 * an untouched private page maps the zero page (zero map); a first write
 * allocates a cleared frame (zero fill); a write to a write-protected private
 * page either reuses it, when this process is its only user, or copies it.
 */
#ifndef COWD_ENGINE_FAULT_H
#define COWD_ENGINE_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cow_engine;
struct cow_proc;
struct cow_fault;

/*
 * Reads (write false) or writes len bytes at addr, copying between buf and
 * the simulated memory. All pages are checked first: a fault returns -EFAULT
 * with *ret_fault filled; a shortage of frames returns -ENOMEM, of page-table
 * budget -ENOBUFS; in each case nothing has changed.
 */
int fault_access(struct cow_engine *e, struct cow_proc *p, uint64_t addr, uint8_t *buf,
                 size_t len, bool write, struct cow_fault *ret_fault);

#endif /* COWD_ENGINE_FAULT_H */
