/* vd_hsm.c - vaultd's local HSM pool: configuration file, the --dev SoftHSMv2 token, the
 * key-encryption key kept in the pool, and the keys.hsm_ref migration.
 *
 * Pool configuration (--hsm-config FILE; --dev uses DIR/hsm.conf, written on first start when
 * SoftHSMv2 is installed):
 *     name = dev-softhsm                 # pool name in messages (default "hsm")
 *     sessions = 4                       # sessions per member token
 *     softhsm2_conf = DIR/softhsm/softhsm2.conf   # optional: SOFTHSM2_CONF for this process
 *     wrap_key = auto                    # pool wrapping key: auto (default) | none
 *     wrap_escrow = FILE                 # optional: the wrapping key sealed under a passphrase
 *     wrap_escrow_passphrase_file = FILE # its passphrase (first line)
 *     [member]                           # one section per member token
 *     module = /usr/lib/softhsm/libsofthsm2.so
 *     token = vaultd-dev                 # token label
 *     pin_file = DIR/softhsm/user.pin    # or: pin = ...
 *     so_pin_file = DIR/softhsm/so.pin   # optional (or so_pin = ...): CKA_TRUSTED wrapping key
 *
 * The pool wrapping key (docs/hsm-pool.md): with wrap_key = auto, a pool whose members hold
 * none gets one at start (32 random bytes, provisioned into every reachable member, sealed into
 * wrap_escrow when configured, then zeroised); members that lack it while others hold it get
 * it from wrap_escrow (or a warning). HSM keys made afterwards can be backed up portably.
 */
#include "vd_hsm.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "vd_crypto.h"
#include "vd_util.h"

#define VD_HSM_MAX_MEMBERS 8
#define VD_KEK_AAD "vaultd-kek-v1"

extern char **environ;

static void vd_hsm_path(const vd_ctx *ctx, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", ctx->cfg.state_dir, name);
}

static bool vd_hsm_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- configuration file ---- */

typedef struct vd_hsm_conf {
    char name[64];
    size_t sessions;
    char softhsm2_conf[PATH_MAX];
    char wrap_key[16];
    char wrap_escrow[PATH_MAX];
    char wrap_pass_file[PATH_MAX];
    struct {
        char module[PATH_MAX];
        char token[64];
        char pin[128];
        char pin_file[PATH_MAX];
        char so_pin[128];
        char so_pin_file[PATH_MAX];
    } m[VD_HSM_MAX_MEMBERS];
    size_t n;
} vd_hsm_conf;

static char *vd_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

static kv_rv vd_hsm_conf_read(const char *path, vd_hsm_conf *c, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    char line[PATH_MAX + 64];
    int lineno = 0;
    kv_rv rv = KV_OK;

    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "hsm");
    snprintf(c->wrap_key, sizeof(c->wrap_key), "auto");
    if (f == NULL) {
        snprintf(why, whylen, "cannot read %.200s: %s", path, strerror(errno));
        return KV_ERR_CONFIG;
    }
    while (rv == KV_OK && fgets(line, sizeof(line), f) != NULL) {
        char *s = vd_trim(line), *eq, *k, *v;

        lineno++;
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (strcmp(s, "[member]") == 0) {
            if (c->n == VD_HSM_MAX_MEMBERS) {
                snprintf(why, whylen, "%.200s:%d: at most %d members", path, lineno,
                         VD_HSM_MAX_MEMBERS);
                rv = KV_ERR_CONFIG;
            }
            c->n++;
            continue;
        }
        eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(why, whylen, "%.200s:%d: expected key = value", path, lineno);
            rv = KV_ERR_CONFIG;
            break;
        }
        *eq = '\0';
        k = vd_trim(s);
        v = vd_trim(eq + 1);
        if (c->n == 0) {
            if (strcmp(k, "name") == 0)
                snprintf(c->name, sizeof(c->name), "%s", v);
            else if (strcmp(k, "sessions") == 0)
                c->sessions = (size_t)strtoul(v, NULL, 10);
            else if (strcmp(k, "softhsm2_conf") == 0)
                snprintf(c->softhsm2_conf, sizeof(c->softhsm2_conf), "%s", v);
            else if (strcmp(k, "wrap_key") == 0 &&
                     (strcmp(v, "auto") == 0 || strcmp(v, "none") == 0))
                snprintf(c->wrap_key, sizeof(c->wrap_key), "%s", v);
            else if (strcmp(k, "wrap_escrow") == 0)
                snprintf(c->wrap_escrow, sizeof(c->wrap_escrow), "%s", v);
            else if (strcmp(k, "wrap_escrow_passphrase_file") == 0)
                snprintf(c->wrap_pass_file, sizeof(c->wrap_pass_file), "%s", v);
            else
                rv = KV_ERR_CONFIG;
        } else {
            size_t i = c->n - 1;

            if (strcmp(k, "module") == 0)
                snprintf(c->m[i].module, sizeof(c->m[i].module), "%s", v);
            else if (strcmp(k, "token") == 0)
                snprintf(c->m[i].token, sizeof(c->m[i].token), "%s", v);
            else if (strcmp(k, "pin") == 0)
                snprintf(c->m[i].pin, sizeof(c->m[i].pin), "%s", v);
            else if (strcmp(k, "pin_file") == 0)
                snprintf(c->m[i].pin_file, sizeof(c->m[i].pin_file), "%s", v);
            else if (strcmp(k, "so_pin") == 0)
                snprintf(c->m[i].so_pin, sizeof(c->m[i].so_pin), "%s", v);
            else if (strcmp(k, "so_pin_file") == 0)
                snprintf(c->m[i].so_pin_file, sizeof(c->m[i].so_pin_file), "%s", v);
            else
                rv = KV_ERR_CONFIG;
        }
        if (rv != KV_OK)
            snprintf(why, whylen, "%.200s:%d: unknown key (or bad value) %.64s", path, lineno, k);
    }
    fclose(f);
    OPENSSL_cleanse(line, sizeof(line));
    if (rv == KV_OK && c->n == 0) {
        snprintf(why, whylen, "%.200s: no [member] section", path);
        rv = KV_ERR_CONFIG;
    }
    return rv;
}

/* ---- the --dev SoftHSMv2 token ---- */

static const char *vd_softhsm_module(void)
{
    static const char *const paths[] = {
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    };
    size_t i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], R_OK) == 0)
            return paths[i];
    return NULL;
}

/* Runs argv (PATH search) and waits; true on exit status 0. */
static bool vd_run(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0, rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return false;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Creates DIR/softhsm (own softhsm2.conf, token "vaultd-dev", random PINs) and DIR/hsm.conf.
 * KV_ERR_NOT_FOUND when SoftHSMv2 is not installed. */
static kv_rv vd_hsm_dev_token(vd_ctx *ctx, const char *conf_path)
{
    const char *module = vd_softhsm_module();
    char dir[PATH_MAX + 16], tokdir[PATH_MAX + 32], shconf[PATH_MAX + 48], pinf[PATH_MAX + 48];
    char sopinf[PATH_MAX + 48], pin[33], sopin[33], text[4 * PATH_MAX + 256];
    char *argv[] = {"softhsm2-util", "--init-token", "--free", "--label", "vaultd-dev",
                    "--so-pin",      sopin,          "--pin",  pin,       NULL};
    int n;
    kv_rv rv = KV_ERR_INTERNAL;

    if (module == NULL)
        return KV_ERR_NOT_FOUND;
    vd_hsm_path(ctx, "softhsm", dir, sizeof(dir));
    snprintf(tokdir, sizeof(tokdir), "%s/tokens", dir);
    snprintf(shconf, sizeof(shconf), "%s/softhsm2.conf", dir);
    snprintf(pinf, sizeof(pinf), "%s/user.pin", dir);
    snprintf(sopinf, sizeof(sopinf), "%s/so.pin", dir);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || (mkdir(tokdir, 0700) != 0 && errno != EEXIST))
        return KV_ERR_CONFIG;
    n = snprintf(text, sizeof(text),
                 "# SoftHSMv2 configuration of vaultd's dev HSM pool\n"
                 "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                 "slots.removable = false\n",
                 tokdir);
    if (vd_write_file(shconf, text, (size_t)n, 0600) != KV_OK)
        return KV_ERR_CONFIG;
    if (vd_random_hex(pin, 16) != KV_OK || vd_random_hex(sopin, 16) != KV_OK)
        goto done;
    if (vd_write_file(pinf, pin, strlen(pin), 0600) != KV_OK ||
        vd_write_file(sopinf, sopin, strlen(sopin), 0600) != KV_OK)
        goto done;
    setenv("SOFTHSM2_CONF", shconf, 1);
    if (!vd_run(argv)) {
        fprintf(stderr, "vaultd: softhsm2-util --init-token failed; the dev instance has no "
                        "HSM pool\n");
        rv = KV_ERR_NOT_FOUND;
        goto done;
    }
    n = snprintf(text, sizeof(text),
                 "# vaultd HSM pool (written by vaultd --dev; see vaultd/README.md)\n"
                 "name = dev-softhsm\nsessions = 4\nsofthsm2_conf = %s\n\n"
                 "[member]\nmodule = %s\ntoken = vaultd-dev\npin_file = %s\nso_pin_file = %s\n",
                 shconf, module, pinf, sopinf);
    rv = vd_write_file(conf_path, text, (size_t)n, 0600);
    if (rv == KV_OK)
        fprintf(stderr, "vaultd: created the dev HSM pool (SoftHSMv2 token vaultd-dev in %s)\n",
                dir);
done:
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(sopin, sizeof(sopin));
    return rv;
}

/* ---- the pool wrapping key ---- */

/* Reads the escrow document and its passphrase; material on KV_OK. */
static kv_rv vd_hsm_escrow_open(const vd_hsm_conf *c, uint8_t material[KV_HSM_WRAPKEY_LEN],
                                kv_err *err)
{
    uint8_t *doc = NULL, *pass = NULL;
    size_t dlen = 0, plen = 0;
    char *text = NULL;
    kv_rv rv;

    if (vd_read_file(c->wrap_escrow, 16384, &doc, &dlen) != KV_OK ||
        vd_read_file(c->wrap_pass_file, 4096, &pass, &plen) != KV_OK) {
        rv = kv_err_set(err, KV_ERR_CONFIG, "cannot read wrap_escrow %.200s or its passphrase file",
                        c->wrap_escrow);
        goto done;
    }
    text = calloc(1, dlen + 1);
    if (text == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(text, doc, dlen);
    pass[strcspn((char *)pass, "\r\n")] = '\0';
    rv = kv_hsm_wrapkey_unseal(text, (const char *)pass, material, err);
done:
    free(text);
    free(doc);
    if (pass != NULL)
        vd_free_secret((char *)pass, plen);
    return rv;
}

/* Writes the escrow document (0600) for material. */
static kv_rv vd_hsm_escrow_write(const vd_hsm_conf *c, const uint8_t material[KV_HSM_WRAPKEY_LEN],
                                 kv_err *err)
{
    uint8_t *pass = NULL;
    size_t plen = 0;
    char *text = NULL;
    kv_rv rv;

    if (vd_read_file(c->wrap_pass_file, 4096, &pass, &plen) != KV_OK)
        return kv_err_set(err, KV_ERR_CONFIG, "cannot read wrap_escrow_passphrase_file %.200s",
                          c->wrap_pass_file);
    pass[strcspn((char *)pass, "\r\n")] = '\0';
    rv = kv_hsm_wrapkey_seal(material, (const char *)pass, &text, err);
    if (rv == KV_OK && vd_write_file(c->wrap_escrow, text, strlen(text), 0600) != KV_OK)
        rv = kv_err_set(err, KV_ERR_CONFIG, "cannot write wrap_escrow %.200s", c->wrap_escrow);
    free(text);
    vd_free_secret((char *)pass, plen);
    return rv;
}

/* wrap_key = auto: gives the pool its wrapping key (see the top of this file). Problems are
 * warnings: the pool keeps working, only portable backups of new keys depend on it. */
static void vd_hsm_wrapkey_setup(vd_hsm *h, const vd_hsm_conf *c)
{
    uint8_t material[KV_HSM_WRAPKEY_LEN];
    char fp[KV_HSM_FP_HEX];
    kv_hsm_wrapkey_status st = {0};
    bool have_escrow = c->wrap_escrow[0] != '\0' && c->wrap_pass_file[0] != '\0';
    size_t made = 0;
    kv_err err;
    kv_rv rv = KV_OK;

    if (strcmp(c->wrap_key, "none") == 0 || kv_hsm_wrapkey_status_get(h->pool, &st, &err) != KV_OK)
        goto report;
    if (st.holding < st.reachable) {
        if (st.holding == 0 && !(have_escrow && access(c->wrap_escrow, F_OK) == 0)) {
            /* first start: fresh material, escrowed first when configured */
            if (RAND_priv_bytes(material, sizeof(material)) != 1) {
                fprintf(stderr, "vaultd: warning: no random bytes for the pool wrapping key\n");
                goto report;
            }
            if (have_escrow)
                rv = vd_hsm_escrow_write(c, material, &err);
        } else if (have_escrow) {
            rv = vd_hsm_escrow_open(c, material, &err);
            if (rv == KV_OK && st.holding > 0 &&
                (kv_hsm_wrapkey_fingerprint(material, fp, &err) != KV_OK ||
                 strcmp(fp, st.fingerprint) != 0))
                rv = kv_err_set(&err, KV_ERR_CONFIG,
                                "wrap_escrow holds another wrapping key (fingerprint %s) than "
                                "the pool (%s)",
                                fp, st.fingerprint);
        } else {
            fprintf(stderr,
                    "vaultd: warning: HSM pool '%s': member token(s) %s lack the pool wrapping "
                    "key and no wrap_escrow is configured to provision them; keys made there "
                    "cannot be backed up portably\n",
                    h->name, st.missing);
            goto report;
        }
        if (rv == KV_OK)
            rv = kv_hsm_wrapkey_provision(h->pool, material, &made, &err);
        OPENSSL_cleanse(material, sizeof(material));
        if (rv != KV_OK) {
            fprintf(stderr,
                    "vaultd: warning: HSM pool '%s': cannot provision the pool wrapping "
                    "key: %s\n",
                    h->name, err.message);
            goto report;
        }
        if (made > 0)
            fprintf(stderr,
                    "vaultd: HSM pool '%s': pool wrapping key provisioned on %zu member "
                    "token%s\n",
                    h->name, made, made == 1 ? "" : "s");
        (void)kv_hsm_wrapkey_status_get(h->pool, &st, &err);
    }
report:
    OPENSSL_cleanse(material, sizeof(material));
    if (strcmp(c->wrap_key, "none") == 0 || st.holding == 0)
        return;
    if (!st.consistent)
        fprintf(stderr,
                "vaultd: warning: HSM pool '%s': the members hold DIFFERENT pool "
                "wrapping keys; backups may not restore on every member\n",
                h->name);
    snprintf(h->wrap_fp, sizeof(h->wrap_fp), "%s", st.fingerprint);
    h->wrap_trusted = st.trusted == st.holding;
    fprintf(stderr, "vaultd: HSM pool '%s': pool wrapping key %s (%s)\n", h->name, h->wrap_fp,
            h->wrap_trusted ? "trusted" : "NOT trusted: no SO PIN; see docs/hsm-pool.md");
}

/* ---- set-up ---- */

kv_rv vd_hsm_setup(vd_ctx *ctx)
{
    char path[PATH_MAX + 16], db[PATH_MAX + 16], kek[PATH_MAX + 16];
    char sopin[PATH_MAX + 16];
    kv_hsm_member_cfg mc[VD_HSM_MAX_MEMBERS];
    vd_hsm_conf *c = NULL;
    vd_hsm *h = NULL;
    kv_err err;
    size_t i;
    kv_rv rv = KV_OK;

    if (ctx->cfg.hsm_config[0] != '\0') {
        snprintf(path, sizeof(path), "%s", ctx->cfg.hsm_config);
    } else {
        if (!ctx->cfg.dev)
            return KV_OK; /* no pool */
        vd_hsm_path(ctx, "hsm.conf", path, sizeof(path));
        vd_hsm_path(ctx, "vaultd.db", db, sizeof(db));
        vd_hsm_path(ctx, "kek.bin", kek, sizeof(kek));
        /* a fresh dev state gets a SoftHSMv2 token when SoftHSMv2 is installed */
        if (!vd_hsm_exists(path) && !vd_hsm_exists(db) && !vd_hsm_exists(kek) &&
            vd_hsm_dev_token(ctx, path) != KV_OK)
            return KV_OK;
        if (!vd_hsm_exists(path))
            return KV_OK;
    }
    h = calloc(1, sizeof(*h));
    c = calloc(1, sizeof(*c));
    if (h == NULL || c == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    ctx->hsm = h;
    if (vd_hsm_conf_read(path, c, h->error, sizeof(h->error)) != KV_OK) {
        snprintf(h->name, sizeof(h->name), "%s", c->name[0] ? c->name : "hsm");
        fprintf(stderr, "vaultd: HSM pool configuration: %s\n", h->error);
        if (ctx->cfg.hsm_config[0] != '\0') {
            rv = KV_ERR_CONFIG; /* an explicit configuration must be right */
            goto done;
        }
        goto done;
    }
    snprintf(h->name, sizeof(h->name), "%s", c->name);
    if (c->softhsm2_conf[0] != '\0')
        setenv("SOFTHSM2_CONF", c->softhsm2_conf, 1);
    memset(mc, 0, sizeof(mc));
    /* a dev state made before so_pin_file was written to hsm.conf: the dev token's SO PIN */
    vd_hsm_path(ctx, "softhsm/so.pin", sopin, sizeof(sopin));
    for (i = 0; i < c->n; i++) {
        mc[i].module = c->m[i].module[0] ? c->m[i].module : NULL;
        mc[i].token_label = c->m[i].token[0] ? c->m[i].token : NULL;
        mc[i].pin = c->m[i].pin[0] ? c->m[i].pin : NULL;
        mc[i].pin_file = c->m[i].pin_file[0] ? c->m[i].pin_file : NULL;
        mc[i].so_pin = c->m[i].so_pin[0] ? c->m[i].so_pin : NULL;
        mc[i].so_pin_file = c->m[i].so_pin_file[0] ? c->m[i].so_pin_file : NULL;
        if (ctx->cfg.dev && ctx->cfg.hsm_config[0] == '\0' && mc[i].so_pin == NULL &&
            mc[i].so_pin_file == NULL && strcmp(c->m[i].token, "vaultd-dev") == 0 &&
            vd_hsm_exists(sopin))
            mc[i].so_pin_file = sopin;
    }
    if (kv_hsm_pool_open(c->name, mc, c->n, c->sessions, &h->pool, &err) != KV_OK) {
        snprintf(h->error, sizeof(h->error), "%s", err.message);
        fprintf(stderr, "vaultd: warning: %s; HSM-protected keys are unavailable\n", err.message);
    } else {
        fprintf(stderr, "vaultd: HSM pool '%s' ready (%zu member token%s)\n", c->name, c->n,
                c->n == 1 ? "" : "s");
        vd_hsm_wrapkey_setup(h, c);
    }
done:
    if (c != NULL) {
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
    }
    return rv;
}

void vd_hsm_free(vd_ctx *ctx)
{
    if (ctx == NULL || ctx->hsm == NULL)
        return;
    kv_hsm_pool_free(ctx->hsm->pool);
    free(ctx->hsm);
    ctx->hsm = NULL;
}

kv_hsm_pool *vd_hsm_pool(vd_ctx *ctx, kv_err *err)
{
    kv_err_clear(err);
    if (ctx->hsm == NULL) {
        kv_err_set(err, KV_ERR_UNSUPPORTED,
                   "this vaultd has no HSM pool (start it with "
                   "--hsm-config FILE)");
        return NULL;
    }
    if (ctx->hsm->pool == NULL) {
        kv_err_set(err, KV_ERR_SERVER, "HSM pool '%s' unavailable: %s", ctx->hsm->name,
                   ctx->hsm->error);
        return NULL;
    }
    return ctx->hsm->pool;
}

kv_rv vd_hsm_destroy_key(vd_ctx *ctx, const char *hsm_ref)
{
    kv_hsm_pool *pool;
    kv_err err;

    if (hsm_ref == NULL)
        return KV_OK;
    pool = vd_hsm_pool(ctx, &err);
    if (pool == NULL)
        return err.rv;
    return kv_hsm_destroy(pool, hsm_ref, &err);
}

void vd_hsm_replicate(vd_ctx *ctx, const char *hsm_ref)
{
    kv_hsm_pool *pool;
    size_t copies = 0;
    kv_err err;

    pool = vd_hsm_pool(ctx, &err);
    if (pool == NULL || hsm_ref == NULL || kv_hsm_pool_members(pool) < 2)
        return;
    if (kv_hsm_replicate(pool, hsm_ref, &copies, &err) != KV_OK)
        fprintf(stderr,
                "vaultd: warning: HSM pool '%s': a key was not replicated to every member: "
                "%s\n",
                kv_hsm_pool_name(pool), err.message);
}

kv_rv vd_hsm_generate_like(vd_ctx *ctx, const vd_key_row *like, vd_key_row *out, kv_err *err)
{
    kv_hsm_keyspec spec = {KV_HSM_RSA, 0, 0};
    char ref[KV_HSM_REF_MAX], label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    EVP_PKEY *old = NULL, *pub = NULL;
    kv_hsm_pool *pool;
    kv_rv rv;

    pool = vd_hsm_pool(ctx, err);
    if (pool == NULL)
        return err->rv;
    if (strcmp(like->kty, "oct") == 0) {
        spec.type = KV_HSM_AES;
        rv = kv_hsm_secret_bits(pool, like->hsm_ref, &spec.bits, err);
        if (rv != KV_OK)
            return rv;
    } else {
        rv = vd_crypto_pub_from_der(like->pub_der, like->pub_len, &old);
        if (rv != KV_OK)
            return kv_err_set(err, rv, "the key's public part is unreadable");
        spec.type = strcmp(like->kty, "EC") == 0 ? KV_HSM_EC : KV_HSM_RSA;
        spec.bits = EVP_PKEY_get_bits(old);
        spec.curve_nid = vd_crypto_curve_nid(old);
        EVP_PKEY_free(old);
    }
    snprintf(label, sizeof(label), "vaultd/%s/%s/%s", out->vault, out->name, out->version);
    rv = kv_hsm_generate(pool, &spec, label, ref, spec.type == KV_HSM_AES ? NULL : &pub, err);
    if (rv != KV_OK)
        return rv;
    vd_hsm_replicate(ctx, ref);
    out->hsm_ref = strdup(ref);
    if (out->hsm_ref == NULL ||
        (pub != NULL && vd_crypto_pub_der(pub, &out->pub_der, &out->pub_len) != KV_OK)) {
        (void)kv_hsm_destroy(pool, ref, NULL);
        free(out->hsm_ref);
        out->hsm_ref = NULL;
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    }
    EVP_PKEY_free(pub);
    return rv;
}

/* ---- the KEK ---- */

bool vd_hsm_kek_in_pool(vd_ctx *ctx)
{
    char path[PATH_MAX + 16];
    kv_err err;

    if (ctx->hsm == NULL)
        return false;
    vd_hsm_path(ctx, "kek.hsm", path, sizeof(path));
    if (vd_hsm_exists(path))
        return true;
    vd_hsm_path(ctx, "kek.bin", path, sizeof(path));
    if (vd_hsm_exists(path))
        return false;
    if (strcmp(ctx->cfg.kek_location, "file") == 0)
        return false;
    if (strcmp(ctx->cfg.kek_location, "hsm") == 0)
        return true;
    return ctx->hsm->pool != NULL && kv_hsm_pool_check(ctx->hsm->pool, &err) == KV_OK;
}

static void vd_hex(const uint8_t *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static bool vd_unhex(const char *s, uint8_t *out, size_t n)
{
    size_t i;
    unsigned int v;

    if (strlen(s) != 2 * n)
        return false;
    for (i = 0; i < n; i++) {
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* kek.hsm: "ref=...\niv=HEX\ntag=HEX\nct=HEX\n" - the 32-byte KEK under the pool's AES key. */
static kv_rv vd_hsm_create_kek(vd_ctx *ctx, kv_hsm_pool *pool, const char *path)
{
    kv_hsm_keyspec spec = {KV_HSM_AES, 256, 0};
    char ref[KV_HSM_REF_MAX], text[KV_HSM_REF_MAX + 256], ivh[25], tagh[33], cth[65];
    uint8_t dek[VD_KEK_LEN], iv[12], tag[16], *ct = NULL;
    size_t ctlen = 0;
    kv_err err;
    kv_rv rv;
    int n;

    rv = kv_hsm_generate(pool, &spec, "vaultd/kek", ref, NULL, &err);
    if (rv == KV_OK && RAND_priv_bytes(dek, sizeof(dek)) != 1)
        rv = KV_ERR_INTERNAL;
    if (rv == KV_OK)
        rv = kv_hsm_aes_gcm_encrypt(pool, ref, (const uint8_t *)VD_KEK_AAD, strlen(VD_KEK_AAD), dek,
                                    sizeof(dek), iv, &ct, &ctlen, tag, &err);
    OPENSSL_cleanse(dek, sizeof(dek));
    if (rv != KV_OK || ctlen != VD_KEK_LEN) {
        fprintf(stderr, "vaultd: cannot create the KEK in the HSM pool: %s\n", err.message);
        free(ct);
        return KV_ERR_CONFIG;
    }
    vd_hex(iv, sizeof(iv), ivh);
    vd_hex(tag, sizeof(tag), tagh);
    vd_hex(ct, ctlen, cth);
    free(ct);
    n = snprintf(text, sizeof(text), "ref=%s\niv=%s\ntag=%s\nct=%s\n", ref, ivh, tagh, cth);
    rv = vd_write_file(path, text, (size_t)n, 0600);
    if (rv == KV_OK)
        fprintf(stderr, "vaultd: the key-encryption key lives in HSM pool '%s'\n",
                kv_hsm_pool_name(pool));
    (void)ctx;
    return rv;
}

kv_rv vd_hsm_load_kek(vd_ctx *ctx)
{
    char path[PATH_MAX + 16], *line, *save = NULL, ref[KV_HSM_REF_MAX] = "";
    uint8_t *raw = NULL, iv[12], tag[16], ct[VD_KEK_LEN], *pt = NULL;
    size_t len = 0, ptlen = 0;
    int have = 0;
    kv_hsm_pool *pool;
    kv_err err;
    kv_rv rv;

    vd_hsm_path(ctx, "kek.hsm", path, sizeof(path));
    pool = vd_hsm_pool(ctx, &err);
    if (pool == NULL) {
        fprintf(stderr,
                "vaultd: the key-encryption key lives in the HSM pool, which is "
                "unavailable: %s\n",
                err.message);
        return KV_ERR_CONFIG;
    }
    if (kv_hsm_pool_check(pool, &err) != KV_OK) {
        fprintf(stderr,
                "vaultd: the key-encryption key lives in the HSM pool, which is "
                "unavailable: %s\n",
                err.message);
        return KV_ERR_CONFIG;
    }
    if (!vd_hsm_exists(path) && (rv = vd_hsm_create_kek(ctx, pool, path)) != KV_OK)
        return rv;
    rv = vd_read_file(path, 4096, &raw, &len);
    if (rv != KV_OK) {
        fprintf(stderr, "vaultd: cannot read %s\n", path);
        return KV_ERR_CONFIG;
    }
    for (line = strtok_r((char *)raw, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "ref=", 4) == 0 && strlen(line + 4) < sizeof(ref)) {
            snprintf(ref, sizeof(ref), "%s", line + 4);
            have |= 1;
        } else if (strncmp(line, "iv=", 3) == 0 && vd_unhex(line + 3, iv, sizeof(iv))) {
            have |= 2;
        } else if (strncmp(line, "tag=", 4) == 0 && vd_unhex(line + 4, tag, sizeof(tag))) {
            have |= 4;
        } else if (strncmp(line, "ct=", 3) == 0 && vd_unhex(line + 3, ct, sizeof(ct))) {
            have |= 8;
        }
    }
    free(raw);
    if (have != 15) {
        fprintf(stderr, "vaultd: %s is malformed\n", path);
        return KV_ERR_CONFIG;
    }
    rv = kv_hsm_aes_gcm_decrypt(pool, ref, iv, (const uint8_t *)VD_KEK_AAD, strlen(VD_KEK_AAD), ct,
                                sizeof(ct), tag, &pt, &ptlen, &err);
    if (rv != KV_OK || ptlen != VD_KEK_LEN) {
        fprintf(stderr, "vaultd: cannot unwrap the key-encryption key in HSM pool '%s': %s\n",
                ctx->hsm->name, err.message);
        if (pt != NULL)
            OPENSSL_clear_free(pt, ptlen);
        return KV_ERR_CONFIG;
    }
    memcpy(ctx->kek, pt, VD_KEK_LEN);
    OPENSSL_clear_free(pt, ptlen);
    ctx->hsm->kek_in_pool = true;
    return KV_OK;
}

bool vd_store_hsm_ref_shared(vd_store *st, const char *hsm_ref, const char *vault, const char *name)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *q = NULL;
    bool shared = true;
    int rc;

    if (db == NULL || hsm_ref == NULL || vault == NULL || name == NULL)
        return true;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM keys WHERE hsm_ref = ?1 AND NOT "
                           "(vault = ?2 COLLATE NOCASE AND name = ?3 COLLATE NOCASE) LIMIT 1",
                           -1, &q, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_text(q, 1, hsm_ref, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        shared = false;
done:
    sqlite3_finalize(q);
    return shared;
}

/* ---- schema ---- */

kv_rv vd_store_hsm_migrate(vd_store *st)
{
    sqlite3 *db = vd_store_sqlite(st);
    char *msg = NULL;
    kv_rv rv = KV_OK;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_exec(db, "ALTER TABLE keys ADD COLUMN hsm_ref TEXT", NULL, NULL, &msg) !=
        SQLITE_OK) {
        if (msg == NULL || strstr(msg, "duplicate column name") == NULL) {
            fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
            rv = KV_ERR_INTERNAL;
        }
    }
    sqlite3_free(msg);
    return rv;
}
