/* vd_rotation.c - key rotation: POST /keys/{n}/rotate (a new version with the same type,
 * size / curve, key_ops and tags), the rotation policy (GET / PUT /keys/{n}/rotationpolicy,
 * ISO-8601 durations, Azure's minimums), and the maintenance thread that applies due Rotate
 * actions and purges soft-deleted keys whose scheduled purge date has passed. */
#include "vd_keys_lifecycle.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/objects.h>

#include "vd_crypto.h"
#include "vd_hsm.h"
#include "vd_keycache.h"
#include "vd_keys_int.h"
#include "vd_store_certs.h"
#include "vd_store_certs.h"
#include "vd_store_keys.h"
#include "vd_util.h"
#include "vd_workpool.h"

#define VD_DAY 86400LL
#define VD_MIN_ACTION (7 * VD_DAY)  /* Azure: timeAfterCreate / timeBeforeExpiry >= 7 days */
#define VD_MIN_EXPIRY (28 * VD_DAY) /* Azure: expiryTime >= 28 days */

struct vd_keys_maint {
    vd_ctx *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* ---- ISO-8601 durations ---- */

/* "P1Y2M3W4DT5H6M7S" (any subset, at least one part) in seconds, years as 365 days and months
 * as 30 days; -1 if malformed. */
static long long vd_duration(const char *s)
{
    long long total = 0, n;
    bool time_part = false, any = false, any_time = false;
    char *end;

    if (s == NULL || (s[0] != 'P' && s[0] != 'p'))
        return -1;
    for (s++; *s != '\0';) {
        if (*s == 'T' || *s == 't') {
            if (time_part)
                return -1;
            time_part = true;
            s++;
            continue;
        }
        if (!isdigit((unsigned char)*s))
            return -1;
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno != 0 || n > 100000)
            return -1;
        switch (toupper((unsigned char)*end)) {
        case 'Y':
            if (time_part)
                return -1;
            total += n * 365 * VD_DAY;
            break;
        case 'M':
            total += time_part ? n * 60 : n * 30 * VD_DAY;
            break;
        case 'W':
            if (time_part)
                return -1;
            total += n * 7 * VD_DAY;
            break;
        case 'D':
            if (time_part)
                return -1;
            total += n * VD_DAY;
            break;
        case 'H':
            if (!time_part)
                return -1;
            total += n * 3600;
            break;
        case 'S':
            if (!time_part)
                return -1;
            total += n;
            break;
        default:
            return -1;
        }
        any = true;
        any_time = any_time || time_part;
        s = end + 1;
    }
    if (!any || (time_part && !any_time))
        return -1;
    return total;
}

/* ---- rotate ---- */

/* HSM-protected key material for a new version: generated in the pool like latest's. */
static kv_rv vd_rotate_hsm(vd_ctx *ctx, const vd_key_row *latest, vd_key_row *out)
{
    kv_hsm_keyspec spec = {KV_HSM_RSA, 2048, NID_undef};
    kv_hsm_pool *pool;
    EVP_PKEY *pub = NULL;
    char ref[KV_HSM_REF_MAX] = "", label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    kv_err err;
    kv_rv rv = KV_ERR_INTERNAL;

    memset(&err, 0, sizeof(err));
    pool = vd_hsm_pool(ctx, &err);
    if (pool == NULL)
        return KV_ERR_UNSUPPORTED;
    if (strcmp(latest->kty, "oct") == 0) {
        spec.type = KV_HSM_AES;
        if (kv_hsm_secret_bits(pool, latest->hsm_ref, &spec.bits, &err) != KV_OK)
            goto done;
    } else {
        rv = vd_crypto_pub_from_der(latest->pub_der, latest->pub_len, &pub);
        if (rv != KV_OK)
            goto done;
        spec.type = strcmp(latest->kty, "RSA") == 0 ? KV_HSM_RSA : KV_HSM_EC;
        spec.bits = EVP_PKEY_get_bits(pub);
        spec.curve_nid = vd_crypto_curve_nid(pub);
        EVP_PKEY_free(pub);
        pub = NULL;
    }
    snprintf(label, sizeof(label), "vaultd/%s/%s/%s", out->vault, out->name, out->version);
    rv = kv_hsm_generate(pool, &spec, label, ref, spec.type == KV_HSM_AES ? NULL : &pub, &err);
    if (rv != KV_OK)
        goto done;
    out->hsm_ref = strdup(ref);
    rv = out->hsm_ref != NULL ? KV_OK : KV_ERR_NOMEM;
    if (rv == KV_OK && pub != NULL)
        rv = vd_crypto_pub_der(pub, &out->pub_der, &out->pub_len);
done:
    if (rv != KV_OK && ref[0] != '\0')
        (void)kv_hsm_destroy(pool, ref, &err);
    EVP_PKEY_free(pub);
    return rv;
}

/* Makes the next version of latest (same type, size / curve, key_ops, tags) in out, without
 * touching the store (so that it can run on a work-pool thread); exp from the policy's
 * expiryTime (expiry seconds, 0 = none). *pkey_out: the software private key (NULL for HSM). */
static kv_rv vd_rotate_prepare(vd_ctx *ctx, const vd_key_row *latest, long long expiry,
                               vd_key_row *out, EVP_PKEY **pkey_out)
{
    EVP_PKEY *pub = NULL, *pkey = NULL;
    char aad[300];
    kv_rv rv;

    memset(out, 0, sizeof(*out));
    snprintf(out->vault, sizeof(out->vault), "%s", latest->vault);
    snprintf(out->name, sizeof(out->name), "%s", latest->name);
    snprintf(out->kty, sizeof(out->kty), "%s", latest->kty);
    out->hsm = latest->hsm;
    out->enabled = true;
    out->created = out->updated = vd_now();
    if (expiry > 0) {
        out->has_exp = true;
        out->exp = out->created + expiry;
    }
    out->key_ops = strdup(latest->key_ops);
    out->tags = latest->tags ? strdup(latest->tags) : NULL;
    rv = KV_ERR_NOMEM;
    if (out->key_ops == NULL || (latest->tags != NULL && out->tags == NULL))
        goto done;
    rv = vd_random_hex(out->version, 16);
    if (rv != KV_OK)
        goto done;
    if (latest->hsm_ref != NULL) { /* HSM-protected: the new version lives in the pool too */
        rv = vd_rotate_hsm(ctx, latest, out);
        goto done;
    }
    rv = vd_crypto_pub_from_der(latest->pub_der, latest->pub_len, &pub);
    if (rv == KV_OK)
        rv = vd_crypto_generate(latest->kty, EVP_PKEY_get_bits(pub), vd_crypto_curve_nid(pub),
                                &pkey);
    if (rv == KV_OK)
        rv = vd_crypto_pub_der(pkey, &out->pub_der, &out->pub_len);
    if (rv != KV_OK)
        goto done;
    vd_key_aad(out, aad, sizeof(aad));
    rv = vd_crypto_wrap_pkey(ctx->kek, aad, pkey, out->iv, &out->wrapped, &out->wrapped_len);
done:
    if (rv != KV_OK) {
        vd_key_row_clear(out);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_free(pub);
    *pkey_out = pkey;
    return rv;
}

/* Stores a prepared version and caches its private key. */
static kv_rv vd_rotate_commit(vd_ctx *ctx, vd_store *st, vd_key_row *out, EVP_PKEY *pkey)
{
    kv_rv rv = vd_store_key_insert(st, out);

    if (rv == KV_OK && pkey != NULL)
        vd_keycache_put(ctx->keycache, out->vault, out->version, pkey);
    return rv;
}

/* prepare + commit in st (the maintenance thread's rotations). */
static kv_rv vd_rotate_core(vd_ctx *ctx, vd_store *st, const vd_key_row *latest, long long expiry,
                            vd_key_row *out)
{
    EVP_PKEY *pkey = NULL;
    kv_rv rv = vd_rotate_prepare(ctx, latest, expiry, out, &pkey);

    if (rv == KV_OK) {
        rv = vd_rotate_commit(ctx, st, out, pkey);
        if (rv != KV_OK)
            vd_key_row_clear(out);
    }
    EVP_PKEY_free(pkey);
    return rv;
}

/* expiryTime of a stored policy in seconds (0 when none). */
static long long vd_policy_expiry(const json_t *policy)
{
    const json_t *e = json_object_get(json_object_get(policy, "attributes"), "expiryTime");
    long long d = json_is_string(e) ? vd_duration(json_string_value(e)) : -1;

    return d > 0 ? d : 0;
}

static long long vd_stored_expiry(vd_store *st, const char *vault, const char *name)
{
    vd_policy_row pol = {0};
    json_t *j;
    long long d = 0;

    if (vd_store_policy_get(st, vault, name, &pol) == KV_OK) {
        j = json_loads(pol.policy, 0, NULL);
        d = vd_policy_expiry(j);
        json_decref(j);
    }
    vd_policy_row_clear(&pol);
    return d;
}

/* POST /keys/{n}/rotate: the key material is made on a work-pool thread (vd_workpool.h), the
 * version stored and answered on the request's event thread. */
typedef struct vd_rotjob {
    vd_ctx *ctx;
    vd_key_row latest, row;
    long long expiry;
    EVP_PKEY *pkey;
} vd_rotjob;

static kv_rv vd_rotjob_work(void *arg)
{
    vd_rotjob *j = arg;

    return vd_rotate_prepare(j->ctx, &j->latest, j->expiry, &j->row, &j->pkey);
}

static void vd_rotjob_done(vd_req *r, void *arg, kv_rv rv)
{
    vd_rotjob *j = arg;

    if (rv == KV_ERR_UNSUPPORTED) {
        vd_reply_error(r, 503, "ServiceUnavailable", NULL,
                       "The HSM pool of this vault is unavailable: the HSM-protected key cannot "
                       "be rotated.");
        goto done;
    }
    if (rv == KV_OK && !vd_key_name_not_deleted(r, j->row.name)) /* deleted meanwhile */
        goto done;
    if (rv == KV_OK)
        rv = vd_rotate_commit(r->ctx, r->store, &j->row, j->pkey);
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be rotated.");
        goto done;
    }
    vd_reply_bundle(r, &j->row);
done:
    EVP_PKEY_free(j->pkey);
    vd_key_row_clear(&j->latest);
    vd_key_row_clear(&j->row);
    free(j);
}

void vd_keys_rotate(vd_req *r, const char *name, const char *version)
{
    vd_rotjob *j = calloc(1, sizeof(*j));

    (void)version;
    if (j == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be rotated.");
        return;
    }
    if (!vd_key_load(r, name, NULL, &j->latest))
        goto fail;
    if (vd_store_key_is_managed(r->store, j->latest.vault, j->latest.name, j->latest.version)) {
        vd_reply_error(r, 403, "Forbidden", NULL,
                       "Key %.127s is managed by a certificate and cannot be rotated directly.",
                       j->latest.name);
        goto fail;
    }
    j->ctx = r->ctx;
    j->expiry = vd_stored_expiry(r->store, j->latest.vault, j->latest.name);
    vd_req_defer(r, vd_rotjob_work, vd_rotjob_done, j); /* answers; frees j */
    return;
fail:
    vd_key_row_clear(&j->latest);
    free(j);
}

/* ---- rotation policy ---- */

static void vd_reply_policy(vd_req *r, const char *name, const json_t *stored, long long created,
                            long long updated)
{
    json_t *out = json_object(), *attrs, *la;
    char base[300], id[600];

    vd_base_url(r, base, sizeof(base));
    snprintf(id, sizeof(id), "%s/keys/%s/rotationpolicy", base, name);
    json_object_set_new(out, "id", json_string(id));
    if (stored != NULL) {
        la = json_object_get(stored, "lifetimeActions");
        json_object_set_new(out, "lifetimeActions", la ? json_deep_copy(la) : json_array());
        attrs = json_deep_copy(json_object_get(stored, "attributes"));
        if (!json_is_object(attrs)) {
            json_decref(attrs);
            attrs = json_object();
        }
        json_object_set_new(attrs, "created", json_integer(created));
        json_object_set_new(attrs, "updated", json_integer(updated));
    } else {
        /* Azure's default for a key without a policy: notify 30 days before expiry */
        json_object_set_new(out, "lifetimeActions",
                            json_pack("[{s:{s:s}, s:{s:s}}]", "trigger", "timeBeforeExpiry", "P30D",
                                      "action", "type", "Notify"));
        attrs = json_object();
    }
    json_object_set_new(out, "attributes", attrs);
    vd_reply_json(r, 200, out);
}

void vd_keys_policy_get(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    vd_policy_row pol = {0};
    json_t *j = NULL;
    kv_rv rv;

    (void)version;
    if (!vd_key_load(r, name, NULL, &row))
        goto done;
    rv = vd_store_policy_get(r->store, r->vault.name, row.name, &pol);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_reply_policy(r, row.name, NULL, 0, 0);
        goto done;
    }
    j = rv == KV_OK ? json_loads(pol.policy, 0, NULL) : NULL;
    if (j == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The policy could not be read.");
        goto done;
    }
    vd_reply_policy(r, row.name, j, pol.created, pol.updated);
done:
    json_decref(j);
    vd_policy_row_clear(&pol);
    vd_key_row_clear(&row);
}

/* Validates a KeyRotationPolicy body into its normalised stored form; NULL after 400. */
static json_t *vd_policy_parse(vd_req *r, const json_t *body)
{
    const json_t *la = json_object_get(body, "lifetimeActions"), *attrs, *e, *a, *t, *ty;
    long long expiry = 0, d, min_action = r->ctx->cfg.dev_short_rotation ? 1 : VD_MIN_ACTION;
    json_t *out = json_object(), *acts = json_array(), *oattrs = json_object();
    bool seen_rotate = false, seen_notify = false;
    const char *which, *type;
    size_t i;

    json_object_set_new(out, "lifetimeActions", acts);
    json_object_set_new(out, "attributes", oattrs);
    attrs = json_object_get(body, "attributes");
    if (attrs != NULL && !json_is_null(attrs) && !json_is_object(attrs))
        goto bad_shape;
    e = json_object_get(attrs, "expiryTime");
    if (e != NULL && !json_is_null(e)) {
        expiry = json_is_string(e) ? vd_duration(json_string_value(e)) : -1;
        if (expiry < 0) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "attributes.expiryTime must be an ISO-8601 duration such as P90D.");
            goto fail;
        }
        if (expiry < VD_MIN_EXPIRY) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Expiry time must be at least 28 days (P28D).");
            goto fail;
        }
        json_object_set_new(oattrs, "expiryTime", json_string(json_string_value(e)));
    }
    if (la != NULL && !json_is_null(la) && !json_is_array(la))
        goto bad_shape;
    if (json_array_size(la) > 2) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "A rotation policy can have at most 2 lifetime actions.");
        goto fail;
    }
    json_array_foreach(la, i, a)
    {
        t = json_object_get(a, "trigger");
        ty = json_object_get(json_object_get(a, "action"), "type");
        if (!json_is_object(t) || !json_is_string(ty))
            goto bad_shape;
        type = json_string_value(ty);
        if (strcasecmp(type, "rotate") == 0) {
            type = "Rotate";
            if (seen_rotate)
                goto dup;
            seen_rotate = true;
        } else if (strcasecmp(type, "notify") == 0) {
            type = "Notify";
            if (seen_notify)
                goto dup;
            seen_notify = true;
        } else {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Invalid lifetime action type %.32s: use Rotate or Notify.", type);
            goto fail;
        }
        e = json_object_get(t, "timeAfterCreate");
        which = "timeAfterCreate";
        if (e == NULL || json_is_null(e)) {
            e = json_object_get(t, "timeBeforeExpiry");
            which = "timeBeforeExpiry";
        } else if (json_object_get(t, "timeBeforeExpiry") != NULL &&
                   !json_is_null(json_object_get(t, "timeBeforeExpiry"))) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "A trigger has either timeAfterCreate or timeBeforeExpiry, not both.");
            goto fail;
        }
        d = json_is_string(e) ? vd_duration(json_string_value(e)) : -1;
        if (d < 0) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "The trigger needs timeAfterCreate or timeBeforeExpiry as an ISO-8601 "
                           "duration such as P30D.");
            goto fail;
        }
        if (d < min_action) {
            vd_reply_error(r, 400, "BadParameter", NULL, "%s must be at least 7 days (P7D).",
                           which);
            goto fail;
        }
        if (expiry > 0 && !r->ctx->cfg.dev_short_rotation && d > expiry - VD_MIN_ACTION) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "%s must be at least 7 days shorter than the expiry time.", which);
            goto fail;
        }
        json_array_append_new(acts, json_pack("{s:{s:s}, s:{s:s}}", "trigger", which,
                                              json_string_value(e), "action", "type", type));
    }
    return out;
dup:
    vd_reply_error(r, 400, "BadParameter", NULL,
                   "A rotation policy can have only one lifetime action of each type.");
    goto fail;
bad_shape:
    vd_reply_error(r, 400, "BadParameter", NULL,
                   "Invalid rotation policy: expected {lifetimeActions: [{trigger: "
                   "{timeAfterCreate|timeBeforeExpiry}, action: {type}}], attributes: "
                   "{expiryTime}}.");
fail:
    json_decref(out);
    return NULL;
}

void vd_keys_policy_put(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    vd_policy_row pol = {0};
    json_t *body = NULL, *norm = NULL;

    (void)version;
    if (!vd_key_load(r, name, NULL, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    norm = vd_policy_parse(r, body);
    if (norm == NULL)
        goto done;
    snprintf(pol.vault, sizeof(pol.vault), "%s", r->vault.name);
    snprintf(pol.name, sizeof(pol.name), "%s", row.name);
    pol.policy = json_dumps(norm, JSON_COMPACT);
    if (pol.policy == NULL || vd_store_policy_put(r->store, &pol, vd_now()) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The policy could not be stored.");
        goto done;
    }
    vd_reply_policy(r, row.name, norm, pol.created, pol.updated);
done:
    json_decref(norm);
    json_decref(body);
    vd_policy_row_clear(&pol);
    vd_key_row_clear(&row);
}

/* ---- maintenance thread ---- */

/* Purges soft-deleted keys past their scheduled purge date. */
static void vd_sweep_purge(vd_ctx *ctx, vd_store *st, long long now)
{
    vd_key_row *rows = NULL;
    size_t n = 0, i;

    if (vd_store_keys_purge_due(st, now, &rows, &n) != KV_OK)
        return;
    for (i = 0; i < n; i++) {
        vd_keycache_remove(ctx->keycache, rows[i].vault, rows[i].version);
        if (rows[i].hsm_ref != NULL &&
            !vd_store_hsm_ref_shared(st, rows[i].hsm_ref, rows[i].vault, rows[i].name))
            vd_hsm_destroy_key(ctx, rows[i].hsm_ref);
        if (i + 1 == n || strcasecmp(rows[i].vault, rows[i + 1].vault) != 0 ||
            strcasecmp(rows[i].name, rows[i + 1].name) != 0) {
            if (vd_store_key_purge(st, rows[i].vault, rows[i].name) == KV_OK)
                fprintf(stderr, "vaultd: purged deleted key %s/%s (retention over)\n",
                        rows[i].vault, rows[i].name);
        }
    }
    vd_key_rows_free(rows, n);
}

/* Applies due Rotate actions of every stored policy. */
static void vd_sweep_rotate(vd_ctx *ctx, vd_store *st, long long now)
{
    vd_policy_row *pols = NULL;
    vd_key_row latest, next;
    size_t n = 0, i, j;
    json_t *p, *a, *t;
    const char *type;
    long long d;
    bool due;

    if (vd_store_policy_all(st, &pols, &n) != KV_OK)
        return;
    for (i = 0; i < n; i++) {
        p = json_loads(pols[i].policy, 0, NULL);
        memset(&latest, 0, sizeof(latest));
        if (p == NULL || vd_store_key_get(st, pols[i].vault, pols[i].name, NULL, &latest) != KV_OK)
            goto next_policy;
        due = false;
        json_array_foreach(json_object_get(p, "lifetimeActions"), j, a)
        {
            type = json_string_value(json_object_get(json_object_get(a, "action"), "type"));
            if (type == NULL || strcmp(type, "Rotate") != 0)
                continue;
            t = json_object_get(a, "trigger");
            if (json_is_string(json_object_get(t, "timeAfterCreate"))) {
                d = vd_duration(json_string_value(json_object_get(t, "timeAfterCreate")));
                due = due || (d >= 0 && now >= latest.created + d);
            } else if (json_is_string(json_object_get(t, "timeBeforeExpiry")) && latest.has_exp) {
                d = vd_duration(json_string_value(json_object_get(t, "timeBeforeExpiry")));
                due = due || (d >= 0 && now >= latest.exp - d);
            }
        }
        if (due && vd_rotate_core(ctx, st, &latest, vd_policy_expiry(p), &next) == KV_OK) {
            fprintf(stderr, "vaultd: rotated key %s/%s by its rotation policy\n", next.vault,
                    next.name);
            vd_key_row_clear(&next);
        }
    next_policy:
        vd_key_row_clear(&latest);
        json_decref(p);
    }
    vd_policy_rows_free(pols, n);
}

static void *vd_maint_main(void *arg)
{
    struct vd_keys_maint *m = arg;
    vd_store *st = NULL;
    struct timespec ts;
    sigset_t sigs;
    bool stop;

    sigfillset(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* signals belong to the main thread */
    if (vd_store_open(m->ctx->db_path, &st) != KV_OK) {
        fprintf(stderr, "vaultd: key maintenance thread cannot open the database\n");
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&m->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += m->ctx->cfg.rotation_interval;
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT)
            ;
        stop = m->stop;
        pthread_mutex_unlock(&m->mu);
        if (stop)
            break;
        vd_sweep_purge(m->ctx, st, vd_now());
        vd_store_sc_purge_due(st, vd_now()); /* secrets and certificates (vd_store_certs.c) */
        vd_sweep_rotate(m->ctx, st, vd_now());
    }
    vd_store_close(st);
    return NULL;
}

kv_rv vd_keys_maintenance_start(vd_ctx *ctx)
{
    struct vd_keys_maint *m;

    if (ctx == NULL || ctx->keys_maint != NULL)
        return KV_ERR_INVALID_ARG;
    if (ctx->cfg.rotation_interval <= 0)
        ctx->cfg.rotation_interval = 60;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return KV_ERR_NOMEM;
    m->ctx = ctx;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (pthread_create(&m->thread, NULL, vd_maint_main, m) != 0) {
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
        free(m);
        return KV_ERR_INTERNAL;
    }
    ctx->keys_maint = m;
    return KV_OK;
}

void vd_keys_maintenance_stop(vd_ctx *ctx)
{
    struct vd_keys_maint *m = ctx ? ctx->keys_maint : NULL;

    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
    ctx->keys_maint = NULL;
}
