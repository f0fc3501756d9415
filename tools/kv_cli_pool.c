/* kv_cli_pool.c - `kvault pool init|status`: a local HSM pool ([pool NAME] in kvault.conf)
 * from the client side. init gives every member token the pool wrapping key (32 random
 * bytes, optionally sealed into an escrow file under a passphrase, zeroised after use);
 * status shows the members, the wrapping key and where each key has copies. */
#include "kv_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ui.h>

#include "kv_hsm.h"
#include "kv_pool.h"

/* The pool named --name, opened. */
static int kv_pool_open_named(kv_cli *cli, const kv_args *args, kv_vault **v, kv_hsm_pool **h)
{
    kv_err err = {0};
    int rc;

    rc = kv_cli_vault(cli, kv_args_get(args, "--name"), v);
    if (rc != KV_EXIT_OK)
        return rc;
    if (!kv_vault_is_local_pool(*v)) {
        fprintf(stderr, "ERROR: '%s' is a vault, not a local HSM pool ([pool NAME] section)\n",
                kv_vault_name(*v));
        return KV_EXIT_USAGE;
    }
    if (kv_pool_hsm(*v, h, &err) != KV_OK) {
        fprintf(stderr, "ERROR: %s\n", err.message);
        return KV_EXIT_ERROR;
    }
    return KV_EXIT_OK;
}

/* The escrow passphrase: the first line of --escrow-passphrase-file, else asked on the
 * terminal (twice when a new escrow is written). *out: malloc'd, zeroise with kv_free_secret. */
static int kv_pool_passphrase(const kv_args *args, bool verify, char **out)
{
    const char *file = kv_args_get(args, "--escrow-passphrase-file");
    char buf[1024];
    size_t n;

    *out = NULL;
    if (file != NULL) {
        FILE *f = fopen(file, "r");

        if (f == NULL) {
            fprintf(stderr, "ERROR: cannot read %s: %s\n", file, strerror(errno));
            return KV_EXIT_ERROR;
        }
        if (fgets(buf, sizeof(buf), f) == NULL)
            buf[0] = '\0';
        fclose(f);
    } else if (EVP_read_pw_string(buf, sizeof(buf), "Escrow passphrase: ", verify ? 1 : 0) != 0) {
        fprintf(stderr, "ERROR: no escrow passphrase (give --escrow-passphrase-file FILE)\n");
        return KV_EXIT_ERROR;
    }
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "ERROR: the escrow passphrase is empty\n");
        return KV_EXIT_ERROR;
    }
    *out = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return *out != NULL ? KV_EXIT_OK : KV_EXIT_ERROR;
}

/* Writes text to a new file (mode 0600; an existing file is never overwritten). */
static int kv_pool_write_new(const char *path, const char *text)
{
    size_t len = strlen(text), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0) {
        fprintf(stderr, "ERROR: cannot create the escrow file %s: %s\n", path, strerror(errno));
        return KV_EXIT_ERROR;
    }
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);

        if (w <= 0) {
            fprintf(stderr, "ERROR: cannot write %s: %s\n", path, strerror(errno));
            close(fd);
            unlink(path);
            return KV_EXIT_ERROR;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "ERROR: cannot write %s: %s\n", path, strerror(errno));
        unlink(path);
        return KV_EXIT_ERROR;
    }
    return KV_EXIT_OK;
}

/* Reads an escrow file (at most 64 KiB); *out malloc'd. */
static int kv_pool_read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "ERROR: cannot read the escrow file %s: %s\n", path, strerror(errno));
        return KV_EXIT_ERROR;
    }
    buf = calloc(1, 65537);
    n = buf != NULL ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (buf == NULL)
        return KV_EXIT_ERROR;
    buf[n] = '\0';
    *out = buf;
    return KV_EXIT_OK;
}

static json_t *kv_pool_wrap_json(const kv_hsm_wrapkey_status *st)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:b, s:s?, s:s}", "members", (json_int_t)st->members,
                     "reachable", (json_int_t)st->reachable, "holding", (json_int_t)st->holding,
                     "trusted", (json_int_t)st->trusted, "consistent", st->consistent,
                     "fingerprint", st->fingerprint[0] ? st->fingerprint : NULL, "missing",
                     st->missing);
}

static const kv_arg_spec kv_pool_init_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the pool ([pool NAME])."},
    {"--escrow", NULL, KV_ARG_VALUE, 0, "FILE",
     "Keep the wrapping key sealed under a passphrase in FILE (a new file, mode 0600); when the "
     "pool already has a wrapping key, FILE is the escrow to provision members that lack it."},
    {"--escrow-passphrase-file", NULL, KV_ARG_VALUE, 0, "FILE",
     "Read the escrow passphrase from the first line of FILE (else it is asked for)."},
};

static int kv_pool_init(kv_cli *cli, const kv_args *args)
{
    const char *escrow = kv_args_get(args, "--escrow");
    uint8_t material[KV_HSM_WRAPKEY_LEN];
    kv_hsm_wrapkey_status st;
    char fp[KV_HSM_FP_HEX] = "", *pass = NULL, *text = NULL;
    kv_hsm_pool *h = NULL;
    kv_vault *v = NULL;
    kv_hsm_keyinfo *ks = NULL;
    kv_err err = {0};
    size_t made = 0, copies = 0, nk = 0, i;
    bool fresh;
    kv_rv rv;
    int rc;

    OPENSSL_cleanse(material, sizeof(material));
    rc = kv_pool_open_named(cli, args, &v, &h);
    if (rc != KV_EXIT_OK)
        return rc;
    rc = KV_EXIT_ERROR;
    rv = kv_hsm_wrapkey_status_get(h, &st, &err);
    if (rv != KV_OK) {
        fprintf(stderr, "ERROR: %s\n", err.message);
        goto done;
    }
    if (!st.consistent) {
        fprintf(stderr,
                "ERROR: pool %s: the members hold different pool wrapping keys; see `kvault "
                "pool status -n %s`\n",
                kv_vault_name(v), kv_vault_name(v));
        goto done;
    }
    fresh = st.holding == 0;
    if (!fresh && st.missing[0] == '\0') { /* nothing to do */
        snprintf(fp, sizeof(fp), "%s", st.fingerprint);
        goto report;
    }
    if (!fresh && escrow == NULL) {
        fprintf(stderr,
                "ERROR: pool %s already has a wrapping key (fingerprint %s) on %zu member(s); "
                "members without it (%s) can get it only from its escrow: give --escrow FILE\n",
                kv_vault_name(v), st.fingerprint, st.holding, st.missing);
        goto done;
    }
    if (escrow != NULL && kv_pool_passphrase(args, fresh, &pass) != KV_EXIT_OK)
        goto done;
    if (fresh) {
        if (RAND_priv_bytes(material, sizeof(material)) != 1 ||
            kv_hsm_wrapkey_fingerprint(material, fp, &err) != KV_OK) {
            fprintf(stderr, "ERROR: cannot make the pool wrapping key\n");
            goto done;
        }
        /* the escrow first: a key provisioned without its escrow could not be given to a
         * member added later */
        if (escrow != NULL && (kv_hsm_wrapkey_seal(material, pass, &text, &err) != KV_OK ||
                               kv_pool_write_new(escrow, text) != KV_EXIT_OK)) {
            if (err.message[0] != '\0')
                fprintf(stderr, "ERROR: %s\n", err.message);
            goto done;
        }
    } else {
        if (kv_pool_read_file(escrow, &text) != KV_EXIT_OK)
            goto done;
        if (kv_hsm_wrapkey_unseal(text, pass, material, &err) != KV_OK ||
            kv_hsm_wrapkey_fingerprint(material, fp, &err) != KV_OK) {
            fprintf(stderr, "ERROR: %s: %s\n", escrow, err.message);
            goto done;
        }
        if (CRYPTO_memcmp(fp, st.fingerprint, sizeof(fp)) != 0) {
            fprintf(stderr,
                    "ERROR: %s holds the wrapping key %s, but pool %s holds %s: a different "
                    "escrow\n",
                    escrow, fp, kv_vault_name(v), st.fingerprint);
            goto done;
        }
    }
    rv = kv_hsm_wrapkey_provision(h, material, &made, &err);
    if (rv != KV_OK) {
        fprintf(stderr, "ERROR: %s\n", err.message);
        goto done;
    }
report:
    /* keys made before a member joined: copied to it now (wrapped under the pool key) */
    if (kv_hsm_list_keys(h, NULL, &ks, &nk, &err) == KV_OK) {
        for (i = 0; i < nk; i++) {
            size_t c = 0;

            if (ks[i].copies >= kv_hsm_pool_members(h))
                continue;
            if (kv_hsm_replicate(h, ks[i].ref, &c, &err) != KV_OK)
                fprintf(stderr, "WARNING: key %s not copied to every member: %s\n", ks[i].label,
                        err.message);
            copies += c;
        }
    }
    if (kv_hsm_wrapkey_status_get(h, &st, &err) != KV_OK) {
        fprintf(stderr, "ERROR: %s\n", err.message);
        goto done;
    }
    rc = kv_cli_print(cli, json_pack("{s:s, s:s, s:I, s:I, s:s?, s:o}", "pool", kv_vault_name(v),
                                     "fingerprint", fp, "provisioned", (json_int_t)made,
                                     "keysCopied", (json_int_t)copies, "escrow", escrow, "wrapKey",
                                     kv_pool_wrap_json(&st)));
    if (rc == KV_EXIT_OK && st.reachable < st.members)
        fprintf(stderr,
                "WARNING: pool %s: %zu of %zu members did not answer; run `kvault pool init` "
                "again (with --escrow FILE) when they are back\n",
                kv_vault_name(v), st.members - st.reachable, st.members);
    if (rc == KV_EXIT_OK && st.trusted < st.holding)
        fprintf(stderr,
                "WARNING: pool %s: the wrapping key is not trusted on every member (no SO PIN: "
                "so_pin_file); see docs/hsm-pool.md\n",
                kv_vault_name(v));
done:
    kv_hsm_keyinfo_free(ks, nk);
    OPENSSL_cleanse(material, sizeof(material));
    kv_free_secret(pass);
    if (text != NULL)
        OPENSSL_clear_free(text, strlen(text));
    return rc;
}

static const kv_arg_spec kv_pool_status_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the pool ([pool NAME])."},
};

static const char *const kv_pool_kty[] = {"RSA-HSM", "EC-HSM", "oct-HSM"};

static int kv_pool_status(kv_cli *cli, const kv_args *args)
{
    kv_hsm_wrapkey_status st;
    kv_hsm_keyinfo *ks = NULL;
    kv_hsm_pool *h = NULL;
    kv_vault *v = NULL;
    json_t *members = json_array(), *keys = json_array(), *wrap = NULL;
    kv_err err = {0};
    size_t i, j, nk = 0;
    int rc;

    rc = kv_pool_open_named(cli, args, &v, &h);
    if (rc != KV_EXIT_OK || members == NULL || keys == NULL)
        goto done;
    rc = KV_EXIT_ERROR;
    for (i = 0; i < kv_hsm_pool_members(h); i++) {
        kv_hsm_member_info mi;

        if (kv_hsm_member_info_get(h, i, &mi, &err) != KV_OK)
            goto done;
        json_array_append_new(
            members, json_pack("{s:s, s:s, s:b, s:s?, s:b, s:b, s:s?, s:I, s:I, s:I}", "token",
                               mi.label, "module", mi.module, "reachable", mi.reachable, "error",
                               mi.reachable ? NULL : mi.error, "wrapKey", mi.wrapkey, "trusted",
                               mi.trusted, "fingerprint", mi.fingerprint[0] ? mi.fingerprint : NULL,
                               "keys", (json_int_t)mi.keys, "served", (json_int_t)mi.served,
                               "failures", (json_int_t)mi.failures));
    }
    if (kv_hsm_wrapkey_status_get(h, &st, &err) == KV_OK)
        wrap = kv_pool_wrap_json(&st);
    if (kv_hsm_list_keys(h, NULL, &ks, &nk, &err) == KV_OK) {
        for (j = 0; j < nk; j++) {
            char ver[2 * 64 + 1];
            size_t b;

            for (b = 0; b < ks[j].idlen; b++)
                snprintf(ver + 2 * b, 3, "%02x", ks[j].id[b]);
            ver[2 * ks[j].idlen] = '\0';
            json_array_append_new(
                keys, json_pack("{s:s, s:s, s:s, s:i, s:I, s:b}", "name", ks[j].label, "version",
                                ver, "kty", kv_pool_kty[ks[j].type], "bits", ks[j].bits, "copies",
                                (json_int_t)ks[j].copies, "imported", !ks[j].local));
        }
    }
    rc = kv_cli_print(cli, json_pack("{s:s, s:o, s:o, s:o}", "name", kv_vault_name(v), "members",
                                     members, "wrapKey", wrap ? wrap : json_null(), "keys", keys));
    members = keys = NULL;
done:
    kv_hsm_keyinfo_free(ks, nk);
    json_decref(members);
    json_decref(keys);
    return rc;
}

static const kv_cli_cmd kv_pool_cmds[] = {
    {"init", "Give every member token of a local HSM pool the pool wrapping key.",
     kv_pool_init_specs, KV_NELEM(kv_pool_init_specs), kv_pool_init,
     "kvault pool init -n hsmpool --escrow /secure/hsmpool.escrow"},
    {"status", "Show a local HSM pool's members, wrapping key and keys.", kv_pool_status_specs,
     KV_NELEM(kv_pool_status_specs), kv_pool_status, "kvault pool status -n hsmpool -o jsonc"},
};

const kv_cli_group kv_cli_pool_group = {"pool", "Manage local HSM pools ([pool NAME] sections).",
                                        kv_pool_cmds, KV_NELEM(kv_pool_cmds)};
