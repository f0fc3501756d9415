/* kv_pool.c - the local HSM-pool backend: a [pool NAME] section becomes a kv_vault whose keys
 * live on several PKCS#11 member tokens (kv_hsm.c), so kvault.so shows it as one more slot.
 *
 * Keys are token objects named by CKA_LABEL (= key name) and CKA_ID (version = its hex); a key
 * made here (generate or import) is replicated to every member under the pool wrapping key
 * (kv_hsm_replicate). Operations start at a rotating member holding the key and fail over to
 * the next one (kv_hsm_pool_set_spread); a failed member rests for retry_seconds. The members
 * are opened on first use, so a host that loads kvault.so and forks (nginx, apache) opens
 * them in the child; kv_hsm re-initialises the modules in a child anyway. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kv_backend.h"
#include "kv_hsm.h"
#include "kv_log.h"
#include "kv_pool.h"

#define KV_POOL_TRIES 3 /* attempts of one operation when members fail under it */

/* Process-wide: whether the process is exiting. Member modules (SoftHSMv2 ...) tear themselves
 * down in exit handlers, and a context freed later at exit (the OpenSSL provider's teardown
 * runs in OPENSSL_cleanup) must not call into them: the pools are then left to the OS. The
 * handler is registered after the first pool opened its modules, so it runs before theirs. */
static struct {
    pthread_once_t once;
    int exiting; /* atomic */
} kv_pool_process = {PTHREAD_ONCE_INIT, 0};

static void kv_pool_atexit(void)
{
    __atomic_store_n(&kv_pool_process.exiting, 1, __ATOMIC_SEQ_CST);
}

static void kv_pool_register_atexit(void)
{
    if (atexit(kv_pool_atexit) != 0)
        KV_WARN("local pools: cannot register the exit handler");
}

typedef struct kv_pool {
    pthread_mutex_t lock; /* serialises opening */
    pid_t pid;            /* the process that made lock */
    kv_hsm_pool *hsm;     /* NULL until first use (atomic) */
} kv_pool;

/* ---- opening ---- */

kv_rv kv_pool_hsm(kv_vault *v, kv_hsm_pool **out, kv_err *err)
{
    kv_pool *p;
    const kv_pool_conf *pc;
    kv_hsm_member_cfg *mc = NULL;
    kv_hsm_pool *h = NULL;
    size_t i;
    kv_rv rv = KV_OK;

    if (v == NULL || out == NULL || !kv_vault_is_local_pool(v))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "not a local HSM pool");
    p = v->impl;
    pc = v->conf->pool;
    *out = __atomic_load_n(&p->hsm, __ATOMIC_ACQUIRE);
    if (*out != NULL)
        return KV_OK;
    if (p->pid != getpid()) { /* a forked child: the parent's lock state is not ours */
        pthread_mutex_init(&p->lock, NULL);
        p->pid = getpid();
    }
    pthread_mutex_lock(&p->lock);
    *out = p->hsm;
    if (*out != NULL)
        goto done;
    mc = calloc(pc->nmembers, sizeof(*mc));
    if (mc == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < pc->nmembers; i++) {
        mc[i].module = pc->members[i].module;
        mc[i].token_label = pc->members[i].token;
        mc[i].pin = pc->members[i].pin;
        mc[i].pin_file = pc->members[i].pin_file;
        mc[i].so_pin_file = pc->so_pin_file;
    }
    rv = kv_hsm_pool_open(v->conf->name, mc, pc->nmembers, (size_t)pc->sessions, &h, err);
    if (h == NULL)
        goto done; /* a configuration error: tried again on the next call */
    if (rv != KV_OK)
        KV_WARN("local pool %s: %s (members are retried on use)", v->conf->name,
                err != NULL ? err->message : "no member answers");
    kv_hsm_pool_set_spread(h, true, (unsigned)pc->retry_seconds);
    pthread_once(&kv_pool_process.once, kv_pool_register_atexit);
    __atomic_store_n(&p->hsm, h, __ATOMIC_RELEASE);
    *out = h;
    rv = KV_OK;
    kv_err_clear(err);
done:
    pthread_mutex_unlock(&p->lock);
    free(mc);
    return rv;
}

/* ---- keys ---- */

/* A key name the vault API accepts (the label of a pool key). */
static bool kv_pool_name_ok(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'z') ||
              (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '-'))
            return false;
    return n >= 1 && n <= 127;
}

static bool kv_pool_info_ok(const kv_hsm_keyinfo *ki)
{
    return kv_pool_name_ok(ki->label) && ki->idlen <= 31 && ki->bits > 0 &&
           (ki->type == KV_HSM_AES || ki->spki != NULL);
}

static void kv_pool_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static kv_rv kv_pool_key_from(kv_vault *v, const kv_hsm_keyinfo *ki, kv_key **out, kv_err *err)
{
    kv_key *k = kv_key_new();
    const unsigned char *p;
    size_t o, i;

    if (k == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    snprintf(k->vault, sizeof(k->vault), "%s", v->conf->name);
    snprintf(k->name, sizeof(k->name), "%.127s", ki->label);
    kv_pool_hex(ki->id, ki->idlen, k->version);
    o = (size_t)snprintf(k->kid, sizeof(k->kid), "pkcs11:token=%s;object=%.127s;id=", v->conf->name,
                         ki->label);
    for (i = 0; i < ki->idlen && o + 4 < sizeof(k->kid); i++)
        o += (size_t)snprintf(k->kid + o, sizeof(k->kid) - o, "%%%02x", ki->id[i]);
    snprintf(k->kid + o, sizeof(k->kid) - o, ";type=%s",
             ki->type == KV_HSM_AES ? "secret-key" : "private");
    k->kty = ki->type == KV_HSM_RSA ? KV_KTY_RSA : ki->type == KV_HSM_EC ? KV_KTY_EC : KV_KTY_OCT;
    k->hsm = true;
    k->curve_nid = ki->curve_nid;
    k->bits = ki->bits;
    k->key_ops = ((ki->caps & KV_HSM_CAN_SIGN) ? KV_OP_SIGN : 0u) |
                 ((ki->caps & KV_HSM_CAN_VERIFY) ? KV_OP_VERIFY : 0u) |
                 ((ki->caps & KV_HSM_CAN_ENCRYPT) ? KV_OP_ENCRYPT : 0u) |
                 ((ki->caps & KV_HSM_CAN_DECRYPT) ? KV_OP_DECRYPT : 0u) |
                 ((ki->caps & KV_HSM_CAN_WRAP) ? KV_OP_WRAP : 0u) |
                 ((ki->caps & KV_HSM_CAN_UNWRAP) ? KV_OP_UNWRAP : 0u);
    k->enabled = true;
    k->imported = !ki->local;
    k->wrappable = ki->extractable;
    snprintf(k->ref, sizeof(k->ref), "%s", ki->ref);
    if (ki->spki != NULL) {
        p = ki->spki;
        k->pub = d2i_PUBKEY_ex(NULL, &p, (long)ki->spkilen, kv_ctx_libctx(v->ctx), NULL);
        if (k->pub == NULL) {
            kv_key_unref(k);
            return kv_err_set(err, KV_ERR_INTERNAL, "local pool %s: key %s: bad public key",
                              v->conf->name, ki->label);
        }
    }
    *out = k;
    return KV_OK;
}

/* The keys named name (every version), or all keys (name NULL). */
static kv_rv kv_pool_list(kv_vault *v, const char *name, kv_hsm_keyinfo **out, size_t *n,
                          kv_err *err)
{
    kv_hsm_pool *h;
    size_t i, o = 0;
    kv_rv rv;

    *out = NULL;
    *n = 0;
    rv = kv_pool_hsm(v, &h, err);
    if (rv != KV_OK)
        return rv;
    rv = kv_hsm_list_keys(h, name, out, n, err);
    if (rv != KV_OK)
        return rv;
    for (i = 0; i < *n; i++) { /* keep only keys the vault API can name */
        if (kv_pool_info_ok(&(*out)[i])) {
            (*out)[o++] = (*out)[i];
        } else {
            OPENSSL_free((*out)[i].spki);
            (*out)[i].spki = NULL;
        }
    }
    *n = o;
    return KV_OK;
}

/* The version to use for a name: the one most members hold, then the smallest CKA_ID. */
static bool kv_pool_better(const kv_hsm_keyinfo *a, const kv_hsm_keyinfo *b)
{
    size_t n = a->idlen < b->idlen ? a->idlen : b->idlen;
    int c;

    if (a->copies != b->copies)
        return a->copies > b->copies;
    c = memcmp(a->id, b->id, n);
    return c < 0 || (c == 0 && a->idlen < b->idlen);
}

static kv_rv pool_get_key(kv_vault *v, const char *name, const char *version, kv_key **out,
                          kv_err *err)
{
    kv_hsm_keyinfo *ks = NULL;
    size_t n = 0, i, best = (size_t)-1;
    char hex[64];
    kv_rv rv;

    *out = NULL;
    rv = kv_pool_list(v, name, &ks, &n, err);
    if (rv != KV_OK)
        return rv;
    for (i = 0; i < n; i++) {
        if (strcmp(ks[i].label, name) != 0)
            continue;
        if (version != NULL && *version != '\0') {
            kv_pool_hex(ks[i].id, ks[i].idlen, hex);
            if (strcasecmp(hex, version) != 0)
                continue;
        }
        if (best == (size_t)-1 || kv_pool_better(&ks[i], &ks[best]))
            best = i;
    }
    if (best == (size_t)-1)
        rv = kv_err_set(err, KV_ERR_NOT_FOUND, "local pool %s has no key %s%s%s", v->conf->name,
                        name, version != NULL && *version ? " version " : "",
                        version != NULL ? version : "");
    else
        rv = kv_pool_key_from(v, &ks[best], out, err);
    kv_hsm_keyinfo_free(ks, n);
    return rv;
}

static int kv_pool_cmp_name(const void *a, const void *b)
{
    return strcmp((*(kv_key *const *)a)->name, (*(kv_key *const *)b)->name);
}

static kv_rv pool_list_keys(kv_vault *v, kv_key ***out, size_t *n, kv_err *err)
{
    kv_hsm_keyinfo *ks = NULL;
    size_t nk = 0, i, j, cnt = 0;
    kv_key **list = NULL;
    kv_rv rv;

    *out = NULL;
    *n = 0;
    rv = kv_pool_list(v, NULL, &ks, &nk, err);
    if (rv != KV_OK)
        return rv;
    list = calloc(nk ? nk : 1, sizeof(*list));
    if (list == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < nk; i++) {
        bool first = true;

        /* one entry per name: the version kv_pool_better picks */
        for (j = 0; j < nk && first; j++)
            if (j != i && strcmp(ks[j].label, ks[i].label) == 0 && kv_pool_better(&ks[j], &ks[i]))
                first = false;
        for (j = 0; j < cnt && first; j++)
            if (strcmp(list[j]->name, ks[i].label) == 0)
                first = false;
        if (!first)
            continue;
        rv = kv_pool_key_from(v, &ks[i], &list[cnt], err);
        if (rv != KV_OK)
            goto done;
        cnt++;
    }
    qsort(list, cnt, sizeof(*list), kv_pool_cmp_name);
    *out = list;
    *n = cnt;
    list = NULL;
done:
    kv_key_list_free(list, cnt);
    kv_hsm_keyinfo_free(ks, nk);
    return rv;
}

static kv_rv pool_list_versions(kv_vault *v, const char *name, kv_key ***out, size_t *n,
                                kv_err *err)
{
    kv_hsm_keyinfo *ks = NULL;
    size_t nk = 0, i, cnt = 0;
    kv_key **list = NULL;
    kv_rv rv;

    rv = kv_pool_list(v, name, &ks, &nk, err);
    if (rv != KV_OK)
        return rv;
    if (nk == 0) {
        rv = kv_err_set(err, KV_ERR_NOT_FOUND, "local pool %s has no key %s", v->conf->name, name);
        goto done;
    }
    list = calloc(nk, sizeof(*list));
    if (list == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < nk; i++) {
        if (strcmp(ks[i].label, name) != 0)
            continue;
        rv = kv_pool_key_from(v, &ks[i], &list[cnt], err);
        if (rv != KV_OK)
            goto done;
        cnt++;
    }
    *out = list;
    *n = cnt;
    list = NULL;
done:
    kv_key_list_free(list, cnt);
    kv_hsm_keyinfo_free(ks, nk);
    return rv;
}

/* KV_ERR_CONFLICT when name exists (a local pool keeps one version per key). */
static kv_rv kv_pool_check_free(kv_vault *v, const char *name, kv_err *err)
{
    kv_hsm_keyinfo *ks = NULL;
    size_t n = 0, i;
    bool taken = false;
    kv_rv rv;

    rv = kv_pool_list(v, name, &ks, &n, err);
    if (rv != KV_OK)
        return rv;
    for (i = 0; i < n; i++)
        taken = taken || strcmp(ks[i].label, name) == 0;
    kv_hsm_keyinfo_free(ks, n);
    if (taken)
        return kv_err_set(err, KV_ERR_CONFLICT,
                          "local pool %s already has a key %s (a pool keeps one version per key: "
                          "delete it first)",
                          v->conf->name, name);
    return KV_OK;
}

/* Replicates a new key to every member; on failure the key is destroyed again. */
static kv_rv kv_pool_spread_key(kv_vault *v, kv_hsm_pool *h, const char *name, const char *ref,
                                kv_err *err)
{
    size_t copies = 0;
    kv_rv rv;
    kv_err e;

    if (kv_hsm_pool_members(h) < 2)
        return KV_OK;
    rv = kv_hsm_replicate(h, ref, &copies, err);
    if (rv == KV_OK) {
        KV_DEBUG("local pool %s: key %s replicated to %zu member(s)", v->conf->name, name, copies);
        return KV_OK;
    }
    kv_hsm_destroy(h, ref, &e);
    if (rv == KV_ERR_UNSUPPORTED)
        kv_err_prefix(err, "cannot replicate the key to every member (run `kvault pool init` "
                           "to give the pool its wrapping key): ");
    else
        kv_err_prefix(err, "cannot replicate the key to every member: ");
    return rv;
}

static kv_rv pool_create_key(kv_vault *v, const char *name, const kv_key_create_params *p,
                             kv_key **out, kv_err *err)
{
    kv_hsm_keyspec spec;
    kv_hsm_pool *h;
    char ref[KV_HSM_REF_MAX];
    kv_key *k = NULL;
    int t;
    kv_rv rv;

    if (out != NULL)
        *out = NULL;
    memset(&spec, 0, sizeof(spec));
    switch (p->kty) {
    case KV_KTY_RSA:
        spec.type = KV_HSM_RSA;
        spec.bits = p->bits ? p->bits : 2048;
        break;
    case KV_KTY_EC:
        spec.type = KV_HSM_EC;
        spec.curve_nid = p->curve_nid;
        break;
    case KV_KTY_OCT:
        spec.type = KV_HSM_AES;
        spec.bits = p->bits ? p->bits : 256;
        break;
    default:
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "unsupported key type");
    }
    rv = kv_pool_hsm(v, &h, err);
    if (rv == KV_OK)
        rv = kv_pool_check_free(v, name, err);
    if (rv != KV_OK)
        return rv;
    t = 0;
    do
        rv = kv_hsm_generate(h, &spec, name, ref, NULL, err);
    while (rv == KV_ERR_SERVER && ++t < KV_POOL_TRIES);
    if (rv == KV_OK)
        rv = kv_pool_spread_key(v, h, name, ref, err);
    if (rv != KV_OK)
        return rv;
    rv = pool_get_key(v, name, NULL, &k, err);
    if (rv == KV_OK && out != NULL)
        *out = k;
    else
        kv_key_unref(k);
    return rv;
}

static kv_rv pool_import_key(kv_vault *v, const char *name, const kv_key_import_params *p,
                             kv_key **out, kv_err *err)
{
    kv_hsm_pool *h;
    char ref[KV_HSM_REF_MAX];
    kv_key *k = NULL;
    int t = 0;
    kv_rv rv;

    if (out != NULL)
        *out = NULL;
    rv = kv_pool_hsm(v, &h, err);
    if (rv == KV_OK)
        rv = kv_pool_check_free(v, name, err);
    if (rv != KV_OK)
        return rv;
    do
        rv = p->pkey != NULL ? kv_hsm_import_pkey(h, p->pkey, name, ref, err)
                             : kv_hsm_import_aes(h, p->oct, p->octlen, name, ref, err);
    while (rv == KV_ERR_SERVER && ++t < KV_POOL_TRIES);
    if (rv == KV_OK)
        rv = kv_pool_spread_key(v, h, name, ref, err);
    if (rv != KV_OK)
        return rv;
    rv = pool_get_key(v, name, NULL, &k, err);
    if (rv == KV_OK && out != NULL)
        *out = k;
    else
        kv_key_unref(k);
    return rv;
}

static kv_rv pool_delete_key(kv_vault *v, const char *name, kv_err *err)
{
    kv_hsm_keyinfo *ks = NULL;
    kv_hsm_pool *h;
    size_t n = 0, i, found = 0;
    kv_rv rv;

    rv = kv_pool_hsm(v, &h, err);
    if (rv == KV_OK)
        rv = kv_pool_list(v, name, &ks, &n, err);
    if (rv != KV_OK)
        return rv;
    for (i = 0; i < n && rv == KV_OK; i++) {
        if (strcmp(ks[i].label, name) != 0)
            continue;
        found++;
        rv = kv_hsm_destroy(h, ks[i].ref, err);
        if (rv == KV_ERR_SERVER)
            kv_err_prefix(err, "the key was destroyed on the members that answered, but a copy "
                               "may stay on an unavailable member (delete it again when the "
                               "member is back): ");
    }
    kv_hsm_keyinfo_free(ks, n);
    if (rv == KV_OK && found == 0)
        rv = kv_err_set(err, KV_ERR_NOT_FOUND, "local pool %s has no key %s", v->conf->name, name);
    return rv;
}

static kv_rv pool_update_key(kv_vault *v, const kv_key *k, const kv_key_update_params *p,
                             kv_key **out, kv_err *err)
{
    (void)k;
    (void)p;
    if (out != NULL)
        *out = NULL;
    return kv_err_set(err, KV_ERR_UNSUPPORTED,
                      "local pool %s cannot change a key's enabled, nbf, exp or key_ops: its "
                      "member tokens keep key attributes fixed (delete the key and create or "
                      "import it again)",
                      v->conf->name);
}

/* ---- operations ---- */

/* Runs expr until it succeeds or fails otherwise than "member unavailable" (the failed
 * member rests; the next attempt starts at another one). */
#define KV_POOL_RUN(rv, expr)                                                                      \
    do {                                                                                           \
        int kv_try_ = 0;                                                                           \
        do                                                                                         \
            (rv) = (expr);                                                                         \
        while ((rv) == KV_ERR_SERVER && ++kv_try_ < KV_POOL_TRIES);                                \
    } while (0)

static kv_rv pool_sign(kv_vault *v, const kv_key *k, kv_alg alg, const uint8_t *digest, size_t dlen,
                       uint8_t *sig, size_t siglen, kv_err *err)
{
    kv_hsm_sig kind = KV_HSM_SIG_PKCS1;
    const EVP_MD *md = NULL;
    kv_hsm_pool *h;
    uint8_t *s = NULL;
    size_t slen = 0;
    kv_rv rv;

    switch (alg) {
    case KV_ALG_RS256:
    case KV_ALG_PS256:
        md = EVP_sha256();
        break;
    case KV_ALG_RS384:
    case KV_ALG_PS384:
        md = EVP_sha384();
        break;
    case KV_ALG_RS512:
    case KV_ALG_PS512:
        md = EVP_sha512();
        break;
    case KV_ALG_RSNULL:
        kind = KV_HSM_SIG_PKCS1_RAW;
        break;
    default:
        kind = KV_HSM_SIG_ECDSA;
        break;
    }
    if (alg == KV_ALG_PS256 || alg == KV_ALG_PS384 || alg == KV_ALG_PS512)
        kind = KV_HSM_SIG_PSS;
    rv = kv_pool_hsm(v, &h, err);
    if (rv != KV_OK)
        return rv;
    KV_POOL_RUN(rv, kv_hsm_sign(h, k->ref, kind, md, digest, dlen, &s, &slen, err));
    if (rv != KV_OK)
        return rv;
    if (slen != siglen) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "local pool %s: a %zu-byte signature, %zu expected",
                        v->conf->name, slen, siglen);
    } else {
        memcpy(sig, s, slen);
    }
    free(s);
    return rv;
}

static kv_hsm_rsa_pad kv_pool_pad(kv_enc_alg alg)
{
    return alg == KV_ENC_RSA_OAEP       ? KV_HSM_PAD_OAEP_SHA1
           : alg == KV_ENC_RSA_OAEP_256 ? KV_HSM_PAD_OAEP_SHA256
                                        : KV_HSM_PAD_PKCS1;
}

static kv_rv pool_decrypt(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in,
                          size_t inlen, uint8_t *out, size_t *outlen, kv_err *err)
{
    kv_hsm_pool *h;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    kv_rv rv;

    rv = kv_pool_hsm(v, &h, err);
    if (rv != KV_OK)
        return rv;
    KV_POOL_RUN(rv, kv_hsm_rsa_decrypt(h, k->ref, kv_pool_pad(alg), in, inlen, &pt, &ptlen, err));
    if (rv != KV_OK)
        return rv;
    if (ptlen > *outlen) {
        *outlen = ptlen;
        rv = kv_err_set(err, KV_ERR_BUFFER_TOO_SMALL, "plaintext buffer too small");
    } else {
        memcpy(out, pt, ptlen);
        *outlen = ptlen;
    }
    OPENSSL_clear_free(pt, ptlen);
    return rv;
}

static kv_rv pool_random(kv_vault *v, uint8_t *buf, size_t len, kv_err *err)
{
    kv_hsm_pool *h;
    kv_rv rv;

    rv = kv_pool_hsm(v, &h, err);
    if (rv != KV_OK)
        return rv;
    KV_POOL_RUN(rv, kv_hsm_random(h, buf, len, err));
    return rv;
}

static bool kv_pool_is_gcm(kv_enc_alg a)
{
    return a == KV_ENC_A128GCM || a == KV_ENC_A192GCM || a == KV_ENC_A256GCM;
}

static kv_rv pool_crypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool encrypt,
                            kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                            size_t *outlen, kv_err *err)
{
    static const uint8_t empty[1] = {0};
    kv_hsm_pool *h;
    uint8_t iv[12];
    bool pad = alg == KV_ENC_A128CBCPAD || alg == KV_ENC_A192CBCPAD || alg == KV_ENC_A256CBCPAD;
    kv_rv rv;

    rv = kv_pool_hsm(v, &h, err);
    if (rv != KV_OK)
        return rv;
    if (in == NULL)
        in = empty;
    if (kv_pool_is_gcm(alg) && encrypt && p->ivlen == 12) {
        KV_POOL_RUN(rv, kv_hsm_aes_gcm_encrypt_iv(h, k->ref, p->iv, p->aad, p->aadlen, in, inlen,
                                                  out, outlen, p->tag, err));
    } else if (kv_pool_is_gcm(alg) && encrypt) {
        KV_POOL_RUN(rv, kv_hsm_aes_gcm_encrypt(h, k->ref, p->aad, p->aadlen, in, inlen, iv, out,
                                               outlen, p->tag, err));
        if (rv == KV_OK) {
            memcpy(p->iv, iv, sizeof(iv));
            p->ivlen = sizeof(iv);
        }
    } else if (kv_pool_is_gcm(alg)) {
        KV_POOL_RUN(rv, kv_hsm_aes_gcm_decrypt(h, k->ref, p->iv, p->aad, p->aadlen, in, inlen,
                                               p->tag, out, outlen, err));
    } else {
        KV_POOL_RUN(rv,
                    kv_hsm_aes_cbc(h, k->ref, encrypt, pad, p->iv, in, inlen, out, outlen, err));
    }
    if (rv == KV_OK && kv_pool_is_gcm(alg) && encrypt)
        p->taglen = 16;
    return rv;
}

/* RSA encryption with the public key here, for paddings the token lacks. */
static kv_rv kv_pool_rsa_local(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in,
                               size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(kv_ctx_libctx(v->ctx), k->pub, NULL);
    size_t len = 0;
    kv_rv rv = KV_ERR_INTERNAL;

    if (c == NULL || EVP_PKEY_encrypt_init(c) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(c, alg == KV_ENC_RSA1_5 ? RSA_PKCS1_PADDING
                                                             : RSA_PKCS1_OAEP_PADDING) <= 0 ||
        (alg == KV_ENC_RSA_OAEP_256 &&
         (EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA256", NULL) <= 0 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA256", NULL) <= 0)) ||
        EVP_PKEY_encrypt(c, NULL, &len, in, inlen) <= 0 || (*out = malloc(len)) == NULL)
        goto done;
    if (EVP_PKEY_encrypt(c, *out, &len, in, inlen) <= 0) {
        free(*out);
        *out = NULL;
        rv = kv_err_set(err, KV_ERR_BAD_REQUEST, "%s: the input is too long for key %s",
                        kv_enc_alg_name(alg), k->name);
        goto done;
    }
    *outlen = len;
    rv = KV_OK;
done:
    if (rv == KV_ERR_INTERNAL)
        kv_err_set(err, rv, "local pool %s: %s with the public key failed", v->conf->name,
                   kv_enc_alg_name(alg));
    EVP_PKEY_CTX_free(c);
    return rv;
}

static kv_rv pool_wrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool wrap, const uint8_t *in,
                       size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    kv_hsm_pool *h;
    kv_rv rv;

    rv = kv_pool_hsm(v, &h, err);
    if (rv != KV_OK)
        return rv;
    if (alg == KV_ENC_RSA1_5 || alg == KV_ENC_RSA_OAEP || alg == KV_ENC_RSA_OAEP_256) {
        if (!wrap) {
            KV_POOL_RUN(
                rv, kv_hsm_rsa_decrypt(h, k->ref, kv_pool_pad(alg), in, inlen, out, outlen, err));
            return rv;
        }
        KV_POOL_RUN(rv,
                    kv_hsm_rsa_encrypt(h, k->ref, kv_pool_pad(alg), in, inlen, out, outlen, err));
        if (rv == KV_ERR_UNSUPPORTED && k->pub != NULL) /* e.g. OAEP-256 on SoftHSMv2 */
            rv = kv_pool_rsa_local(v, k, alg, in, inlen, out, outlen, err);
        return rv;
    }
    if (alg == KV_ENC_AES_KWP) /* RFC 5649 over the token's AES-ECB (kv_hsm.h: SoftHSMv2) */
        KV_POOL_RUN(rv, kv_hsm_aes_kwp(h, k->ref, wrap, in, inlen, out, outlen, err));
    else
        KV_POOL_RUN(rv, kv_hsm_aes_wrap(h, k->ref, wrap, false, in, inlen, out, outlen, err));
    return rv;
}

/* ---- lifetime ---- */

static void pool_free(kv_vault *v)
{
    kv_pool *p = v->impl;

    if (p == NULL)
        return;
    if (__atomic_load_n(&kv_pool_process.exiting, __ATOMIC_SEQ_CST)) {
        v->impl = NULL; /* exiting: the member modules may be gone already (kv_pool_process) */
        return;
    }
    kv_hsm_pool_free(p->hsm);
    if (p->pid == getpid())
        pthread_mutex_destroy(&p->lock);
    free(p);
    v->impl = NULL;
}

static const kv_backend_ops kv_pool_ops = {
    .kind = "pool",
    .get_key = pool_get_key,
    .list_keys = pool_list_keys,
    .create_key = pool_create_key,
    .sign = pool_sign,
    .decrypt = pool_decrypt,
    .random = pool_random,
    .list_versions = pool_list_versions,
    .delete_key = pool_delete_key,
    .import_key = pool_import_key,
    .update_key = pool_update_key,
    .crypt_sym = pool_crypt_sym,
    .wrap = pool_wrap,
    .free = pool_free,
};

kv_rv kv_pool_init(kv_vault *v, kv_err *err)
{
    kv_pool *p;

    if (v == NULL || v->conf == NULL || v->conf->pool == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "not a pool configuration");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    p->pid = getpid();
    v->impl = p;
    v->ops = &kv_pool_ops;
    return KV_OK;
}
