/*
 * Docker config.json credentials; see credentials.h.
 */
#include "registry/credentials.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONFIG_MAX (1024 * 1024)
#define DOCKER_HUB_KEY "https://index.docker.io/v1/"

extern char **environ;

void credentials_release(struct credentials *c)
{
    if (c->secret)
        explicit_bzero(c->secret, strlen(c->secret));
    free(c->username);
    free(c->secret);
    c->username = c->secret = NULL;
}

char *credentials_config_path(void)
{
    const char *dir = getenv("DOCKER_CONFIG");
    const char *home = getenv("HOME");

    if (dir && *dir)
        return fs_path_join(dir, "config.json");
    return xasprintf("%s/.docker/config.json", home && *home ? home : "/root");
}

static const char *config_key(const char *registry)
{
    return !strcmp(registry, "docker.io") ? DOCKER_HUB_KEY : registry;
}

/* Loads config.json; a missing file gives an empty object. */
static int load_config(const char *path, json_t **ret, struct ocib_error *err)
{
    _cleanup_free_ char *buf = NULL;
    json_error_t jerr;
    size_t len;
    json_t *j;

    if (!fs_exists(path)) {
        *ret = json_object();
        return 0;
    }
    if (fs_read_file(path, CONFIG_MAX, &buf, &len, err) < 0)
        return -1;
    j = json_loadb(buf, len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return ocib_error_set(err, "'%s': invalid JSON at line %d", path, jerr.line);
    }
    *ret = j;
    return 0;
}

static const char *str_member(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Runs docker-credential-<helper> <verb> with input on stdin; captures
 * stdout (capped).  Returns the exit status or -1. */
static int run_helper(const char *helper, const char *verb, const char *input,
                      struct strbuf *out, struct ocib_error *err)
{
    _cleanup_free_ char *prog = xasprintf("docker-credential-%s", helper);
    char *argv[] = {prog, (char *)verb, NULL};
    posix_spawn_file_actions_t fa;
    int in[2], outp[2], status;
    char buf[4096];
    pid_t pid;
    size_t len = strlen(input);

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0)
        return ocib_error_errno(err, errno, "credential helper %s", prog);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, prog, &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        return ocib_error_set(err, "credential helper '%s' not found in PATH", prog);
    }
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(outp[1]);
    {
        void (*old)(int) = signal(SIGPIPE, SIG_IGN);

        fs_write_all(in[1], input, len, NULL);
        signal(SIGPIPE, old);
    }
    close(in[1]);
    for (;;) {
        ssize_t n = read(outp[0], buf, sizeof(buf));

        if (n <= 0)
            break;
        if (out->len < 65536)
            strbuf_add(out, buf, (size_t)n);
    }
    close(outp[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return ocib_error_set(err, "credential helper '%s' failed", prog);
    return WEXITSTATUS(status);
}

static const char *helper_for(const json_t *cfg, const char *key)
{
    const char *h = str_member(json_object_get(cfg, "credHelpers"), key);

    return h && *h ? h
                   : (str_member(cfg, "credsStore") && *str_member(cfg, "credsStore")
                          ? str_member(cfg, "credsStore")
                          : NULL);
}

int credentials_lookup(const char *registry, struct credentials *ret,
                       struct ocib_error *err)
{
    _cleanup_free_ char *path = credentials_config_path();
    _cleanup_json_ json_t *cfg = NULL;
    const char *key = config_key(registry);
    const char *helper;
    json_t *entry;

    if (load_config(path, &cfg, err) < 0)
        return -1;
    helper = helper_for(cfg, key);
    if (helper) {
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        _cleanup_json_ json_t *j = NULL;
        int rc = run_helper(helper, "get", key, &out, err);

        if (rc < 0)
            return -1;
        if (rc == 0) {
            j = json_loadb(out.buf ?: "", out.len, 0, NULL);
            if (json_is_object(j) && str_member(j, "Secret")) {
                ret->username = xstrdup(str_member(j, "Username") ?: "");
                ret->secret = xstrdup(str_member(j, "Secret"));
                if (out.buf)
                    explicit_bzero(out.buf, out.len);
                return 1;
            }
        }
        if (out.buf)
            explicit_bzero(out.buf, out.len);
        /* Fall through to "auths": helpers answer non-zero when they have
         * nothing for this registry. */
    }
    entry = json_object_get(json_object_get(cfg, "auths"), key);
    if (!entry && !strcmp(registry, "docker.io"))
        entry = json_object_get(json_object_get(cfg, "auths"), "docker.io");
    if (!entry)
        return 0;
    if (str_member(entry, "auth") && *str_member(entry, "auth")) {
        char *dec = NULL, *colon = NULL;
        size_t len;

        if (base64_decode(str_member(entry, "auth"), &dec, &len) == 0)
            colon = strchr(dec, ':');
        if (!colon) {
            if (dec) {
                explicit_bzero(dec, strlen(dec));
                free(dec);
            }
            return ocib_error_set(err, "'%s': the auth entry for %s is malformed", path,
                                  registry);
        }
        ret->username = xstrndup(dec, (size_t)(colon - dec));
        ret->secret = xstrdup(colon + 1);
        explicit_bzero(dec, len);
        free(dec);
        return 1;
    }
    if (str_member(entry, "identitytoken")) {
        ret->username = xstrdup("<token>");
        ret->secret = xstrdup(str_member(entry, "identitytoken"));
        return 1;
    }
    return 0;
}

static int save_config(const char *path, json_t *cfg, struct ocib_error *err)
{
    _cleanup_free_ char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    char *s;
    int r;

    if (slash) {
        *slash = '\0';
        if (fs_mkdir_p(dir, 0700, err) < 0)
            return -1;
    }
    s = json_dumps(cfg, JSON_INDENT(1) | JSON_SORT_KEYS);
    r = fs_write_file_atomic(path, s, strlen(s), 0600, err);
    explicit_bzero(s, strlen(s));
    free(s);
    return r;
}

int credentials_store(const char *registry, const char *user, const char *secret,
                      struct ocib_error *err)
{
    _cleanup_free_ char *path = credentials_config_path();
    _cleanup_json_ json_t *cfg = NULL;
    const char *key = config_key(registry);
    const char *helper;
    json_t *auths;

    if (load_config(path, &cfg, err) < 0)
        return -1;
    helper = helper_for(cfg, key);
    if (helper) {
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        json_t *in = json_pack("{s:s, s:s, s:s}", "ServerURL", key, "Username", user,
                               "Secret", secret);
        char *s = json_dumps(in, JSON_COMPACT);
        int rc = run_helper(helper, "store", s, &out, err);

        explicit_bzero(s, strlen(s));
        free(s);
        json_decref(in);
        if (rc != 0)
            return rc < 0 ? -1
                          : ocib_error_set(err,
                                           "credential helper '%s' could not store the "
                                           "credentials",
                                           helper);
        return 0;
    }
    auths = json_object_get(cfg, "auths");
    if (!json_is_object(auths)) {
        auths = json_object();
        json_object_set_new(cfg, "auths", auths);
    }
    {
        _cleanup_free_ char *pair = xasprintf("%s:%s", user, secret);
        char *enc = base64_encode(pair, strlen(pair));

        json_object_set_new(auths, key, json_pack("{s:s}", "auth", enc));
        explicit_bzero(pair, strlen(pair));
        explicit_bzero(enc, strlen(enc));
        free(enc);
    }
    return save_config(path, cfg, err);
}

int credentials_erase(const char *registry, struct ocib_error *err)
{
    _cleanup_free_ char *path = credentials_config_path();
    _cleanup_json_ json_t *cfg = NULL;
    const char *key = config_key(registry);
    const char *helper;
    json_t *auths;
    int found = 0;

    if (load_config(path, &cfg, err) < 0)
        return -1;
    helper = helper_for(cfg, key);
    if (helper) {
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;

        if (run_helper(helper, "erase", key, &out, err) == 0)
            found = 1;
        ocib_error_clear(err);
    }
    auths = json_object_get(cfg, "auths");
    if (json_object_get(auths, key)) {
        json_object_del(auths, key);
        found = 1;
        if (save_config(path, cfg, err) < 0)
            return -1;
    }
    return found;
}
