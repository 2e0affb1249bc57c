/* SPDX-License-Identifier: MIT */
/*
 * Running parsed scripts (script.h) against a daemon: variables, loops,
 * echo and expect. Shared by `cowctl run` and the interactive shell.
 */
#ifndef COWCTL_SCRIPT_RUN_H
#define COWCTL_SCRIPT_RUN_H

#include <stdbool.h>

#include "cmd.h"
#include "script.h"

struct script_var;

struct script_env {
        struct cmd_ctx *ctx;
        const char *file;         /* prefix for messages; NULL in the shell */
        struct script_var *vars;
        size_t nvars;
};

/* The syntax the parser should accept: cowctl's commands and failure names. */
const struct script_syntax *script_run_syntax(void);

/*
 * Runs the statements in order. Stops at the first command that fails
 * (outside an expect) or the first expectation that does not hold, prints
 * "FILE:LINE: what happened" on stderr and returns -ECANCELED; returns 0
 * when everything ran. Variables stay in env for the next call (the shell).
 */
int script_run(struct script_env *env, const struct script_stmt *s);

/* Frees the variables. */
void script_env_release(struct script_env *env);

#endif /* COWCTL_SCRIPT_RUN_H */
