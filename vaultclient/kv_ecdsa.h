/* kv_ecdsa.h - conversions between the vault's raw r||s ECDSA signatures and DER. */
#ifndef KV_ECDSA_H
#define KV_ECDSA_H

#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"

/* raw (2*n bytes) -> DER ECDSA-Sig-Value. der NULL: *derlen gets the maximum size. */
kv_rv kv_ecdsa_raw_to_der(const uint8_t *raw, size_t rawlen, uint8_t *der, size_t *derlen);
/* DER -> raw r||s with each half padded to n bytes (n = field bytes). */
kv_rv kv_ecdsa_der_to_raw(const uint8_t *der, size_t derlen, size_t n, uint8_t *raw,
                          size_t *rawlen);

#endif
