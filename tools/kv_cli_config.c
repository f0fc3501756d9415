/* kv_cli_config.c - `kvault config seal-secret`: seals a vault's client secret under a PIN and
 * prints the `client_secret_sealed = ...` line for kvault.conf. kvault.so then shows that vault
 * as a token that needs C_Login with the PIN (docs/pkcs11.md, "Login and PIN"). Runs locally:
 * no vault is contacted. */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kv_seal.h"

#define KV_PIN_MAX 256
#define KV_SECRET_MAX 4096

static const kv_arg_spec kv_seal_specs[] = {
    {"--secret-file", NULL, KV_ARG_VALUE, 0, "FILE",
     "File whose first line is the client secret (default: read it from standard input)."},
    {"--pin-file", NULL, KV_ARG_VALUE, 0, "FILE",
     "File whose first line is the PIN (default: asked twice on the terminal)."},
};

/* The first line of f into buf (without the newline); 0 on success. */
static int kv_read_line(FILE *f, char *buf, size_t len)
{
    size_t n;

    if (fgets(buf, (int)len, f) == NULL)
        return -1;
    n = strcspn(buf, "\r\n");
    if (buf[n] == '\0' && n == len - 1)
        return -1; /* too long */
    buf[n] = '\0';
    return 0;
}

static int kv_read_file_line(const char *path, char *buf, size_t len, const char *what)
{
    FILE *f = fopen(path, "r");
    int rc;

    if (f == NULL) {
        fprintf(stderr, "ERROR: cannot open the %s file %s\n", what, path);
        return -1;
    }
    rc = kv_read_line(f, buf, len);
    fclose(f);
    if (rc != 0 || buf[0] == '\0')
        fprintf(stderr, "ERROR: the %s file %s is empty or its first line too long\n", what, path);
    return rc != 0 || buf[0] == '\0' ? -1 : 0;
}

/* Asks for the PIN on the terminal without echo. */
static int kv_ask(const char *prompt, char *buf, size_t len)
{
    struct termios old, quiet;
    FILE *tty = fopen("/dev/tty", "r+");
    int rc, echo_off = 0;

    if (tty == NULL) {
        fprintf(stderr, "ERROR: no terminal to ask for the PIN: use --pin-file\n");
        return -1;
    }
    fputs(prompt, tty);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        echo_off = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
    }
    rc = kv_read_line(tty, buf, len);
    if (echo_off)
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputs("\n", tty);
    fclose(tty);
    return rc;
}

static int kv_cli_seal_secret(kv_cli *cli, const kv_args *args)
{
    char secret[KV_SECRET_MAX + 2], pin[KV_PIN_MAX + 2], again[KV_PIN_MAX + 2];
    const char *sf = kv_args_get(args, "--secret-file"), *pf = kv_args_get(args, "--pin-file");
    char *text = NULL;
    kv_err err;
    int rc = KV_EXIT_ERROR;

    (void)cli;
    secret[0] = pin[0] = again[0] = '\0';
    if (sf != NULL ? kv_read_file_line(sf, secret, sizeof(secret), "secret") != 0
                   : kv_read_line(stdin, secret, sizeof(secret)) != 0 || secret[0] == '\0') {
        if (sf == NULL)
            fprintf(stderr, "ERROR: no client secret on standard input\n");
        goto done;
    }
    if (pf != NULL) {
        if (kv_read_file_line(pf, pin, sizeof(pin), "PIN") != 0)
            goto done;
    } else if (kv_ask("PIN: ", pin, sizeof(pin)) != 0 ||
               kv_ask("PIN again: ", again, sizeof(again)) != 0) {
        goto done;
    } else if (strcmp(pin, again) != 0) {
        fprintf(stderr, "ERROR: the PINs differ\n");
        goto done;
    }
    if (strlen(pin) < 4) {
        fprintf(stderr, "ERROR: the PIN must have at least 4 characters\n");
        goto done;
    }
    if (kv_seal((const uint8_t *)secret, strlen(secret), pin, strlen(pin), "client_secret", &text,
                &err) != KV_OK) {
        fprintf(stderr, "ERROR: %s\n", err.message);
        goto done;
    }
    printf("client_secret_sealed = %s\n", text);
    rc = KV_EXIT_OK;
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(again, sizeof(again));
    free(text);
    return rc;
}

static const kv_cli_cmd kv_config_cmds[] = {
    {"seal-secret",
     "Seal a vault's client secret under a PIN for kvault.conf (client_secret_sealed): the "
     "vault's PKCS#11 token then needs C_Login with that PIN.",
     kv_seal_specs, KV_NELEM(kv_seal_specs), kv_cli_seal_secret,
     "kvault config seal-secret --secret-file sp.secret >> /etc/kvault/kvault.conf\n"
     "kvault config seal-secret --secret-file sp.secret --pin-file pin.txt"},
};

const kv_cli_group kv_cli_config_group = {"config", "Client configuration helpers.", kv_config_cmds,
                                          KV_NELEM(kv_config_cmds)};
