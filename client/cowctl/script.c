/* SPDX-License-Identifier: MIT */
/*
 * Script parser: a lexer that turns the whole source into tokens, then a
 * recursive-descent parser over them. No I/O; every failure is a message.
 */
#include "script.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

/* Nesting deeper than this is refused: it bounds the parser's recursion. */
#define MAX_DEPTH 64

const char *const script_page_flags[] = {
        "mapped", "present", "writable", "cow", "zero", "shared", "in_tlb", "file", "dirty",
        "device", NULL,
};

enum tok_kind {
        TOK_EOF,
        TOK_NEWLINE,
        TOK_SEMI,
        TOK_WORD,
        TOK_OPTION,
        TOK_NUMBER,
        TOK_STRING,
        TOK_VAR,
        TOK_LBRACE,
        TOK_RBRACE,
        TOK_LPAREN,
        TOK_RPAREN,
        TOK_COMMA,
        TOK_ASSIGN,
        TOK_PLUS,
        TOK_MINUS,
        TOK_STAR,
        TOK_EQ,
        TOK_NE,
        TOK_LT,
        TOK_LE,
        TOK_GT,
        TOK_GE,
};

struct token {
        enum tok_kind kind;
        int line;
        bool spaced;      /* whitespace (or line start) before it */
        size_t start, end; /* source offsets */
        char *text;       /* WORD, OPTION, NUMBER, VAR (without '$'), STRING (decoded) */
        size_t len;       /* STRING: decoded length */
};

struct parser {
        const char *src;
        size_t srclen;
        struct token *toks;
        size_t ntoks, cap, pos;
        const struct script_syntax *syn;
        struct script_error *err;
        int depth;
};

static int fail(struct parser *p, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, int line, const char *fmt, ...)
{
        va_list ap;
        /* The first error is the one to report. */
        if (p->err->msg[0])
                return -EINVAL;
        p->err->line = line;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* ---- lexer ---------------------------------------------------------------- */

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_word_start(char c)
{
        return is_alpha(c) || c == '.' || c == '/' || c == '@' || c == '~';
}

static bool is_word_char(char c)
{
        return is_word_start(c) || is_digit(c) || c == '-' || c == ':' || c == '$';
}

static int push_token(struct parser *p, struct token t)
{
        if (p->ntoks == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 128;
                struct token *n = realloc(p->toks, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                p->toks = n;
                p->cap = cap;
        }
        p->toks[p->ntoks++] = t;
        return 0;
}

static int hexdigit(char c)
{
        if (is_digit(c))
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes the string starting at src[*i] == '"'; leaves *i after the closing quote. */
static int lex_string(struct parser *p, size_t *i, int line, struct token *t)
{
        const char *s = p->src;
        size_t n = p->srclen, o = 0;
        char *buf = malloc(n - *i + 1); /* decoded text is never longer than the source */
        if (!buf)
                return -ENOMEM;
        size_t k = *i + 1;
        for (;;) {
                if (k >= n || s[k] == '\n') {
                        free(buf);
                        return fail(p, line, "unterminated string");
                }
                char c = s[k++];
                if (c == '"')
                        break;
                if (c != '\\') {
                        buf[o++] = c;
                        continue;
                }
                if (k >= n) {
                        free(buf);
                        return fail(p, line, "unterminated string");
                }
                c = s[k++];
                switch (c) {
                case 'n': buf[o++] = '\n'; break;
                case 't': buf[o++] = '\t'; break;
                case 'r': buf[o++] = '\r'; break;
                case '0': buf[o++] = '\0'; break;
                case '\\': buf[o++] = '\\'; break;
                case '"': buf[o++] = '"'; break;
                case 'x': {
                        int hi = k < n ? hexdigit(s[k]) : -1;
                        int lo = k + 1 < n ? hexdigit(s[k + 1]) : -1;
                        if (hi < 0 || lo < 0) {
                                free(buf);
                                return fail(p, line, "\\x needs two hex digits");
                        }
                        buf[o++] = (char)(hi << 4 | lo);
                        k += 2;
                        break;
                }
                default:
                        free(buf);
                        if (c >= 0x20 && c < 0x7f)
                                return fail(p, line, "unknown escape '\\%c' in string", c);
                        return fail(p, line, "unknown escape in string");
                }
        }
        buf[o] = '\0';
        t->text = buf;
        t->len = o;
        *i = k;
        return 0;
}

static char *dup_range(const char *s, size_t a, size_t b)
{
        char *d = malloc(b - a + 1);
        if (d) {
                memcpy(d, s + a, b - a);
                d[b - a] = '\0';
        }
        return d;
}

static int lex(struct parser *p)
{
        const char *s = p->src;
        size_t n = p->srclen, i = 0;
        int line = 1;
        bool spaced = true;

        while (i < n) {
                char c = s[i];
                if (c == ' ' || c == '\t' || c == '\r') {
                        i++;
                        spaced = true;
                        continue;
                }
                if (c == '\\' && i + 1 < n && s[i + 1] == '\n') {
                        /* A backslash at the end of a line continues the statement. */
                        i += 2;
                        line++;
                        spaced = true;
                        continue;
                }
                if (c == '#') {
                        while (i < n && s[i] != '\n')
                                i++;
                        continue;
                }

                struct token t = { .line = line, .spaced = spaced, .start = i };
                int r = 0;
                if (c == '\n') {
                        t.kind = TOK_NEWLINE;
                        i++;
                        line++;
                } else if (c == '"') {
                        t.kind = TOK_STRING;
                        r = lex_string(p, &i, line, &t);
                } else if (c == '$') {
                        size_t k = i + 1;
                        if (k >= n || !is_alpha(s[k]))
                                return fail(p, line, "'$' must be followed by a variable name");
                        while (k < n && (is_alpha(s[k]) || is_digit(s[k])))
                                k++;
                        t.kind = TOK_VAR;
                        t.text = dup_range(s, i + 1, k);
                        r = t.text ? 0 : -ENOMEM;
                        i = k;
                } else if (is_digit(c)) {
                        size_t k = i;
                        while (k < n && (is_alpha(s[k]) || is_digit(s[k])))
                                k++;
                        t.kind = TOK_NUMBER;
                        t.text = dup_range(s, i, k);
                        r = t.text ? 0 : -ENOMEM;
                        i = k;
                } else if (c == '-' && spaced && i + 1 < n && (is_alpha(s[i + 1]) || s[i + 1] == '-')) {
                        /* An option: "-o", "--addr", "--addr=0x1000". */
                        size_t k = i;
                        while (k < n && s[k] != ' ' && s[k] != '\t' && s[k] != '\r' &&
                               s[k] != '\n' && s[k] != '#' && s[k] != ';' && s[k] != '"' &&
                               s[k] != '{' && s[k] != '}' && s[k] != '(' && s[k] != ')')
                                k++;
                        t.kind = TOK_OPTION;
                        t.text = dup_range(s, i, k);
                        r = t.text ? 0 : -ENOMEM;
                        i = k;
                } else if (is_word_start(c) || (c == '!' && i + 1 < n && is_alpha(s[i + 1]))) {
                        size_t k = i + 1;
                        while (k < n && is_word_char(s[k]))
                                k++;
                        t.kind = TOK_WORD;
                        t.text = dup_range(s, i, k);
                        r = t.text ? 0 : -ENOMEM;
                        i = k;
                } else {
                        bool two = i + 1 < n && s[i + 1] == '=';
                        i++;
                        switch (c) {
                        case ';': t.kind = TOK_SEMI; break;
                        case '{': t.kind = TOK_LBRACE; break;
                        case '}': t.kind = TOK_RBRACE; break;
                        case '(': t.kind = TOK_LPAREN; break;
                        case ')': t.kind = TOK_RPAREN; break;
                        case ',': t.kind = TOK_COMMA; break;
                        case '+': t.kind = TOK_PLUS; break;
                        case '-': t.kind = TOK_MINUS; break;
                        case '*': t.kind = TOK_STAR; break;
                        case '=': t.kind = two ? TOK_EQ : TOK_ASSIGN; break;
                        case '<': t.kind = two ? TOK_LE : TOK_LT; break;
                        case '>': t.kind = two ? TOK_GE : TOK_GT; break;
                        case '!':
                                if (!two)
                                        return fail(p, line, "'!' must be followed by '=' or a flag name");
                                t.kind = TOK_NE;
                                break;
                        default:
                                if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                                        return fail(p, line, "unexpected character '%c'", c);
                                return fail(p, line,
                                            "unexpected byte 0x%02x (put text in \"quotes\")",
                                            (unsigned char)c);
                        }
                        if (two && t.kind != TOK_ASSIGN)
                                i++;
                }
                if (r < 0)
                        return r;
                t.end = i;
                r = push_token(p, t);
                if (r < 0) {
                        free(t.text);
                        return r;
                }
                spaced = c == '\n';
        }
        return push_token(p, (struct token){ .kind = TOK_EOF, .line = line, .spaced = true,
                                             .start = n, .end = n });
}

/* ---- parser --------------------------------------------------------------- */

static const struct token *peek(const struct parser *p)
{
        return &p->toks[p->pos];
}

static const struct token *peek2(const struct parser *p)
{
        return p->pos + 1 < p->ntoks ? &p->toks[p->pos + 1] : &p->toks[p->ntoks - 1];
}

static const struct token *next(struct parser *p)
{
        const struct token *t = &p->toks[p->pos];
        if (t->kind != TOK_EOF)
                p->pos++;
        return t;
}

static bool is_word(const struct token *t, const char *w)
{
        return t->kind == TOK_WORD && strcmp(t->text, w) == 0;
}

static bool is_command(const struct parser *p, const char *name)
{
        for (const char *const *c = p->syn->commands; c && *c; c++)
                if (strcmp(*c, name) == 0)
                        return true;
        return false;
}

static bool is_cmp(enum tok_kind k)
{
        return k == TOK_EQ || k == TOK_NE || k == TOK_LT || k == TOK_LE || k == TOK_GT ||
               k == TOK_GE;
}

static enum script_cmp cmp_of(enum tok_kind k)
{
        switch (k) {
        case TOK_NE: return CMP_NE;
        case TOK_LT: return CMP_LT;
        case TOK_LE: return CMP_LE;
        case TOK_GT: return CMP_GT;
        case TOK_GE: return CMP_GE;
        default: return CMP_EQ;
        }
}

const char *script_cmp_name(enum script_cmp c)
{
        static const char *const names[] = { "==", "!=", "<", "<=", ">", ">=" };
        return names[c];
}

static bool ends_statement(enum tok_kind k)
{
        return k == TOK_NEWLINE || k == TOK_SEMI || k == TOK_EOF || k == TOK_RBRACE;
}

static const char *describe(const struct token *t)
{
        switch (t->kind) {
        case TOK_EOF: return "the end of the script";
        case TOK_NEWLINE: return "the end of the line";
        case TOK_SEMI: return "';'";
        case TOK_LBRACE: return "'{'";
        case TOK_RBRACE: return "'}'";
        case TOK_LPAREN: return "'('";
        case TOK_RPAREN: return "')'";
        case TOK_COMMA: return "','";
        case TOK_ASSIGN: return "'='";
        case TOK_STRING: return "a string";
        case TOK_PLUS: return "'+'";
        case TOK_MINUS: return "'-'";
        case TOK_STAR: return "'*'";
        case TOK_EQ: return "'=='";
        case TOK_NE: return "'!='";
        case TOK_LT: return "'<'";
        case TOK_LE: return "'<='";
        case TOK_GT: return "'>'";
        case TOK_GE: return "'>='";
        default: return t->text ? t->text : "an operator";
        }
}

static void expr_free(struct script_expr *e)
{
        if (!e)
                return;
        expr_free(e->a);
        expr_free(e->b);
        free(e->text);
        free(e);
}

static struct script_expr *expr_new(enum script_expr_kind kind)
{
        struct script_expr *e = calloc(1, sizeof(*e));
        if (e)
                e->kind = kind;
        return e;
}

static void exprs_free(struct script_expr **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                expr_free(v[i]);
        free(v);
}

static int exprs_push(struct script_expr ***v, size_t *n, struct script_expr *e)
{
        struct script_expr **nv = realloc(*v, (*n + 1) * sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        nv[(*n)++] = e;
        *v = nv;
        return 0;
}

static bool valid_field(const char *f)
{
        if (!*f || !is_alpha(*f))
                return false;
        for (; *f; f++)
                if (!is_alpha(*f) && !is_digit(*f))
                        return false;
        return true;
}

static int parse_expr(struct parser *p, struct script_expr **ret);

/* One component of proc.ID.field: "$name" or a number. */
static int parse_id(struct parser *p, int line, const char *s, size_t len,
                    struct script_expr **ret)
{
        struct script_expr *e = NULL;
        char buf[64];
        if (len == 0 || len >= sizeof(buf))
                return fail(p, line, "expected a number or $variable in a dotted name");
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (buf[0] == '$') {
                if (!valid_field(buf + 1))
                        return fail(p, line, "bad variable name '%s'", buf);
                e = expr_new(EXPR_VAR);
                if (!e || !(e->text = strdup(buf + 1))) {
                        expr_free(e);
                        return -ENOMEM;
                }
        } else {
                uint64_t v;
                if (args_parse_size(buf, &v) < 0)
                        return fail(p, line, "'%s' is not a number or $variable", buf);
                e = expr_new(EXPR_NUMBER);
                if (!e)
                        return -ENOMEM;
                e->num = v;
        }
        *ret = e;
        return 0;
}

/* sys.FIELD, proc.ID.FIELD, page.ID.ID.FIELD written as one word. */
static int parse_dotted(struct parser *p, const struct token *t, struct script_expr **ret)
{
        const char *w = t->text;
        struct script_expr *e = NULL;
        const char *parts[5];
        size_t lens[5], n = 0;
        int r;

        for (const char *s = w;;) {
                const char *dot = strchr(s, '.');
                if (n == 5)
                        return fail(p, t->line, "too many '.' in '%s'", w);
                parts[n] = s;
                lens[n++] = dot ? (size_t)(dot - s) : strlen(s);
                if (!dot)
                        break;
                s = dot + 1;
        }
        enum script_expr_kind kind = strncmp(w, "sys.", 4) == 0    ? EXPR_SYS
                                     : strncmp(w, "proc.", 5) == 0 ? EXPR_PROC
                                                                   : EXPR_PAGE;
        size_t want = kind == EXPR_SYS ? 2 : kind == EXPR_PROC ? 3 : 4;
        if (n != want)
                return fail(p, t->line, "'%s': expected %s", w,
                            kind == EXPR_SYS    ? "sys.FIELD"
                            : kind == EXPR_PROC ? "proc.PID.FIELD"
                                                : "page.PID.ADDR.FIELD");
        e = expr_new(kind);
        if (!e)
                return -ENOMEM;
        e->text = strdup(parts[n - 1]);
        if (!e->text) {
                r = -ENOMEM;
                goto fail;
        }
        if (!valid_field(e->text)) {
                r = fail(p, t->line, "'%s' is not a field name", e->text);
                goto fail;
        }
        if (n >= 3 && (r = parse_id(p, t->line, parts[1], lens[1], &e->a)) < 0)
                goto fail;
        if (n >= 4 && (r = parse_id(p, t->line, parts[2], lens[2], &e->b)) < 0)
                goto fail;
        *ret = e;
        return 0;
fail:
        expr_free(e);
        return r;
}

/* proc(E).field, page(E, E).field, zeros(E): the word has been consumed. */
static int parse_function(struct parser *p, const struct token *w, struct script_expr **ret)
{
        enum script_expr_kind kind = strcmp(w->text, "proc") == 0   ? EXPR_PROC
                                     : strcmp(w->text, "page") == 0 ? EXPR_PAGE
                                                                    : EXPR_ZEROS;
        struct script_expr *e = expr_new(kind);
        int r;

        if (!e)
                return -ENOMEM;
        next(p); /* '(' */
        if ((r = parse_expr(p, &e->a)) < 0)
                goto fail;
        if (kind == EXPR_PAGE) {
                if (next(p)->kind != TOK_COMMA) {
                        r = fail(p, w->line, "page(PID, ADDR) needs two arguments");
                        goto fail;
                }
                if ((r = parse_expr(p, &e->b)) < 0)
                        goto fail;
        }
        const struct token *close = next(p);
        if (close->kind != TOK_RPAREN) {
                r = fail(p, close->line, "expected ')' but found %s", describe(close));
                goto fail;
        }
        if (kind != EXPR_ZEROS) {
                const struct token *f = peek(p);
                if (f->kind != TOK_WORD || f->spaced || f->text[0] != '.' ||
                    !valid_field(f->text + 1)) {
                        r = fail(p, close->line, "%s(...) must be followed by .FIELD", w->text);
                        goto fail;
                }
                next(p);
                e->text = strdup(f->text + 1);
                if (!e->text) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        *ret = e;
        return 0;
fail:
        expr_free(e);
        return r;
}

static int parse_atom(struct parser *p, struct script_expr **ret)
{
        const struct token *t = peek(p);
        struct script_expr *e = NULL;
        int r;

        switch (t->kind) {
        case TOK_NUMBER: {
                uint64_t v;
                if (args_parse_size(t->text, &v) < 0) {
                        /*
                         * Not a number, yet a word that starts with a digit: hex data
                         * after --hex, say. The command judges it; arithmetic refuses it.
                         */
                        next(p);
                        if (!(e = expr_new(EXPR_WORD)) || !(e->text = strdup(t->text))) {
                                expr_free(e);
                                return -ENOMEM;
                        }
                        e->len = strlen(t->text);
                        break;
                }
                next(p);
                if (!(e = expr_new(EXPR_NUMBER)))
                        return -ENOMEM;
                e->num = v;
                e->hex = t->text[0] == '0' && (t->text[1] == 'x' || t->text[1] == 'X');
                break;
        }
        case TOK_STRING:
        case TOK_VAR:
        case TOK_OPTION:
                next(p);
                if (!(e = expr_new(t->kind == TOK_STRING ? EXPR_STRING
                                   : t->kind == TOK_VAR  ? EXPR_VAR
                                                         : EXPR_WORD)))
                        return -ENOMEM;
                e->len = t->kind == TOK_STRING ? t->len : strlen(t->text);
                if (!(e->text = malloc(e->len + 1))) {
                        expr_free(e);
                        return -ENOMEM;
                }
                memcpy(e->text, t->text, e->len + 1);
                break;
        case TOK_LPAREN:
                if (++p->depth > MAX_DEPTH)
                        return fail(p, t->line, "expression nested too deeply");
                next(p);
                if ((r = parse_expr(p, &e)) < 0)
                        return r;
                p->depth--;
                t = next(p);
                if (t->kind != TOK_RPAREN) {
                        expr_free(e);
                        return fail(p, t->line, "expected ')' but found %s", describe(t));
                }
                break;
        case TOK_WORD:
                if (peek2(p)->kind == TOK_LPAREN && !peek2(p)->spaced &&
                    (strcmp(t->text, "proc") == 0 || strcmp(t->text, "page") == 0 ||
                     strcmp(t->text, "zeros") == 0)) {
                        if (++p->depth > MAX_DEPTH)
                                return fail(p, t->line, "expression nested too deeply");
                        next(p);
                        r = parse_function(p, t, &e);
                        p->depth--;
                        if (r < 0)
                                return r;
                        break;
                }
                if (strncmp(t->text, "sys.", 4) == 0 || strncmp(t->text, "proc.", 5) == 0 ||
                    strncmp(t->text, "page.", 5) == 0) {
                        next(p);
                        if ((r = parse_dotted(p, t, &e)) < 0)
                                return r;
                        break;
                }
                next(p);
                if (!(e = expr_new(EXPR_WORD)))
                        return -ENOMEM;
                if (!(e->text = strdup(t->text))) {
                        expr_free(e);
                        return -ENOMEM;
                }
                e->len = strlen(t->text);
                break;
        default:
                return fail(p, t->line, "expected a value but found %s", describe(t));
        }
        *ret = e;
        return 0;
}

/* Left-associative binary operators over sub; ops lists the token kinds accepted. */
static int parse_binary(struct parser *p, struct script_expr **ret, bool additive)
{
        struct script_expr *lhs = NULL;
        int r = additive ? parse_binary(p, &lhs, false) : parse_atom(p, &lhs);
        if (r < 0)
                return r;
        for (;;) {
                enum tok_kind k = peek(p)->kind;
                enum script_expr_kind kind;
                if (additive && k == TOK_PLUS)
                        kind = EXPR_ADD;
                else if (additive && k == TOK_MINUS)
                        kind = EXPR_SUB;
                else if (!additive && k == TOK_STAR)
                        kind = EXPR_MUL;
                else
                        break;
                next(p);
                struct script_expr *op = expr_new(kind);
                if (!op) {
                        expr_free(lhs);
                        return -ENOMEM;
                }
                op->a = lhs;
                lhs = op;
                r = additive ? parse_binary(p, &op->b, false) : parse_atom(p, &op->b);
                if (r < 0) {
                        expr_free(lhs);
                        return r;
                }
        }
        *ret = lhs;
        return 0;
}

static int parse_expr(struct parser *p, struct script_expr **ret)
{
        return parse_binary(p, ret, true);
}

static void call_free(struct script_call *c)
{
        if (!c)
                return;
        free(c->name);
        exprs_free(c->args, c->nargs);
        free(c);
}

/* Arguments up to the end of the statement, or in an expect up to its verdict. */
static int parse_args(struct parser *p, bool in_expect, struct script_expr ***args, size_t *nargs)
{
        for (;;) {
                const struct token *t = peek(p);
                if (ends_statement(t->kind) || is_cmp(t->kind))
                        return 0;
                if (in_expect && (is_word(t, "fails") || is_word(t, "succeeds")))
                        return 0;
                if (t->kind == TOK_LBRACE)
                        return fail(p, t->line, "unexpected '{'");
                struct script_expr *e = NULL;
                int r = parse_expr(p, &e);
                if (r < 0)
                        return r;
                if (exprs_push(args, nargs, e) < 0) {
                        expr_free(e);
                        return -ENOMEM;
                }
        }
}

static int parse_call(struct parser *p, bool in_expect, struct script_call **ret)
{
        const struct token *t = next(p);
        struct script_call *c = calloc(1, sizeof(*c));
        int r;
        if (!c)
                return -ENOMEM;
        if (!(c->name = strdup(t->text))) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = parse_args(p, in_expect, &c->args, &c->nargs)) < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        call_free(c);
        return r;
}

static void stmt_free(struct script_stmt *s)
{
        if (!s)
                return;
        free(s->source);
        free(s->var);
        call_free(s->call);
        expr_free(s->lhs);
        expr_free(s->rhs);
        free(s->fails);
        exprs_free(s->args, s->nargs);
        for (size_t i = 0; i < s->nflags; i++)
                free(s->flags[i]);
        free(s->flags);
        expr_free(s->count);
        script_free(s->body);
        free(s);
}

void script_free(struct script_stmt *s)
{
        while (s) {
                struct script_stmt *n = s->next;
                stmt_free(s);
                s = n;
        }
}

static int parse_expect_page(struct parser *p, struct script_stmt *s)
{
        int r;
        next(p); /* pagemap */
        s->expect = EXPECT_PAGE;
        for (int i = 0; i < 2; i++) {
                struct script_expr *e = NULL;
                if (ends_statement(peek(p)->kind))
                        return fail(p, s->line, "expect pagemap PID ADDR FLAG...");
                if ((r = parse_expr(p, &e)) < 0)
                        return r;
                if (exprs_push(&s->args, &s->nargs, e) < 0) {
                        expr_free(e);
                        return -ENOMEM;
                }
        }
        while (!ends_statement(peek(p)->kind)) {
                const struct token *t = next(p);
                const char *name = t->kind == TOK_WORD ? t->text : "";
                const char *bare = name[0] == '!' ? name + 1 : name;
                bool known = false;
                for (const char *const *f = script_page_flags; *f; f++)
                        known |= strcmp(*f, bare) == 0;
                if (!known)
                        return fail(p, t->line,
                                    "unknown page flag %s (mapped, present, writable, cow, zero, "
                                    "shared, in_tlb, file, dirty, device; '!' negates)",
                                    describe(t));
                char **nf = realloc(s->flags, (s->nflags + 1) * sizeof(*nf));
                if (!nf)
                        return -ENOMEM;
                s->flags = nf;
                if (!(s->flags[s->nflags] = strdup(name)))
                        return -ENOMEM;
                s->nflags++;
        }
        if (s->nflags == 0)
                return fail(p, s->line, "expect pagemap needs at least one flag");
        return 0;
}

static int parse_expect(struct parser *p, struct script_stmt *s)
{
        const struct token *t = peek(p);
        int r;

        s->kind = STMT_EXPECT;
        if (is_word(t, "pagemap") && !(peek2(p)->kind == TOK_LPAREN))
                return parse_expect_page(p, s);

        if (t->kind == TOK_WORD && is_command(p, t->text)) {
                if ((r = parse_call(p, true, &s->call)) < 0)
                        return r;
                t = peek(p);
                if (is_word(t, "fails")) {
                        next(p);
                        s->expect = EXPECT_FAILS;
                        t = peek(p);
                        if (ends_statement(t->kind))
                                return 0;
                        if (t->kind != TOK_WORD)
                                return fail(p, t->line, "expected a status or fault name after 'fails'");
                        if (p->syn->failure_name_ok && !p->syn->failure_name_ok(t->text))
                                return fail(p, t->line,
                                            "'%s' is neither a status code (NOT_FOUND, ...) nor a "
                                            "fault (SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR)",
                                            t->text);
                        next(p);
                        return (s->fails = strdup(t->text)) ? 0 : -ENOMEM;
                }
                if (is_word(t, "succeeds")) {
                        next(p);
                        s->expect = EXPECT_SUCCEEDS;
                        return 0;
                }
                if (!is_cmp(t->kind))
                        return fail(p, t->line,
                                    "expected 'fails', 'succeeds' or a comparison after the "
                                    "command, found %s",
                                    describe(t));
        } else {
                if ((r = parse_expr(p, &s->lhs)) < 0)
                        return r;
                t = peek(p);
                if (!is_cmp(t->kind))
                        return fail(p, t->line, "expected a comparison (==, !=, <, <=, >, >=), found %s",
                                    describe(t));
        }
        s->expect = EXPECT_COMPARE;
        s->cmp = cmp_of(next(p)->kind);
        if (ends_statement(peek(p)->kind))
                return fail(p, t->line, "expected a value after %s", script_cmp_name(s->cmp));
        return parse_expr(p, &s->rhs);
}

static int parse_block(struct parser *p, bool nested, struct script_stmt **ret);

static int parse_stmt(struct parser *p, struct script_stmt **ret)
{
        const struct token *t = peek(p);
        struct script_stmt *s = calloc(1, sizeof(*s));
        size_t start = t->start;
        int r;

        if (!s)
                return -ENOMEM;
        s->line = t->line;

        if (t->kind == TOK_VAR && peek2(p)->kind == TOK_ASSIGN) {
                s->kind = STMT_ASSIGN;
                if (!(s->var = strdup(t->text))) {
                        r = -ENOMEM;
                        goto fail;
                }
                next(p);
                next(p);
                t = peek(p);
                if (t->kind == TOK_WORD && is_command(p, t->text))
                        r = parse_call(p, false, &s->call);
                else if (ends_statement(t->kind))
                        r = fail(p, t->line, "expected a value or a command after '='");
                else
                        r = parse_expr(p, &s->lhs);
        } else if (is_word(t, "repeat")) {
                s->kind = STMT_REPEAT;
                next(p);
                if ((r = parse_expr(p, &s->count)) < 0)
                        goto fail;
                t = next(p);
                if (t->kind != TOK_LBRACE) {
                        r = fail(p, t->line, "expected '{' after repeat COUNT, found %s",
                                 describe(t));
                        goto fail;
                }
                if (++p->depth > MAX_DEPTH) {
                        r = fail(p, t->line, "repeat nested too deeply");
                        goto fail;
                }
                r = parse_block(p, true, &s->body);
                p->depth--;
                if (r < 0)
                        goto fail;
                t = next(p);
                if (t->kind != TOK_RBRACE) {
                        r = fail(p, s->line, "this repeat has no closing '}'");
                        goto fail;
                }
        } else if (is_word(t, "echo")) {
                s->kind = STMT_ECHO;
                next(p);
                r = parse_args(p, false, &s->args, &s->nargs);
        } else if (is_word(t, "expect")) {
                next(p);
                if (ends_statement(peek(p)->kind))
                        r = fail(p, t->line, "expect what?");
                else
                        r = parse_expect(p, s);
        } else if (t->kind == TOK_WORD && is_command(p, t->text)) {
                s->kind = STMT_CALL;
                r = parse_call(p, false, &s->call);
        } else if (t->kind == TOK_WORD) {
                r = fail(p, t->line, "unknown command '%s'%s", t->text,
                         peek2(p)->kind == TOK_ASSIGN ? " (variables start with '$')" : "");
        } else {
                r = fail(p, t->line, "expected a command but found %s", describe(t));
        }
        if (r < 0)
                goto fail;

        t = peek(p);
        if (!ends_statement(t->kind)) {
                r = fail(p, t->line, "unexpected %s", describe(t));
                goto fail;
        }
        size_t end = p->pos > 0 ? p->toks[p->pos - 1].end : start;
        while (end > start && (p->src[end - 1] == '\n' || p->src[end - 1] == ' '))
                end--;
        if (!(s->source = dup_range(p->src, start, end))) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        stmt_free(s);
        return r;
}

/*
 * Statements up to the end of the script, or (nested) up to the '}' that
 * closes the block, which is left for the caller.
 */
static int parse_block(struct parser *p, bool nested, struct script_stmt **ret)
{
        struct script_stmt *head = NULL, **tail = &head;
        int r;

        for (;;) {
                const struct token *t = peek(p);
                if (t->kind == TOK_NEWLINE || t->kind == TOK_SEMI) {
                        next(p);
                        continue;
                }
                if (t->kind == TOK_EOF)
                        break;
                if (t->kind == TOK_RBRACE) {
                        if (nested)
                                break;
                        r = fail(p, t->line, "'}' without a repeat to close");
                        goto fail;
                }
                struct script_stmt *s = NULL;
                if ((r = parse_stmt(p, &s)) < 0)
                        goto fail;
                *tail = s;
                tail = &s->next;
        }
        *ret = head;
        return 0;
fail:
        script_free(head);
        return r;
}

int script_parse(const char *src, size_t len, const struct script_syntax *syn,
                 struct script_stmt **ret, struct script_error *err)
{
        struct parser p = { .src = src, .srclen = len, .syn = syn, .err = err };
        struct script_stmt *head = NULL;
        int r;

        err->line = 0;
        err->msg[0] = '\0';
        r = lex(&p);
        if (r < 0)
                goto out;
        r = parse_block(&p, false, &head);
        if (r < 0)
                goto out;
        *ret = head;
out:
        for (size_t i = 0; i < p.ntoks; i++)
                free(p.toks[i].text);
        free(p.toks);
        if (r == -ENOMEM && !err->msg[0])
                snprintf(err->msg, sizeof(err->msg), "out of memory");
        return r;
}
