/* SPDX-License-Identifier: MIT */
#include "repl.h"

#include <editline/readline.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script-run.h"
#include "script.h"

#define HISTORY_FILE ".cowctl_history"
#define HISTORY_MAX 1000

/*
 * Tab completion of command and keyword names. readline calls this with
 * state 0 first and then 1, 2, ... until it returns NULL, so the position
 * has to outlive the call: readline's interface leaves no other place.
 */
static char *complete_word(const char *text, int state)
{
        static const char *const keywords[] = { "repeat", "echo", "expect", "quit", "help", NULL };
        static size_t index;
        const char *const *cmds = cmd_names();
        size_t ncmds = 0, len = strlen(text);

        while (cmds[ncmds])
                ncmds++;
        if (state == 0)
                index = 0;
        while (index < ncmds + 5) {
                const char *w = index < ncmds ? cmds[index] : keywords[index - ncmds];
                index++;
                if (w && strncmp(w, text, len) == 0)
                        return strdup(w);
        }
        return NULL;
}

/* Braces still open at the end of text, ignoring strings and comments. */
static int open_braces(const char *text)
{
        int depth = 0;
        bool in_string = false;
        for (const char *p = text; *p; p++) {
                if (in_string) {
                        if (*p == '\\' && p[1])
                                p++;
                        else if (*p == '"')
                                in_string = false;
                } else if (*p == '"') {
                        in_string = true;
                } else if (*p == '#') {
                        while (p[1] && p[1] != '\n')
                                p++;
                } else if (*p == '{') {
                        depth++;
                } else if (*p == '}') {
                        depth--;
                }
        }
        return depth;
}

static void print_help(void)
{
        printf("Commands (as on the command line):\n");
        cmd_print_help(stdout);
        printf("Script statements:\n"
               "  $x = COMMAND ... | EXPR        keep a result (pid, address, bytes, number)\n"
               "  repeat N { ... }               loop; $i counts from 0\n"
               "  echo ...                       print words and values\n"
               "  expect COMMAND ... fails [NAME] | succeeds | == VALUE\n"
               "  expect EXPR == EXPR            sys.FIELD, proc.$p.FIELD, page.$p.$a.FIELD\n"
               "  expect pagemap PID ADDR FLAG...  present, cow, zero, shared, !writable, ...\n"
               "  quit                           leave (or Ctrl-D)\n");
}

/* Appends line (and a newline) to *buf. */
static int append(char **buf, size_t *len, const char *line)
{
        size_t n = strlen(line);
        char *p = realloc(*buf, *len + n + 2);
        if (!p)
                return -ENOMEM;
        memcpy(p + *len, line, n);
        p[*len + n] = '\n';
        p[*len + n + 1] = '\0';
        *buf = p;
        *len += n + 1;
        return 0;
}

int repl_run(struct cmd_ctx *ctx)
{
        struct script_env env = { .ctx = ctx, .file = NULL };
        char history[PATH_MAX] = "";
        char *pending = NULL;
        size_t pending_len = 0;
        const char *home = getenv("HOME");

        rl_readline_name = "cowctl";
        rl_completion_entry_function = complete_word;
        using_history();
        stifle_history(HISTORY_MAX);
        if (home && (size_t)snprintf(history, sizeof(history), "%s/%s", home, HISTORY_FILE) <
                            sizeof(history))
                read_history(history);
        else
                history[0] = '\0';

        printf("cowctl shell: commands as on the command line, plus the script language.\n"
               "Type 'help' for the list, 'quit' or Ctrl-D to leave.\n");
        for (;;) {
                char *line = readline(pending ? "....> " : "cowd> ");
                if (!line)
                        break;
                const char *t = line + strspn(line, " \t");
                if (!pending && (strcmp(t, "quit") == 0 || strcmp(t, "q") == 0)) {
                        free(line);
                        break;
                }
                if (!pending && strcmp(t, "help") == 0) {
                        print_help();
                        add_history(line);
                        free(line);
                        continue;
                }
                if (*t)
                        add_history(line);
                int r = append(&pending, &pending_len, line);
                free(line);
                if (r < 0)
                        break;
                /* A repeat block runs once its braces close. */
                if (open_braces(pending) > 0)
                        continue;

                struct script_stmt *script = NULL;
                struct script_error perr;
                if (script_parse(pending, pending_len, script_run_syntax(), &script, &perr) < 0)
                        fprintf(stderr, "error: %s\n", perr.msg);
                else
                        script_run(&env, script); /* failures are printed; carry on */
                script_free(script);
                free(pending);
                pending = NULL;
                pending_len = 0;
                fflush(stdout);
        }
        free(pending);
        if (history[0])
                write_history(history);
        script_env_release(&env);
        putchar('\n');
        return 0;
}
