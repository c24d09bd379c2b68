/*
 * conn — see conn.h.
 */
#include "cli/conn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void notice_receiver(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "epoch: %s: %s\n", sev ? sev : "NOTICE", msg ? msg : "");
}

void conn_print_error(const PGresult *res, PGconn *conn)
{
    const char *sev = res ? PQresultErrorField(res, PG_DIAG_SEVERITY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg) {
        /* no ErrorResponse: the connection itself failed */
        const char *m = conn ? PQerrorMessage(conn) : "out of memory";
        size_t n = strlen(m);
        while (n > 0 && m[n - 1] == '\n')
            n--;
        fprintf(stderr, "epoch: %.*s\n", (int)n, m);
        return;
    }
    fprintf(stderr, "epoch: %s %s: %s\n", sev ? sev : "ERROR", state ? state : "XX000", msg);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    if (detail)
        fprintf(stderr, "DETAIL: %s\n", detail);
    if (hint)
        fprintf(stderr, "HINT: %s\n", hint);
}

PGresult *conn_exec(cli_t *cli, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(cli->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    conn_print_error(res, cli->conn);
    PQclear(res);
    return NULL;
}

char *conn_value(cli_t *cli, const char *sql, int n, const char *const *params, bool *ok)
{
    PGresult *res = conn_exec(cli, sql, n, params);
    *ok = res != NULL;
    if (!res)
        return NULL;
    char *v = NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) {
        v = strdup(PQgetvalue(res, 0, 0));
        if (!v)
            *ok = false;
    }
    PQclear(res);
    return v;
}

bool conn_run(cli_t *cli, const char *sql, int n, const char *const *params)
{
    PGresult *res = conn_exec(cli, sql, n, params);
    PQclear(res);
    return res != NULL;
}

bool conn_set(cli_t *cli, const char *setting, const char *value)
{
    char *lit = PQescapeLiteral(cli->conn, value, strlen(value));
    if (!lit) {
        conn_print_error(NULL, cli->conn);
        return false;
    }
    size_t len = strlen(setting) + strlen(lit) + 16;
    char *sql = malloc(len);
    if (!sql) {
        PQfreemem(lit);
        cli_error("out of memory");
        return false;
    }
    snprintf(sql, len, "SET %s = %s", setting, lit);
    PQfreemem(lit);
    PGresult *res = PQexec(cli->conn, sql);
    free(sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        conn_print_error(res, cli->conn);
    PQclear(res);
    return ok;
}

bool conn_set_branch(cli_t *cli, const char *branch)
{
    /* as a statement of its own (docs/sql.md, "Choosing a branch") */
    return conn_set(cli, "epoch.branch", branch);
}

bool conn_open(cli_t *cli)
{
    /* dbname first: with expand_dbname, a conninfo or URL in it is expanded
     * there, and the explicit -h/-p/-U after it win */
    static const struct {
        cli_opt_t opt;
        const char *key;
    } params[] = {
        {OPT_DBNAME, "dbname"}, {OPT_HOST, "host"}, {OPT_PORT, "port"}, {OPT_USER, "user"}};
    const char *keys[8], *vals[8];
    int n = 0;
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        if (cli->args.opt[params[i].opt]) {
            keys[n] = params[i].key;
            vals[n++] = cli->args.opt[params[i].opt];
        }
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "epoch";
    keys[n] = NULL;
    vals[n] = NULL;
    cli->conn = PQconnectdbParams(keys, vals, 1);
    if (!cli->conn || PQstatus(cli->conn) != CONNECTION_OK) {
        conn_print_error(NULL, cli->conn);
        return false;
    }
    PQsetNoticeReceiver(cli->conn, notice_receiver, NULL);

    const char *host = PQhost(cli->conn), *port = PQport(cli->conn);
    const char *db = PQdb(cli->conn), *user = PQuser(cli->conn);
    size_t klen = strlen(host ? host : "") + strlen(port ? port : "") + strlen(db ? db : "") +
                  strlen(user ? user : "") + 4;
    cli->state_key = malloc(klen);
    if (!cli->state_key) {
        cli_error("out of memory");
        return false;
    }
    snprintf(cli->state_key, klen, "%s@%s:%s/%s", user ? user : "", host ? host : "",
             port ? port : "", db ? db : "");

    const char *want = cli->args.opt[OPT_BRANCH];
    char *saved = want ? NULL : state_get(cli->state_key);
    if (!want)
        want = saved;
    if (!want)
        want = "main";
    cli->branch = strdup(want);
    free(saved);
    if (!cli->branch) {
        cli_error("out of memory");
        return false;
    }
    /* checkout leaves a checked-out branch that is gone behind */
    if (strcmp(cli->branch, "main") != 0 && strcmp(cli->cmd->name, "checkout") != 0 &&
        !conn_set_branch(cli, cli->branch)) {
        if (!cli->args.opt[OPT_BRANCH])
            fprintf(stderr, "epoch: the checked-out branch is \"%s\" (epoch checkout main)\n",
                    cli->branch);
        return false;
    }
    return true;
}

void conn_close(cli_t *cli)
{
    if (cli->conn)
        PQfinish(cli->conn);
    cli->conn = NULL;
    free(cli->branch);
    free(cli->state_key);
    cli->branch = cli->state_key = NULL;
}

/* ---- state file ---------------------------------------------------------------- */

static bool state_path(char *out, size_t size, bool make_dir)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[PATH_MAX];
    int w;
    if (xdg && xdg[0] == '/')
        w = snprintf(dir, sizeof(dir), "%s/epoch", xdg);
    else if (home && home[0])
        w = snprintf(dir, sizeof(dir), "%s/.local/state/epoch", home);
    else
        return false;
    if (w < 0 || (size_t)w >= sizeof(dir))
        return false;
    if (make_dir) {
        /* mkdir -p, owner only */
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return false;
            *p = '/';
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return false;
    }
    w = snprintf(out, size, "%s/state", dir);
    return w > 0 && (size_t)w < size;
}

char *state_get(const char *key)
{
    char path[PATH_MAX];
    if (!state_path(path, sizeof(path), false))
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    size_t klen = strlen(key);
    ssize_t len;
    while (!found && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if ((size_t)len > klen && strncmp(line, key, klen) == 0 && line[klen] == '\t')
            found = strdup(line + klen + 1);
    }
    free(line);
    fclose(f);
    return found;
}

bool state_set(const char *key, const char *branch)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    if (!state_path(path, sizeof(path), true)) {
        cli_error("cannot find a place for the state file (set XDG_STATE_HOME or HOME)");
        return false;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        cli_error("cannot write %s: %s", tmp, strerror(errno));
        return false;
    }
    /* copy the other connections' lines, then ours */
    FILE *in = fopen(path, "r");
    if (in) {
        char *line = NULL;
        size_t cap = 0, klen = strlen(key);
        ssize_t len;
        while ((len = getline(&line, &cap, in)) > 0) {
            if ((size_t)len > klen && strncmp(line, key, klen) == 0 && line[klen] == '\t')
                continue;
            fputs(line, out);
            if (line[len - 1] != '\n')
                fputc('\n', out);
        }
        free(line);
        fclose(in);
    }
    if (branch)
        fprintf(out, "%s\t%s\n", key, branch);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        cli_error("cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return false;
    }
    return true;
}
