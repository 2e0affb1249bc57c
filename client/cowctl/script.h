/* SPDX-License-Identifier: MIT */
/*
 * The cowctl script language: parsing only. script_parse() turns source
 * text into a list of statements and does no I/O, so it can be fuzzed and
 * so a script with a syntax error is refused before anything runs.
 *
 * Grammar (one statement per line, or several separated by ';'):
 *
 *   stmt     := call | VAR '=' (call | expr) | 'repeat' expr '{' stmt* '}'
 *             | 'echo' arg* | 'expect' expectation
 *   call     := COMMAND arg*                   (the commands of cowctl)
 *   expectation := call ('fails' [NAME] | 'succeeds' | CMP expr)
 *             | 'pagemap' expr expr FLAG+      (FLAG: present, !cow, ...)
 *             | expr CMP expr
 *   arg      := expr | OPTION                  (--shared, --addr, -o)
 *   expr     := term (('+' | '-') term)*
 *   term     := atom ('*' atom)*
 *   atom     := NUMBER | STRING | VAR | WORD | '(' expr ')'
 *             | 'sys.'FIELD | 'proc.'ID'.'FIELD | 'page.'ID'.'ID'.'FIELD
 *             | 'proc(' expr ')' '.'FIELD | 'page(' expr ',' expr ')' '.'FIELD
 *             | 'zeros(' expr ')'
 *   CMP      := '==' | '!=' | '<' | '<=' | '>' | '>='
 *
 * NUMBER is 42, 0x1000, 4K, 1M, 2G; STRING is "..." with \n \t \r \0 \\ \"
 * \xHH; VAR is $name; ID is a number or a $name; '#' starts a comment.
 * An OPTION is a word starting with '-' after a space; elsewhere '-' is
 * subtraction. '+' with a string on either side joins (evaluation decides).
 */
#ifndef COWCTL_SCRIPT_H
#define COWCTL_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum script_expr_kind {
        EXPR_NUMBER, /* num, hex */
        EXPR_STRING, /* text[0..len): bytes, may hold NULs */
        EXPR_WORD,   /* text: a bare word taken literally (rw, --shared, @file) */
        EXPR_VAR,    /* text: the name without '$' */
        EXPR_ADD,    /* a + b */
        EXPR_SUB,    /* a - b */
        EXPR_MUL,    /* a * b */
        EXPR_SYS,    /* text: a SysStats field */
        EXPR_PROC,   /* a: pid; text: a ProcStats field */
        EXPR_PAGE,   /* a: pid, b: address; text: a PageEntry field */
        EXPR_ZEROS,  /* a: length; a string of that many zero bytes */
};

struct script_expr {
        enum script_expr_kind kind;
        char *text;
        size_t len;
        uint64_t num;
        bool hex;
        struct script_expr *a, *b;
};

struct script_call {
        char *name;
        struct script_expr **args;
        size_t nargs;
};

enum script_cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

enum script_stmt_kind {
        STMT_CALL,   /* call */
        STMT_ASSIGN, /* var = call, or var = lhs */
        STMT_REPEAT, /* repeat count { body } */
        STMT_ECHO,   /* echo args */
        STMT_EXPECT, /* expect ...; see expect */
};

enum script_expect_kind {
        EXPECT_COMPARE,  /* (call or lhs) cmp rhs */
        EXPECT_FAILS,    /* call fails [fails] */
        EXPECT_SUCCEEDS, /* call succeeds */
        EXPECT_PAGE,     /* pagemap args[0] args[1] flags */
};

struct script_stmt {
        enum script_stmt_kind kind;
        int line;
        char *source;                  /* the statement as written, for messages */
        char *var;                     /* STMT_ASSIGN: name without '$' */
        struct script_call *call;      /* STMT_CALL, STMT_ASSIGN from a call, STMT_EXPECT */
        struct script_expr *lhs, *rhs; /* STMT_ASSIGN value; EXPECT_COMPARE sides */
        enum script_cmp cmp;
        enum script_expect_kind expect;
        char *fails;                   /* EXPECT_FAILS: a status or fault name, or NULL */
        struct script_expr **args;     /* STMT_ECHO; EXPECT_PAGE (pid, address) */
        size_t nargs;
        char **flags;                  /* EXPECT_PAGE: "cow", "!writable", ... */
        size_t nflags;
        struct script_expr *count;     /* STMT_REPEAT */
        struct script_stmt *body;      /* STMT_REPEAT */
        struct script_stmt *next;
};

struct script_syntax {
        const char *const *commands;                /* NULL-terminated command names */
        bool (*failure_name_ok)(const char *name);  /* for 'fails NAME'; NULL accepts all */
};

struct script_error {
        int line;
        char msg[256];
};

/*
 * Parses src[0..len) (which need not be NUL-terminated and may hold any
 * bytes). On success returns 0 and sets *ret to the first statement (NULL
 * for an empty script); free it with script_free(). On a syntax error
 * returns -EINVAL with err->line and err->msg set; -ENOMEM if memory ran out.
 */
int script_parse(const char *src, size_t len, const struct script_syntax *syn,
                 struct script_stmt **ret, struct script_error *err);

/* Frees a statement list. Accepts NULL. */
void script_free(struct script_stmt *s);

/* The page flags 'expect pagemap' knows, NULL-terminated. */
extern const char *const script_page_flags[];

/* "==" for CMP_EQ, ... */
const char *script_cmp_name(enum script_cmp c);

#endif /* COWCTL_SCRIPT_H */
