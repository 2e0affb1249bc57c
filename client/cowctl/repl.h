/* SPDX-License-Identifier: MIT */
/* The interactive shell: the script language, a line at a time, with history. */
#ifndef COWCTL_REPL_H
#define COWCTL_REPL_H

#include "cmd.h"

/*
 * Reads statements from the terminal until end of input or "quit" and runs
 * each as it is complete (a repeat block runs at its closing '}').
 * Failures are printed and the shell carries on. Returns 0.
 */
int repl_run(struct cmd_ctx *ctx);

#endif /* COWCTL_REPL_H */
