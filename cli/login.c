/*
 * `ocib login REGISTRY -u USER --password-stdin` and `ocib logout REGISTRY`:
 * credentials checked against the registry, then kept in Docker's
 * config.json (mode 0600) or its credential helper.  The password is read
 * from standard input only, never from the command line, and never printed.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "transport/remote.h"
#include "registry/client.h"
#include "registry/credentials.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PASSWORD_MAX 8192

/* "https://index.docker.io/v1/", "index.docker.io", "docker.io" -> "docker.io";
 * "http://host:port/" -> "host:port". */
static char *normalise_registry(const char *s)
{
    const char *p = strstr(s, "://");
    char *host;

    p = p ? p + 3 : s;
    host = xstrndup(p, strcspn(p, "/"));
    if (!strcmp(host, "index.docker.io") || !strcmp(host, "registry-1.docker.io")) {
        free(host);
        host = xstrdup("docker.io");
    }
    return host;
}

static int read_password(struct strbuf *sb, struct ocib_error *err)
{
    char buf[1024];

    for (;;) {
        ssize_t n = read(0, buf, sizeof(buf));

        if (n < 0)
            return ocib_error_errno(err, 0, "login: cannot read the password from stdin");
        if (n == 0)
            break;
        strbuf_add(sb, buf, (size_t)n);
        explicit_bzero(buf, sizeof(buf));
        if (sb->len > PASSWORD_MAX)
            return ocib_error_usage(err, "login: the password is longer than %d bytes",
                                    PASSWORD_MAX);
    }
    while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == '\r'))
        strbuf_setlen(sb, sb->len - 1);
    if (!sb->len)
        return ocib_error_usage(err, "login: empty password on stdin");
    return 0;
}

enum { OPT_USER = 1, OPT_PASSWORD_STDIN, OPT_PASSWORD };

const struct cli_option cli_login_options[] = {
    {OPT_USER, "--username", "-u", "USER", "the user name"},
    {OPT_PASSWORD_STDIN, "--password-stdin", NULL, NULL,
     "read the password (or token) from standard input"},
    {OPT_PASSWORD, "--password", "-p", NULL,
     "refused: a password on the command line shows in ps and shell history"},
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

int cli_login(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct strbuf password = STRBUF_INIT;
    _cleanup_free_ char *host = NULL;
    const char *user = NULL, *registry_arg = NULL, *v;
    bool password_stdin = false, operands_only = false;
    struct registry *r;
    int rc = -1;

    for (int i = 1; i < argc; i++) {
        /* Refused in every form, before it could be read as anything. */
        bool on_command_line = !strcmp(argv[i], "-p") || !strcmp(argv[i], "--password") ||
                               !strncmp(argv[i], "--password=", 11);
        int id = on_command_line ? OPT_PASSWORD
                                 : cli_next("login", cli_login_options, argc, argv, &i,
                                            &operands_only, &v, err);

        switch (id) {
        case CLI_OPT_INSECURE_ID:
        case CLI_OPT_CERT_DIR_ID:
            cli_env_take(&env, id, v);
            break;
        case OPT_USER:
            user = v;
            break;
        case OPT_PASSWORD_STDIN:
            password_stdin = true;
            break;
        case OPT_PASSWORD:
            ocib_error_usage(err, "login: passwords are read only with --password-stdin, "
                                  "never from the command line");
            goto out;
        case CLI_SKIP:
            break;
        case CLI_OPERAND:
            if (registry_arg) {
                ocib_error_usage(err, "login: takes one registry");
                goto out;
            }
            registry_arg = v;
            break;
        default:
            goto out;
        }
    }
    if (!registry_arg || !user || !password_stdin) {
        ocib_error_usage(err, "login: usage: ocib login REGISTRY -u USER --password-stdin");
        goto out;
    }
    host = normalise_registry(registry_arg);
    if (read_password(&password, err) < 0 || cli_env_open(&env, err) < 0 ||
        registries_get(env.registries, host, &r, err) < 0)
        goto out;
    registry_set_credentials(r, user, password.buf);
    if (registry_check_login(r, err) < 0) {
        ocib_error_wrap(err, "login to %s", host);
        goto out;
    }
    if (credentials_store(host, user, password.buf, err) < 0) {
        ocib_error_wrap(err, "login to %s", host);
        goto out;
    }
    printf("Login Succeeded\n");
    rc = 0;
out:
    if (password.buf)
        explicit_bzero(password.buf, password.len);
    strbuf_release(&password);
    cli_env_release(&env);
    return rc;
}

int cli_logout(int argc, char **argv, struct ocib_error *err)
{
    _cleanup_free_ char *host = NULL;
    int found;

    if (argc != 2 || argv[1][0] == '-')
        return ocib_error_usage(err, "logout: usage: ocib logout REGISTRY");
    host = normalise_registry(argv[1]);
    found = credentials_erase(host, err);
    if (found < 0)
        return ocib_error_wrap(err, "logout from %s", host);
    if (found)
        printf("Removed login credentials for %s\n", host);
    else
        printf("Not logged in to %s\n", host);
    return 0;
}
