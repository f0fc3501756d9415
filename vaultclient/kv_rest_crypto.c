/* kv_rest_crypto.c - the REST backend's AES operations (encrypt/decrypt with A*GCM, A*CBC,
 * A*CBCPAD) and key wrap (/wrapkey, /unwrapkey with A*KW and the RSA algorithms). */
#include "kv_backend.h"

kv_rv kv_rest_crypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool encrypt,
                        kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                        size_t *outlen, kv_err *err)
{
    (void)v, (void)k, (void)alg, (void)encrypt, (void)p, (void)in, (void)inlen, (void)out,
        (void)outlen;
    return kv_err_set(err, KV_ERR_UNSUPPORTED, "not implemented yet");
}

kv_rv kv_rest_wrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool wrap, const uint8_t *in,
                   size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    (void)v, (void)k, (void)alg, (void)wrap, (void)in, (void)inlen, (void)out, (void)outlen;
    return kv_err_set(err, KV_ERR_UNSUPPORTED, "not implemented yet");
}
