/*
 * auth_scram — SCRAM-SHA-256 (RFC 5802 / RFC 7677) exactly as PostgreSQL
 * speaks it: verifiers in pg_authid's text form, the server side of an
 * exchange (proxy authenticating a client in userlist mode) and the client
 * side (proxy logging in to PostgreSQL).
 *
 * Contract: pure computation on caller buffers, no I/O, no logging, no
 * global state. Every message is hostile: lengths are checked before any
 * copy, each field is parsed strictly, outputs never exceed `outcap`, and
 * key material is wiped with OPENSSL_cleanse before memory is released.
 * Any false return ends the exchange: later steps on the same state fail.
 *
 * Not supported, like a PostgreSQL server without TLS channel binding:
 * channel binding ("p=" gs2 flag) and authorization identities ("a=").
 *
 * Passwords are used as raw bytes, without SASLprep (RFC 4013).
 * PostgreSQL runs SASLprep but falls back to the raw bytes whenever the
 * password is not valid UTF-8 or SASLprep fails; for ASCII passwords (no
 * control characters) SASLprep is the identity, so the results are the
 * same. Only non-ASCII passwords that normalization would change (e.g.
 * NFKC-decomposable characters, non-ASCII spaces) differ from PostgreSQL.
 */
#include "wire/auth.h"
#include "wire/auth_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SCRAM_DEFAULT_SALT_LEN 16
/* Upper bound on i=: a hostile verifier or server must not be able to make
 * us run PBKDF2 for minutes. PostgreSQL's default is 4096. */
#define SCRAM_MAX_ITERATIONS 10000000
#define SCRAM_RAW_NONCE_LEN 18 /* what PostgreSQL uses, both sides */
/* Longest SCRAM message we accept. Real ones are ~100 bytes (libpq sends
 * "n,,n=,r=" + 24 nonce chars); the limit only bounds hostile input. */
#define SCRAM_MAX_MSG 2048
/* Longest fixed user / nonce accepted by the test hooks. */
#define SCRAM_MAX_FIXED 256

#define B64_LEN(n) ((((n) + 2) / 3) * 4)

/* ---------------------------------------------------------------- helpers */

static void set_err(char *err, const char *msg)
{
    if (err)
        snprintf(err, AUTH_ERR_LEN, "%s", msg);
}

/* Copy a NUL-terminated result of `len` bytes into out, or fail. */
static bool copy_out(char *out, size_t outcap, const char *src, size_t len, char *err)
{
    if (len >= outcap) {
        if (outcap > 0)
            out[0] = '\0';
        set_err(err, "output buffer too small");
        return false;
    }
    memcpy(out, src, len);
    out[len] = '\0';
    return true;
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E (visible ASCII except ','). */
static bool is_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x21 || ch > 0x7E || ch == ',')
            return false;
    }
    return true;
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Encode into out (room for B64_LEN(len) + 1); returns the text length. */
static size_t b64_encode(const uint8_t *in, size_t len, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/*
 * Strict base64 decode of in[0..len): standard alphabet, padded to a
 * multiple of 4, '=' only as the last one or two characters, unused bits
 * zero. EVP_DecodeBlock alone is too lenient (it skips whitespace) and
 * counts padding in its result, so we validate first and compute the real
 * length ourselves. Fails if the result would exceed outcap.
 */
static bool b64_decode(const char *in, size_t len, uint8_t *out, size_t outcap, size_t *outlen)
{
    /* Big enough for any value we decode: a salt or a key, or the gs2
     * header echoed in c=. */
    uint8_t tmp[SCRAM_MAX_SALT + 4];

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
        return false;
    size_t pad = 0;
    if (in[len - 1] == '=')
        pad = (in[len - 2] == '=') ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (b64_value(in[i]) < 0)
            return false;
    /* Reject non-canonical encodings: bits beyond the data must be zero. */
    if (pad == 2 && (b64_value(in[len - 3]) & 0x0F) != 0)
        return false;
    if (pad == 1 && (b64_value(in[len - 2]) & 0x03) != 0)
        return false;

    size_t n = len / 4 * 3 - pad;
    if (n > outcap)
        return false;
    int rc = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
    bool ok = rc >= 0 && (size_t)rc == len / 4 * 3;
    if (ok) {
        memcpy(out, tmp, n);
        *outlen = n;
    }
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return ok;
}

/* Decode base64 that must yield exactly `want` bytes. */
static bool b64_decode_exact(const char *in, size_t len, uint8_t *out, size_t want)
{
    size_t got = 0;
    return b64_decode(in, len, out, want, &got) && got == want;
}

/* Digits only, 1..SCRAM_MAX_ITERATIONS. */
static bool parse_iterations(const char *s, size_t len, int *out)
{
    long v = 0;
    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > SCRAM_MAX_ITERATIONS)
        return false;
    *out = (int)v;
    return true;
}

/*
 * Read "<attr>=<value>" at *p (a NUL-terminated message): the value runs to
 * the next ',' or the end; *p is left on that ',' or NUL.
 */
static bool read_attr(const char **p, char attr, const char **val, size_t *vlen)
{
    const char *s = *p;
    if (s[0] != attr || s[1] != '=')
        return false;
    s += 2;
    size_t n = strcspn(s, ",");
    *val = s;
    *vlen = n;
    *p = s + n;
    return true;
}

/* Length-check a message and copy it into buf (SCRAM_MAX_MSG + 1 bytes) as
 * a C string; embedded NULs are refused. */
static bool load_message(const char *msg, size_t len, char *buf, char *err)
{
    if (!msg) {
        set_err(err, "missing SCRAM message");
        return false;
    }
    if (len > SCRAM_MAX_MSG) {
        set_err(err, "SCRAM message too long");
        return false;
    }
    if (memchr(msg, '\0', len)) {
        set_err(err, "malformed SCRAM message (NUL byte)");
        return false;
    }
    memcpy(buf, msg, len);
    buf[len] = '\0';
    return true;
}

static bool sha256(const uint8_t *in, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int outl = 0;
    return EVP_Digest(in, len, out, &outl, EVP_sha256(), NULL) == 1 && outl == SCRAM_KEY_LEN;
}

/* HMAC-SHA-256 over the concatenation of n parts. */
static bool hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts,
                        const size_t *lens, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                            OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t outl = 0;

    bool ok = ctx && EVP_MAC_init(ctx, key, keylen, params) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_MAC_update(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_MAC_final(ctx, out, &outl, SCRAM_KEY_LEN) == 1 && outl == SCRAM_KEY_LEN;
    EVP_MAC_CTX_free(ctx); /* wipes the key schedule */
    EVP_MAC_free(mac);
    return ok;
}

static bool hmac_sha256_str(const uint8_t key[SCRAM_KEY_LEN], const char *text,
                            uint8_t out[SCRAM_KEY_LEN])
{
    const void *parts[1] = {text};
    size_t lens[1] = {strlen(text)};
    return hmac_sha256(key, SCRAM_KEY_LEN, parts, lens, 1, out);
}

/*
 * SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SaltedPassword,
 * "Client Key"); StoredKey = H(ClientKey); ServerKey = HMAC(SaltedPassword,
 * "Server Key"). client_key may be NULL when only the verifier is wanted.
 */
static bool derive_keys(const char *password, size_t pwlen, const uint8_t *salt, size_t salt_len,
                        int iterations, uint8_t *client_key, uint8_t stored_key[SCRAM_KEY_LEN],
                        uint8_t server_key[SCRAM_KEY_LEN])
{
    uint8_t salted[SCRAM_KEY_LEN];
    uint8_t ckey[SCRAM_KEY_LEN];

    if (pwlen > INT_MAX || salt_len > SCRAM_MAX_SALT || iterations < 1 ||
        iterations > SCRAM_MAX_ITERATIONS)
        return false;
    bool ok = PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, iterations, EVP_sha256(),
                                SCRAM_KEY_LEN, salted) == 1;
    ok = ok && hmac_sha256_str(salted, "Client Key", ckey);
    ok = ok && sha256(ckey, SCRAM_KEY_LEN, stored_key);
    ok = ok && hmac_sha256_str(salted, "Server Key", server_key);
    if (ok && client_key)
        memcpy(client_key, ckey, SCRAM_KEY_LEN);
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    return ok;
}

/* HMAC(key, AuthMessage), AuthMessage = client-first-bare "," server-first
 * "," client-final-without-proof. */
static bool hmac_auth_message(const uint8_t key[SCRAM_KEY_LEN], const char *bare, size_t bare_len,
                              const char *server_first, size_t sf_len, const char *final_np,
                              size_t fnp_len, uint8_t out[SCRAM_KEY_LEN])
{
    const void *parts[5] = {bare, ",", server_first, ",", final_np};
    size_t lens[5] = {bare_len, 1, sf_len, 1, fnp_len};
    return hmac_sha256(key, SCRAM_KEY_LEN, parts, lens, 5, out);
}

/* 18 random bytes, base64: 24 printable characters. */
static bool random_nonce(char out[B64_LEN(SCRAM_RAW_NONCE_LEN) + 1])
{
    uint8_t raw[SCRAM_RAW_NONCE_LEN];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return false;
    b64_encode(raw, sizeof(raw), out);
    return true;
}

/* -------------------------------------------------------------- verifiers */

bool scram_secret_build(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                        scram_secret_t *out)
{
    scram_secret_t s;

    if (!password || !*password || !salt || !out || salt_len == 0 || salt_len > SCRAM_MAX_SALT)
        return false;
    memset(&s, 0, sizeof(s));
    s.iterations = iterations;
    memcpy(s.salt, salt, salt_len);
    s.salt_len = salt_len;
    bool ok = derive_keys(password, strlen(password), salt, salt_len, iterations, NULL,
                          s.stored_key, s.server_key);
    if (ok)
        *out = s;
    OPENSSL_cleanse(&s, sizeof(s));
    return ok;
}

bool scram_secret_from_password(const char *password, scram_secret_t *out)
{
    uint8_t salt[SCRAM_DEFAULT_SALT_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return false;
    return scram_secret_build(password, salt, sizeof(salt), SCRAM_DEFAULT_ITERATIONS, out);
}

bool scram_secret_parse(const char *text, scram_secret_t *out)
{
    scram_secret_t s;
    const size_t plen = sizeof(SCRAM_PREFIX) - 1;

    if (!text || !out || strncmp(text, SCRAM_PREFIX, plen) != 0)
        return false;
    memset(&s, 0, sizeof(s));
    const char *p = text + plen;

    /* <iterations>:<salt>$<StoredKey>:<ServerKey> */
    const char *colon = strchr(p, ':');
    const char *dollar = colon ? strchr(colon + 1, '$') : NULL;
    const char *colon2 = dollar ? strchr(dollar + 1, ':') : NULL;
    const char *end = colon2 ? colon2 + strlen(colon2) : NULL;
    bool ok =
        colon2 && parse_iterations(p, (size_t)(colon - p), &s.iterations) &&
        b64_decode(colon + 1, (size_t)(dollar - colon - 1), s.salt, SCRAM_MAX_SALT, &s.salt_len) &&
        s.salt_len > 0 &&
        b64_decode_exact(dollar + 1, (size_t)(colon2 - dollar - 1), s.stored_key, SCRAM_KEY_LEN) &&
        b64_decode_exact(colon2 + 1, (size_t)(end - colon2 - 1), s.server_key, SCRAM_KEY_LEN);
    if (ok)
        *out = s;
    OPENSSL_cleanse(&s, sizeof(s));
    return ok;
}

/* ------------------------------------------------------------ server side */

typedef enum {
    SCRAM_SERVER_INIT,       /* waiting for client-first */
    SCRAM_SERVER_FIRST_SENT, /* server-first written, waiting for client-final */
    SCRAM_SERVER_DONE,       /* proof verified, server-final written */
    SCRAM_SERVER_FAILED,     /* any error: the exchange is over */
} scram_server_state_t;

struct scram_server {
    scram_server_state_t state;
    scram_secret_t secret;
    char gs2_header[4]; /* "n,," or "y,," */
    char fixed_suffix[SCRAM_MAX_FIXED + 1];
    size_t nonce_len; /* combined nonce, stored at server_first + 2 */
    size_t bare_len;
    char client_first_bare[SCRAM_MAX_MSG + 1];
    size_t server_first_len;
    char server_first[SCRAM_MAX_MSG + SCRAM_MAX_FIXED + B64_LEN(SCRAM_MAX_SALT) + 32];
};

static bool server_fail(scram_server_t *s, char *out, size_t outcap, char *err, const char *why)
{
    s->state = SCRAM_SERVER_FAILED;
    if (out && outcap > 0)
        out[0] = '\0';
    if (why)
        set_err(err, why);
    return false;
}

scram_server_t *scram_server_new(const scram_secret_t *secret)
{
    if (!secret || secret->salt_len == 0 || secret->salt_len > SCRAM_MAX_SALT ||
        secret->iterations < 1 || secret->iterations > SCRAM_MAX_ITERATIONS)
        return NULL;
    scram_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->state = SCRAM_SERVER_INIT;
    s->secret = *secret;
    return s;
}

void scram_server_free(scram_server_t *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

bool scram_server_fix_nonce(scram_server_t *s, const char *suffix)
{
    size_t len = suffix ? strlen(suffix) : 0;
    if (!s || s->state != SCRAM_SERVER_INIT || len == 0 || len > SCRAM_MAX_FIXED ||
        !is_printable(suffix, len))
        return false;
    memcpy(s->fixed_suffix, suffix, len + 1);
    return true;
}

bool scram_server_first(scram_server_t *s, const char *client_first, size_t len, char *out,
                        size_t outcap, char *err)
{
    char msg[SCRAM_MAX_MSG + 1];
    char suffix_buf[B64_LEN(SCRAM_RAW_NONCE_LEN) + 1];
    char salt_b64[B64_LEN(SCRAM_MAX_SALT) + 1];
    const char *nonce, *val;
    size_t nonce_len, vlen;

    if (!s || !out) {
        set_err(err, "invalid argument");
        return false;
    }
    if (s->state != SCRAM_SERVER_INIT)
        return server_fail(s, out, outcap, err, "SCRAM exchange out of order");
    if (!load_message(client_first, len, msg, err))
        return server_fail(s, out, outcap, err, NULL);

    /* gs2-header: gs2-cbind-flag "," [authzid] "," */
    const char *p = msg;
    if (*p == 'p')
        return server_fail(s, out, outcap, err, "SCRAM channel binding is not supported");
    if ((*p != 'n' && *p != 'y') || p[1] != ',')
        return server_fail(s, out, outcap, err, "malformed SCRAM message (bad gs2 header)");
    p += 2;
    if (*p == 'a')
        return server_fail(s, out, outcap, err, "SCRAM authorization identity is not supported");
    if (*p != ',')
        return server_fail(s, out, outcap, err, "malformed SCRAM message (bad gs2 header)");
    p++;

    /* client-first-message-bare: [reserved-mext ","] username "," nonce
     * ["," extensions]. The username is ignored, as PostgreSQL does: the
     * user is the one of the startup packet (libpq sends "n="). */
    const char *bare = p;
    if (*p == 'm')
        return server_fail(s, out, outcap, err, "unsupported mandatory SCRAM extension");
    if (!read_attr(&p, 'n', &val, &vlen) || *p != ',')
        return server_fail(s, out, outcap, err, "malformed SCRAM message (expected n=)");
    p++;
    if (!read_attr(&p, 'r', &nonce, &nonce_len))
        return server_fail(s, out, outcap, err, "malformed SCRAM message (expected r=)");
    if (nonce_len == 0 || !is_printable(nonce, nonce_len))
        return server_fail(s, out, outcap, err, "malformed SCRAM message (invalid nonce)");
    while (*p == ',') { /* optional extensions: ignored */
        p++;
        if (!is_alpha(p[0]) || p[1] != '=')
            return server_fail(s, out, outcap, err, "malformed SCRAM message (bad attribute)");
        p += 2;
        p += strcspn(p, ",");
    }
    if (*p != '\0')
        return server_fail(s, out, outcap, err, "malformed SCRAM message");

    const char *suffix = s->fixed_suffix;
    if (!*suffix) {
        if (!random_nonce(suffix_buf))
            return server_fail(s, out, outcap, err, "random generator failed");
        suffix = suffix_buf;
    }
    b64_encode(s->secret.salt, s->secret.salt_len, salt_b64);
    int n = snprintf(s->server_first, sizeof(s->server_first), "r=%.*s%s,s=%s,i=%d", (int)nonce_len,
                     nonce, suffix, salt_b64, s->secret.iterations);
    if (n < 0 || (size_t)n >= sizeof(s->server_first))
        return server_fail(s, out, outcap, err, "SCRAM message too long");
    s->server_first_len = (size_t)n;
    s->nonce_len = nonce_len + strlen(suffix);
    memcpy(s->gs2_header, msg, 3);
    s->gs2_header[3] = '\0';
    s->bare_len = len - (size_t)(bare - msg);
    memcpy(s->client_first_bare, bare, s->bare_len + 1);

    if (!copy_out(out, outcap, s->server_first, s->server_first_len, err))
        return server_fail(s, out, outcap, err, NULL);
    s->state = SCRAM_SERVER_FIRST_SENT;
    return true;
}

bool scram_server_final(scram_server_t *s, const char *client_final, size_t len, char *out,
                        size_t outcap, char *err)
{
    char msg[SCRAM_MAX_MSG + 1];
    char reply[2 + B64_LEN(SCRAM_KEY_LEN) + 1];
    uint8_t cbind[8];
    uint8_t proof[SCRAM_KEY_LEN], client_sig[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
    uint8_t stored_key[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN];
    const char *val;
    size_t vlen, cbind_len = 0;

    if (!s || !out) {
        set_err(err, "invalid argument");
        return false;
    }
    if (s->state != SCRAM_SERVER_FIRST_SENT)
        return server_fail(s, out, outcap, err, "SCRAM exchange out of order");
    if (outcap < sizeof(reply)) /* fixed size: "v=" + 44 base64 chars */
        return server_fail(s, out, outcap, err, "output buffer too small");
    if (!load_message(client_final, len, msg, err))
        return server_fail(s, out, outcap, err, NULL);

    /* channel-binding "," nonce ["," extensions] "," proof */
    const char *p = msg;
    if (!read_attr(&p, 'c', &val, &vlen) || *p != ',')
        return server_fail(s, out, outcap, err, "malformed SCRAM message (expected c=)");
    if (!b64_decode(val, vlen, cbind, sizeof(cbind), &cbind_len) || cbind_len != 3 ||
        memcmp(cbind, s->gs2_header, 3) != 0)
        return server_fail(s, out, outcap, err, "SCRAM channel binding does not match gs2 header");
    p++;
    if (!read_attr(&p, 'r', &val, &vlen))
        return server_fail(s, out, outcap, err, "malformed SCRAM message (expected r=)");
    if (vlen != s->nonce_len || memcmp(val, s->server_first + 2, vlen) != 0)
        return server_fail(s, out, outcap, err, "SCRAM nonce mismatch");
    const char *proof_start;
    for (;;) {
        if (*p != ',')
            return server_fail(s, out, outcap, err, "malformed SCRAM message (expected p=)");
        proof_start = p;
        p++;
        if (p[0] == 'p' && p[1] == '=')
            break;
        if (!is_alpha(p[0]) || p[1] != '=')
            return server_fail(s, out, outcap, err, "malformed SCRAM message (bad attribute)");
        p += 2;
        p += strcspn(p, ",");
    }
    read_attr(&p, 'p', &val, &vlen);
    if (*p != '\0')
        return server_fail(s, out, outcap, err, "malformed SCRAM message (data after proof)");
    if (!b64_decode_exact(val, vlen, proof, SCRAM_KEY_LEN))
        return server_fail(s, out, outcap, err, "malformed SCRAM message (invalid proof)");

    /* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey)
     * must be StoredKey. */
    const size_t final_np_len = (size_t)(proof_start - msg);
    bool ok =
        hmac_auth_message(s->secret.stored_key, s->client_first_bare, s->bare_len, s->server_first,
                          s->server_first_len, msg, final_np_len, client_sig);
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        client_key[i] = proof[i] ^ client_sig[i];
    ok = ok && sha256(client_key, SCRAM_KEY_LEN, stored_key);
    bool match = ok && CRYPTO_memcmp(stored_key, s->secret.stored_key, SCRAM_KEY_LEN) == 0;
    if (match)
        ok = hmac_auth_message(s->secret.server_key, s->client_first_bare, s->bare_len,
                               s->server_first, s->server_first_len, msg, final_np_len, server_sig);
    OPENSSL_cleanse(proof, sizeof(proof));
    OPENSSL_cleanse(client_sig, sizeof(client_sig));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    if (!ok)
        return server_fail(s, out, outcap, err, "SCRAM computation failed");
    if (!match)
        return server_fail(s, out, outcap, err, "SCRAM proof mismatch (wrong password)");

    memcpy(reply, "v=", 2);
    size_t n = 2 + b64_encode(server_sig, SCRAM_KEY_LEN, reply + 2);
    OPENSSL_cleanse(server_sig, sizeof(server_sig));
    if (!copy_out(out, outcap, reply, n, err))
        return server_fail(s, out, outcap, err, NULL);
    s->state = SCRAM_SERVER_DONE;
    return true;
}

/* ------------------------------------------------------------ client side */

typedef enum {
    SCRAM_CLIENT_INIT,       /* nothing sent yet */
    SCRAM_CLIENT_FIRST_SENT, /* client-first written, waiting for server-first */
    SCRAM_CLIENT_FINAL_SENT, /* client-final written, waiting for server-final */
    SCRAM_CLIENT_DONE,       /* server signature verified */
    SCRAM_CLIENT_FAILED,     /* any error: the exchange is over */
} scram_client_state_t;

struct scram_client {
    scram_client_state_t state;
    char *password; /* owned, wiped on free */
    size_t password_len;
    char user[SCRAM_MAX_FIXED + 1];  /* n= value; "" like libpq */
    char nonce[SCRAM_MAX_FIXED + 1]; /* client nonce; random unless fixed */
    size_t bare_len;
    char client_first_bare[2 * SCRAM_MAX_FIXED + 16];
    uint8_t server_signature[SCRAM_KEY_LEN]; /* expected in server-final */
};

static bool client_fail(scram_client_t *c, char *out, size_t outcap, char *err, const char *why)
{
    c->state = SCRAM_CLIENT_FAILED;
    OPENSSL_cleanse(c->server_signature, sizeof(c->server_signature));
    if (out && outcap > 0)
        out[0] = '\0';
    if (why)
        set_err(err, why);
    return false;
}

scram_client_t *scram_client_new(const char *password)
{
    /* An empty password never authenticates (libpq refuses it too). */
    if (!password || !*password)
        return NULL;
    size_t len = strlen(password);
    if (len > INT_MAX)
        return NULL;
    scram_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->password = malloc(len + 1);
    if (!c->password) {
        free(c);
        return NULL;
    }
    memcpy(c->password, password, len + 1);
    c->password_len = len;
    c->state = SCRAM_CLIENT_INIT;
    return c;
}

void scram_client_free(scram_client_t *c)
{
    if (!c)
        return;
    if (c->password) {
        OPENSSL_cleanse(c->password, c->password_len);
        free(c->password);
    }
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

bool scram_client_fix_nonce(scram_client_t *c, const char *user, const char *nonce)
{
    size_t ulen = user ? strlen(user) : 0;
    size_t nlen = nonce ? strlen(nonce) : 0;
    if (!c || !user || c->state != SCRAM_CLIENT_INIT || ulen > SCRAM_MAX_FIXED || nlen == 0 ||
        nlen > SCRAM_MAX_FIXED || !is_printable(nonce, nlen) || strpbrk(user, ",="))
        return false;
    memcpy(c->user, user, ulen + 1);
    memcpy(c->nonce, nonce, nlen + 1);
    return true;
}

bool scram_client_first(scram_client_t *c, char *out, size_t outcap, char *err)
{
    char msg[sizeof(c->client_first_bare) + 3];

    if (!c || !out) {
        set_err(err, "invalid argument");
        return false;
    }
    if (c->state != SCRAM_CLIENT_INIT)
        return client_fail(c, out, outcap, err, "SCRAM exchange out of order");
    if (!c->nonce[0] && !random_nonce(c->nonce))
        return client_fail(c, out, outcap, err, "random generator failed");
    int n = snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=%s,r=%s", c->user,
                     c->nonce);
    if (n < 0 || (size_t)n >= sizeof(c->client_first_bare))
        return client_fail(c, out, outcap, err, "SCRAM message too long");
    c->bare_len = (size_t)n;
    /* gs2 header "n,,": we do not do channel binding. */
    memcpy(msg, "n,,", 3);
    memcpy(msg + 3, c->client_first_bare, c->bare_len + 1);
    if (!copy_out(out, outcap, msg, c->bare_len + 3, err))
        return client_fail(c, out, outcap, err, NULL);
    c->state = SCRAM_CLIENT_FIRST_SENT;
    return true;
}

bool scram_client_final(scram_client_t *c, const char *server_first, size_t len, char *out,
                        size_t outcap, char *err)
{
    char msg[SCRAM_MAX_MSG + 1];
    char reply[SCRAM_MAX_MSG + 16 + B64_LEN(SCRAM_KEY_LEN)];
    uint8_t salt[SCRAM_MAX_SALT];
    uint8_t client_key[SCRAM_KEY_LEN], stored_key[SCRAM_KEY_LEN], server_key[SCRAM_KEY_LEN];
    uint8_t client_sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
    const char *nonce, *val;
    size_t nonce_len, vlen, salt_len = 0;
    int iterations = 0;

    if (!c || !out) {
        set_err(err, "invalid argument");
        return false;
    }
    if (c->state != SCRAM_CLIENT_FIRST_SENT)
        return client_fail(c, out, outcap, err, "SCRAM exchange out of order");
    if (!load_message(server_first, len, msg, err))
        return client_fail(c, out, outcap, err, NULL);

    /* [reserved-mext ","] nonce "," salt "," iteration-count; like libpq we
     * accept no extensions after i=. */
    const char *p = msg;
    if (*p == 'm')
        return client_fail(c, out, outcap, err, "unsupported mandatory SCRAM extension");
    if (!read_attr(&p, 'r', &nonce, &nonce_len) || *p != ',')
        return client_fail(c, out, outcap, err, "malformed SCRAM message (expected r=)");
    size_t cn_len = strlen(c->nonce);
    /* The server must extend our nonce with its own part. */
    if (nonce_len <= cn_len || memcmp(nonce, c->nonce, cn_len) != 0 ||
        !is_printable(nonce, nonce_len))
        return client_fail(c, out, outcap, err, "SCRAM nonce mismatch");
    p++;
    if (!read_attr(&p, 's', &val, &vlen) || *p != ',')
        return client_fail(c, out, outcap, err, "malformed SCRAM message (expected s=)");
    if (!b64_decode(val, vlen, salt, sizeof(salt), &salt_len) || salt_len == 0)
        return client_fail(c, out, outcap, err, "malformed SCRAM message (invalid salt)");
    p++;
    if (!read_attr(&p, 'i', &val, &vlen) || *p != '\0')
        return client_fail(c, out, outcap, err, "malformed SCRAM message (expected i=)");
    if (!parse_iterations(val, vlen, &iterations))
        return client_fail(c, out, outcap, err, "invalid SCRAM iteration count");

    /* client-final-message-without-proof: "c=biws" is base64("n,,"). */
    int n = snprintf(reply, sizeof(reply), "c=biws,r=%.*s", (int)nonce_len, nonce);
    if (n < 0 || (size_t)n >= sizeof(reply))
        return client_fail(c, out, outcap, err, "SCRAM message too long");
    size_t final_np_len = (size_t)n;

    bool ok = derive_keys(c->password, c->password_len, salt, salt_len, iterations, client_key,
                          stored_key, server_key) &&
              hmac_auth_message(stored_key, c->client_first_bare, c->bare_len, msg, len, reply,
                                final_np_len, client_sig) &&
              hmac_auth_message(server_key, c->client_first_bare, c->bare_len, msg, len, reply,
                                final_np_len, c->server_signature);
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        proof[i] = client_key[i] ^ client_sig[i];
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    OPENSSL_cleanse(client_sig, sizeof(client_sig));
    if (!ok) {
        OPENSSL_cleanse(proof, sizeof(proof));
        return client_fail(c, out, outcap, err, "SCRAM computation failed");
    }

    /* reply has room: final_np_len <= SCRAM_MAX_MSG + 9. */
    memcpy(reply + final_np_len, ",p=", 3);
    size_t total = final_np_len + 3 + b64_encode(proof, SCRAM_KEY_LEN, reply + final_np_len + 3);
    OPENSSL_cleanse(proof, sizeof(proof));
    ok = copy_out(out, outcap, reply, total, err);
    OPENSSL_cleanse(reply, sizeof(reply));
    if (!ok)
        return client_fail(c, out, outcap, err, NULL);
    c->state = SCRAM_CLIENT_FINAL_SENT;
    return true;
}

bool scram_client_verify(scram_client_t *c, const char *server_final, size_t len, char *err)
{
    char msg[SCRAM_MAX_MSG + 1];
    uint8_t sig[SCRAM_KEY_LEN];
    const char *val;
    size_t vlen;

    if (!c) {
        set_err(err, "invalid argument");
        return false;
    }
    if (c->state != SCRAM_CLIENT_FINAL_SENT)
        return client_fail(c, NULL, 0, err, "SCRAM exchange out of order");
    if (!load_message(server_final, len, msg, err))
        return client_fail(c, NULL, 0, err, NULL);

    const char *p = msg;
    if (read_attr(&p, 'e', &val, &vlen)) {
        /* server-error: a short token such as "invalid-proof"; quote it
         * only if it is plain printable text. */
        char why[AUTH_ERR_LEN];
        if (vlen > 0 && vlen <= 64 && is_printable(val, vlen))
            snprintf(why, sizeof(why), "SCRAM server error: %.*s", (int)vlen, val);
        else
            snprintf(why, sizeof(why), "SCRAM server error");
        return client_fail(c, NULL, 0, err, why);
    }
    if (!read_attr(&p, 'v', &val, &vlen) || *p != '\0' ||
        !b64_decode_exact(val, vlen, sig, SCRAM_KEY_LEN))
        return client_fail(c, NULL, 0, err, "malformed SCRAM message (expected v=)");
    bool match = CRYPTO_memcmp(sig, c->server_signature, SCRAM_KEY_LEN) == 0;
    OPENSSL_cleanse(sig, sizeof(sig));
    if (!match)
        return client_fail(c, NULL, 0, err, "SCRAM server signature mismatch");
    c->state = SCRAM_CLIENT_DONE;
    OPENSSL_cleanse(c->server_signature, sizeof(c->server_signature));
    return true;
}
