/* SPDX-License-Identifier: MIT */
#include "process.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t proc_table_upper(const struct proc_table *t, cow_pid after)
{
        uint32_t lo = 0, hi = t->n;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (t->v[mid]->pid <= after)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

struct cow_proc *proc_table_find(const struct proc_table *t, cow_pid pid)
{
        if (pid == 0)
                return NULL;
        uint32_t i = proc_table_upper(t, pid - 1);
        return i < t->n && t->v[i]->pid == pid ? t->v[i] : NULL;
}

int proc_table_append(struct proc_table *t, struct cow_proc *p)
{
        if (t->n == t->cap) {
                uint32_t cap = t->cap ? t->cap * 2 : 16;
                struct cow_proc **v = realloc(t->v, (size_t)cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                t->v = v;
                t->cap = cap;
        }
        t->v[t->n++] = p;
        return 0;
}

void proc_table_remove(struct proc_table *t, cow_pid pid)
{
        uint32_t i = proc_table_upper(t, pid - 1);
        if (i < t->n && t->v[i]->pid == pid) {
                memmove(&t->v[i], &t->v[i + 1], (size_t)(t->n - i - 1) * sizeof(*t->v));
                t->n--;
        }
}

void proc_table_fini(struct proc_table *t)
{
        free(t->v);
        *t = (struct proc_table){ 0 };
}
