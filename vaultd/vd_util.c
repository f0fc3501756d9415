/* vd_util.c - random identifiers, clocks and atomic file writes for vaultd. */
#include "vd_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

kv_rv vd_guid(char out[37])
{
    uint8_t b[16];

    if (out == NULL || RAND_bytes(b, sizeof(b)) != 1)
        return KV_ERR_INTERNAL;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return KV_OK;
}

kv_rv vd_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[64];
    size_t i;

    if (out == NULL || nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
        return KV_ERR_INTERNAL;
    for (i = 0; i < nbytes; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return KV_OK;
}

long long vd_now(void)
{
    return (long long)time(NULL);
}

double vd_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

kv_rv vd_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4200];
    const uint8_t *p = data;
    size_t off = 0;
    ssize_t n;
    int fd = -1;
    kv_rv rv = KV_ERR_INTERNAL;

    if (path == NULL || (data == NULL && len > 0))
        return KV_ERR_INVALID_ARG;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return KV_ERR_INVALID_ARG;
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        goto done;
    if (fchmod(fd, mode) != 0)
        goto done;
    while (off < len) {
        n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto done;
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto done;
    if (close(fd) != 0) {
        fd = -1;
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto done;
    rv = KV_OK;
done:
    if (fd >= 0)
        close(fd);
    if (rv != KV_OK)
        unlink(tmp);
    return rv;
}

kv_rv vd_read_file(const char *path, size_t maxlen, uint8_t **out, size_t *outlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ssize_t n;
    int fd;
    kv_rv rv = KV_ERR_INTERNAL;

    if (path == NULL || out == NULL || outlen == NULL)
        return KV_ERR_INVALID_ARG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    buf = malloc(maxlen + 1);
    if (buf == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (;;) {
        n = read(fd, buf + len, maxlen + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > maxlen) {
            rv = KV_ERR_INVALID_ARG;
            goto done;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    rv = KV_OK;
done:
    close(fd);
    vd_free_secret(buf, maxlen + 1);
    return rv;
}

void vd_free_secret(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}
