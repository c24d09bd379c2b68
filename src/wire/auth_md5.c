/*
 * auth_md5 — PostgreSQL's md5 password scheme and secret classification.
 *
 * stored   = "md5" + hex(md5(password || user))
 * response = "md5" + hex(md5(hex(md5(password || user)) || salt[4]))
 *
 * Contract: pure computation, no I/O, no logging, no global state; the
 * comparison with a client's response is constant-time and every
 * intermediate hash is wiped. md5 is weak (the stored hash is
 * password-equivalent); it exists for compatibility with PostgreSQL and
 * PgBouncer userlists. MD5 comes from OpenSSL's EVP interface (the legacy
 * MD5() call is deprecated in OpenSSL 3).
 */
#include "common/text.h"
#include "wire/auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define MD5_RAW_LEN 16
#define MD5_HEX_LEN 32
#define MD5_PASSWD_LEN 35 /* "md5" + 32 hex */

/* "md5" + hex(md5(a || b)) into out[36]; out = "" if the digest fails. */
static void md5_hex_of(const void *a, size_t alen, const void *b, size_t blen, char out[36])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[MD5_RAW_LEN];
    unsigned int rawlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
              EVP_DigestFinal_ex(ctx, raw, &rawlen) == 1 && rawlen == MD5_RAW_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        out[0] = '\0';
        return;
    }
    memcpy(out, "md5", 3);
    for (size_t i = 0; i < MD5_RAW_LEN; i++) {
        out[3 + 2 * i] = hex[raw[i] >> 4];
        out[3 + 2 * i + 1] = hex[raw[i] & 0x0F];
    }
    out[MD5_PASSWD_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
}

void md5_password_hash(const char *user, const char *password, char out[36])
{
    if (!user)
        user = "";
    if (!password)
        password = "";
    md5_hex_of(password, strlen(password), user, strlen(user), out);
}

/* A SCRAM verifier (which cannot answer an md5 challenge) is treated like
 * any other non-md5 string, i.e. as a plaintext password; the server will
 * reject the response. md5_verify refuses SCRAM secrets explicitly. */
void md5_salted_response(const char *user, const char *stored, const uint8_t salt[4], char out[36])
{
    char hash[36];
    const char *hexhash;

    if (!stored)
        stored = "";
    if (auth_secret_kind(stored) == SECRET_MD5) {
        hexhash = stored + 3;
    } else {
        md5_password_hash(user, stored, hash);
        if (!hash[0]) {
            out[0] = '\0';
            return;
        }
        hexhash = hash + 3;
    }
    md5_hex_of(hexhash, MD5_HEX_LEN, salt, 4, out);
    OPENSSL_cleanse(hash, sizeof(hash));
}

bool md5_verify(const char *user, const char *stored, const uint8_t salt[4],
                const char *client_response)
{
    char expected[36];

    if (!user || !stored || !salt || !client_response)
        return false;
    /* An empty password never authenticates (PgBouncer's rule too), and a
     * SCRAM verifier cannot check an md5 response. */
    secret_kind_t kind = auth_secret_kind(stored);
    if (kind == SECRET_SCRAM || (kind == SECRET_PLAIN && !*stored))
        return false;
    md5_salted_response(user, stored, salt, expected);
    bool ok = expected[0] != '\0' &&
              strnlen(client_response, MD5_PASSWD_LEN + 1) == MD5_PASSWD_LEN &&
              CRYPTO_memcmp(expected, client_response, MD5_PASSWD_LEN) == 0;
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
}

/* Same rules as PostgreSQL's get_password_type(): "md5" + exactly 32
 * lowercase hex digits is a hash, a parseable SCRAM-SHA-256 verifier is a
 * verifier, anything else is a plaintext password. */
secret_kind_t auth_secret_kind(const char *secret)
{
    scram_secret_t scram;

    if (!secret)
        return SECRET_PLAIN;
    if (HAS_PREFIX(secret, "md5") && strlen(secret) == MD5_PASSWD_LEN &&
        strspn(secret + 3, "0123456789abcdef") == MD5_HEX_LEN)
        return SECRET_MD5;
    if (scram_secret_parse(secret, &scram)) {
        OPENSSL_cleanse(&scram, sizeof(scram));
        return SECRET_SCRAM;
    }
    return SECRET_PLAIN;
}
