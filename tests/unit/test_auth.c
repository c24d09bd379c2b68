/*
 * test_auth — unit tests of src/wire/auth_scram.c, auth_md5.c, userlist.c.
 *
 * Known values come from outside our code: the RFC 7677 SCRAM-SHA-256
 * exchange, verifiers and md5 hashes stored by PostgreSQL 15 in pg_authid,
 * and md5 responses computed with Python's hashlib. The test hooks in
 * wire/auth_internal.h fix the random nonces so those vectors replay.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "wire/auth.h"
#include "wire/auth_internal.h"

/* RFC 7677 section 3 */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_SUFFIX "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                                 \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
/* The RFC's published value (also recomputed with Python's hashlib); a
 * copy circulating with the tail "...RsjRl4GA=" is a mis-transcription. */
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* CREATE ROLE alice PASSWORD 'correct horse battery staple' on PostgreSQL 15
 * with password_encryption = scram-sha-256, read back from pg_authid. */
#define PG_ALICE_PASSWORD "correct horse battery staple"
#define PG_ALICE_VERIFIER                                                                          \
    "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"    \
    "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s="

static const uint8_t rfc_salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};

static scram_secret_t rfc_secret(void)
{
    scram_secret_t s;
    cr_assert(scram_secret_build("pencil", rfc_salt, sizeof(rfc_salt), 4096, &s));
    return s;
}

static scram_secret_t alice_secret(void)
{
    scram_secret_t s;
    cr_assert(scram_secret_parse(PG_ALICE_VERIFIER, &s));
    return s;
}

/* Run a whole exchange between our client and our server. Returns true if
 * both sides accept; *where says which step failed first. */
static bool exchange(const char *password, const scram_secret_t *secret, const char **where)
{
    char a[512], b[512], err[AUTH_ERR_LEN] = "";
    scram_client_t *c = scram_client_new(password);
    scram_server_t *s = scram_server_new(secret);
    bool ok = false;

    cr_assert_not_null(c);
    cr_assert_not_null(s);
    *where = "client_first";
    if (!scram_client_first(c, a, sizeof(a), err))
        goto done;
    *where = "server_first";
    if (!scram_server_first(s, a, strlen(a), b, sizeof(b), err))
        goto done;
    *where = "client_final";
    if (!scram_client_final(c, b, strlen(b), a, sizeof(a), err))
        goto done;
    *where = "server_final";
    if (!scram_server_final(s, a, strlen(a), b, sizeof(b), err))
        goto done;
    *where = "client_verify";
    if (!scram_client_verify(c, b, strlen(b), err))
        goto done;
    *where = NULL;
    ok = true;
done:
    scram_client_free(c);
    scram_server_free(s);
    return ok;
}

/* A server that has already answered RFC_CLIENT_FIRST. */
static scram_server_t *rfc_server_after_first(void)
{
    char out[256], err[AUTH_ERR_LEN];
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    cr_assert_not_null(s);
    cr_assert(scram_server_fix_nonce(s, RFC_SERVER_SUFFIX));
    cr_assert(
        scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof(out), err),
        "%s", err);
    return s;
}

/* A client that has already sent RFC_CLIENT_FIRST. */
static scram_client_t *rfc_client_after_first(void)
{
    char out[256], err[AUTH_ERR_LEN];
    scram_client_t *c = scram_client_new("pencil");
    cr_assert_not_null(c);
    cr_assert(scram_client_fix_nonce(c, "user", "rOprNGfwEbeRWgbNEkqO"));
    cr_assert(scram_client_first(c, out, sizeof(out), err), "%s", err);
    return c;
}

/* Independent client proof computation (plain OpenSSL calls), to build
 * messages our client never sends (e.g. the "y" gs2 flag). */
static void independent_proof(const char *password, const char *auth_message, char out[45])
{
    uint8_t salted[32], ckey[32], skey[32], sig[32], proof[32];
    unsigned int len = 0;
    cr_assert(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), rfc_salt, sizeof(rfc_salt), 4096,
                                EVP_sha256(), 32, salted));
    cr_assert_not_null(
        HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ckey, &len));
    cr_assert(EVP_Digest(ckey, 32, skey, &len, EVP_sha256(), NULL));
    cr_assert_not_null(HMAC(EVP_sha256(), skey, 32, (const uint8_t *)auth_message,
                            strlen(auth_message), sig, &len));
    for (int i = 0; i < 32; i++)
        proof[i] = ckey[i] ^ sig[i];
    EVP_EncodeBlock((unsigned char *)out, proof, 32);
}

/* ------------------------------------------------------------ verifiers */

Test(scram, verifier_parse_known_postgres_value)
{
    scram_secret_t parsed = alice_secret(), derived;
    cr_assert_eq(parsed.iterations, 4096);
    cr_assert_eq(parsed.salt_len, 16);
    cr_assert(scram_secret_build(PG_ALICE_PASSWORD, parsed.salt, parsed.salt_len, 4096, &derived));
    cr_assert_eq(memcmp(parsed.stored_key, derived.stored_key, SCRAM_KEY_LEN), 0);
    cr_assert_eq(memcmp(parsed.server_key, derived.server_key, SCRAM_KEY_LEN), 0);
}

Test(scram, verifier_parse_rejects_malformed)
{
    static const char *const bad[] = {
        "",
        "SCRAM-SHA-256$",
        "SCRAM-SHA-1$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        /* iterations: 0, too many, not a number, signed, empty */
        "SCRAM-SHA-256$0:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$10000001:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/"
        "PyTmKq7BxH/LEG/3E=:Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$40x6:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$-4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        /* salt: empty, bad base64, missing padding, 65 bytes */
        "SCRAM-SHA-256$4096:$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjo*w12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        "SCRAM-SHA-256$4096:"
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
        "$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/"
        "3E=:Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
        /* keys: short, long, missing, trailing data, non-canonical padding */
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2sAAAA",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=:",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnA==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s= ",
        "SCRAM-SHA-256$4096:zjBTWvTV0rjopw12kDbEnB==$sTDLtC15xXoDSDlbd4GQM0ZWz/PyTmKq7BxH/LEG/3E=:"
        "Pg8HUwYpUgxBMgfOqE7F3yyz8kmyhnkSrmKQi0+Pc2s=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        scram_secret_t s;
        cr_expect_not(scram_secret_parse(bad[i], &s), "accepted bad verifier #%zu: %s", i, bad[i]);
    }
    scram_secret_t s;
    cr_expect_not(scram_secret_parse(NULL, &s));
}

Test(scram, verifier_from_password_uses_fresh_salt_and_4096_iterations)
{
    scram_secret_t a, b;
    const char *where = NULL;
    cr_assert(scram_secret_from_password("s3cret", &a));
    cr_assert(scram_secret_from_password("s3cret", &b));
    cr_expect_eq(a.iterations, 4096);
    cr_expect_eq(a.salt_len, 16);
    cr_expect_neq(memcmp(a.salt, b.salt, 16), 0);
    cr_expect_neq(memcmp(a.stored_key, b.stored_key, SCRAM_KEY_LEN), 0);
    cr_expect(exchange("s3cret", &a, &where), "failed at %s", where);
}

Test(scram, verifier_refuses_empty_password_and_bad_parameters)
{
    scram_secret_t s;
    cr_expect_not(scram_secret_from_password("", &s));
    cr_expect_not(scram_secret_from_password(NULL, &s));
    cr_expect_not(scram_secret_build("x", rfc_salt, sizeof(rfc_salt), 0, &s));
    cr_expect_not(scram_secret_build("x", rfc_salt, sizeof(rfc_salt), 10000001, &s));
    cr_expect_not(scram_secret_build("x", rfc_salt, 0, 4096, &s));
    cr_expect_not(scram_secret_build("x", rfc_salt, SCRAM_MAX_SALT + 1, 4096, &s));
    cr_expect_null(scram_client_new(""));
    cr_expect_null(scram_client_new(NULL));
    cr_expect_null(scram_server_new(NULL));
}

/* ------------------------------------------------------- known exchanges */

Test(scram, server_replays_rfc7677_exchange)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    cr_assert(scram_server_fix_nonce(s, RFC_SERVER_SUFFIX));
    cr_assert(
        scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof(out), err),
        "%s", err);
    cr_expect_str_eq(out, RFC_SERVER_FIRST);
    cr_assert(
        scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), err),
        "%s", err);
    cr_expect_str_eq(out, RFC_SERVER_FINAL);
    scram_server_free(s);
}

Test(scram, client_replays_rfc7677_exchange)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_client_t *c = scram_client_new("pencil");
    cr_assert(scram_client_fix_nonce(c, "user", "rOprNGfwEbeRWgbNEkqO"));
    cr_assert(scram_client_first(c, out, sizeof(out), err), "%s", err);
    cr_expect_str_eq(out, RFC_CLIENT_FIRST);
    cr_assert(
        scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, sizeof(out), err),
        "%s", err);
    cr_expect_str_eq(out, RFC_CLIENT_FINAL);
    cr_expect(scram_client_verify(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err), "%s", err);
    scram_client_free(c);
}

Test(scram, client_sends_postgres_style_first_message)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_client_t *c = scram_client_new("pw");
    cr_assert(scram_client_first(c, out, sizeof(out), err), "%s", err);
    /* "n,,n=,r=" + 24 base64 characters (18 random bytes) */
    cr_expect_eq(strncmp(out, "n,,n=,r=", 8), 0, "%s", out);
    cr_expect_eq(strlen(out), 8 + 24, "%s", out);
    scram_client_free(c);
}

Test(scram, server_nonce_extends_client_nonce_with_random_part)
{
    char a[256], b[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();
    scram_server_t *s1 = scram_server_new(&secret), *s2 = scram_server_new(&secret);
    cr_assert(scram_server_first(s1, "n,,n=,r=abc", 11, a, sizeof(a), err), "%s", err);
    cr_assert(scram_server_first(s2, "n,,n=,r=abc", 11, b, sizeof(b), err), "%s", err);
    /* r=abc<24 chars>,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096 */
    cr_expect_eq(strncmp(a, "r=abc", 5), 0, "%s", a);
    cr_expect_str_eq(a + 5 + 24, ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    cr_expect_neq(strncmp(a, b, 5 + 24), 0, "server nonces repeat");
    scram_server_free(s1);
    scram_server_free(s2);
}

/* --------------------------------------------------------- round trips */

Test(scram, server_accepts_right_password)
{
    scram_secret_t secret = alice_secret();
    const char *where = NULL;
    cr_expect(exchange(PG_ALICE_PASSWORD, &secret, &where), "failed at %s", where);
}

Test(scram, server_rejects_wrong_password)
{
    scram_secret_t secret = alice_secret();
    const char *where = NULL;
    cr_expect_not(exchange("correct horse battery stapler", &secret, &where));
    cr_expect_str_eq(where, "server_final");
}

Test(scram, server_reports_wrong_password_without_secrets)
{
    char a[256], b[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    scram_client_t *c = scram_client_new("pencil2");
    cr_assert(scram_client_first(c, a, sizeof(a), err));
    cr_assert(scram_server_first(s, a, strlen(a), b, sizeof(b), err));
    cr_assert(scram_client_final(c, b, strlen(b), a, sizeof(a), err));
    b[0] = 'X';
    cr_expect_not(scram_server_final(s, a, strlen(a), b, sizeof(b), err));
    cr_expect_str_eq(err, "SCRAM proof mismatch (wrong password)");
    cr_expect_str_eq(b, "", "output must be empty on failure");
    scram_client_free(c);
    scram_server_free(s);
}

Test(scram, client_and_server_roundtrip)
{
    static const char *const passwords[] = {"p", "pencil", "with space and ,=$:\"'",
                                            "\xc3\xa9t\xc3\xa9 (UTF-8)", "\x01\x7f control"};
    for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++) {
        scram_secret_t secret;
        const char *where = NULL;
        cr_assert(scram_secret_from_password(passwords[i], &secret));
        cr_expect(exchange(passwords[i], &secret, &where), "password #%zu failed at %s", i, where);
    }
}

Test(scram, client_rejects_server_that_only_knows_stored_key)
{
    /* Someone holding StoredKey (but not ServerKey) passes the proof check
     * but cannot produce the server signature. */
    scram_secret_t secret = alice_secret();
    const char *where = NULL;
    secret.server_key[0] ^= 1;
    cr_expect_not(exchange(PG_ALICE_PASSWORD, &secret, &where));
    cr_expect_str_eq(where, "client_verify");
}

Test(scram, client_rejects_tampered_server_final)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_client_t *c = rfc_client_after_first();
    cr_assert(
        scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, sizeof(out), err));
    const char *forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    cr_expect_not(scram_client_verify(c, forged, strlen(forged), err));
    cr_expect_str_eq(err, "SCRAM server signature mismatch");
    /* the exchange is over: even the right answer is now refused */
    cr_expect_not(scram_client_verify(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err));
    scram_client_free(c);
}

Test(scram, client_rejects_malformed_server_final)
{
    static const char *const bad[] = {
        "",
        "v=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=1",
        "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[256], err[AUTH_ERR_LEN] = "";
        scram_client_t *c = rfc_client_after_first();
        cr_assert(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out,
                                     sizeof(out), err));
        cr_expect_not(scram_client_verify(c, bad[i], strlen(bad[i]), err), "accepted #%zu", i);
        scram_client_free(c);
    }
}

Test(scram, client_reports_server_error)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_client_t *c = rfc_client_after_first();
    cr_assert(
        scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, sizeof(out), err));
    cr_expect_not(scram_client_verify(c, "e=invalid-proof", 15, err));
    cr_expect_str_eq(err, "SCRAM server error: invalid-proof");
    scram_client_free(c);
}

Test(scram, server_ignores_username_in_client_first)
{
    char a[256], b[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = alice_secret();
    scram_server_t *s = scram_server_new(&secret);
    scram_client_t *c = scram_client_new(PG_ALICE_PASSWORD);
    cr_assert(scram_client_fix_nonce(c, "somebody-else", "fixednonce"));
    cr_assert(scram_client_first(c, a, sizeof(a), err));
    cr_assert_str_eq(a, "n,,n=somebody-else,r=fixednonce");
    cr_assert(scram_server_first(s, a, strlen(a), b, sizeof(b), err), "%s", err);
    cr_assert(scram_client_final(c, b, strlen(b), a, sizeof(a), err), "%s", err);
    cr_assert(scram_server_final(s, a, strlen(a), b, sizeof(b), err), "%s", err);
    cr_expect(scram_client_verify(c, b, strlen(b), err), "%s", err);
    scram_client_free(c);
    scram_server_free(s);
}

Test(scram, server_accepts_y_flag_and_checks_it_in_final)
{
    const char *cf = "y,,n=,r=abc";
    const char *sf = "r=abcSERVER,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    char out[256], msg[512], am[512], proof[45], err[AUTH_ERR_LEN] = "";

    /* c=eSws is base64("y,,"): accepted with a proof computed over it */
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    cr_assert(scram_server_fix_nonce(s, "SERVER"));
    cr_assert(scram_server_first(s, cf, strlen(cf), out, sizeof(out), err), "%s", err);
    cr_assert_str_eq(out, sf);
    snprintf(am, sizeof(am), "n=,r=abc,%s,c=eSws,r=abcSERVER", sf);
    independent_proof("pencil", am, proof);
    snprintf(msg, sizeof(msg), "c=eSws,r=abcSERVER,p=%s", proof);
    cr_expect(scram_server_final(s, msg, strlen(msg), out, sizeof(out), err), "%s", err);
    scram_server_free(s);

    /* c=biws ("n,,") after a "y" header is a downgrade: refused */
    s = scram_server_new(&secret);
    cr_assert(scram_server_fix_nonce(s, "SERVER"));
    cr_assert(scram_server_first(s, cf, strlen(cf), out, sizeof(out), err));
    snprintf(am, sizeof(am), "n=,r=abc,%s,c=biws,r=abcSERVER", sf);
    independent_proof("pencil", am, proof);
    snprintf(msg, sizeof(msg), "c=biws,r=abcSERVER,p=%s", proof);
    cr_expect_not(scram_server_final(s, msg, strlen(msg), out, sizeof(out), err));
    cr_expect_str_eq(err, "SCRAM channel binding does not match gs2 header");
    scram_server_free(s);
}

Test(scram, server_ignores_extensions_before_proof)
{
    const char *cf = "n,,n=,r=abc,x=ext";
    const char *sf = "r=abcSERVER,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    char out[256], msg[512], am[512], proof[45], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    cr_assert(scram_server_fix_nonce(s, "SERVER"));
    cr_assert(scram_server_first(s, cf, strlen(cf), out, sizeof(out), err), "%s", err);
    snprintf(am, sizeof(am), "n=,r=abc,x=ext,%s,c=biws,r=abcSERVER,z=1", sf);
    independent_proof("pencil", am, proof);
    snprintf(msg, sizeof(msg), "c=biws,r=abcSERVER,z=1,p=%s", proof);
    cr_expect(scram_server_final(s, msg, strlen(msg), out, sizeof(out), err), "%s", err);
    scram_server_free(s);
}

/* ---------------------------------------------------- hostile messages */

Test(scram, server_refuses_channel_binding)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    const char *cf = "p=tls-server-end-point,,n=,r=abc";
    cr_expect_not(scram_server_first(s, cf, strlen(cf), out, sizeof(out), err));
    cr_expect_str_eq(err, "SCRAM channel binding is not supported");
    scram_server_free(s);
}

Test(scram, server_rejects_malformed_client_first)
{
    static const char *const bad[] = {
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=,r=abc",
        "n,a=bob,n=,r=abc",
        "n,x,n=,r=abc",
        "n,,r=abc",
        "n,,n=",
        "n,,n=,",
        "n,,n=,r=",
        "n,,n=,r=a b",
        "n,,n=,r=abc\x7f",
        "n,,n=,r=abc,",
        "n,,n=,r=abc,1=x",
        "n,,n=,r=abc,xyz",
        "n,,m=ext,n=,r=abc",
        "n,,n=,x=1,r=abc",
        "n,, n=,r=abc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[256], err[AUTH_ERR_LEN] = "";
        scram_secret_t secret = rfc_secret();
        scram_server_t *s = scram_server_new(&secret);
        cr_expect_not(scram_server_first(s, bad[i], strlen(bad[i]), out, sizeof(out), err),
                      "accepted client-first #%zu: %s", i, bad[i]);
        cr_expect_neq(err[0], '\0', "no reason for #%zu", i);
        scram_server_free(s);
    }
}

Test(scram, server_rejects_nul_bytes_and_oversized_messages)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();
    scram_server_t *s = scram_server_new(&secret);
    cr_expect_not(scram_server_first(s, "n,,n=,r=ab\0c", 12, out, sizeof(out), err));
    cr_expect_str_eq(err, "malformed SCRAM message (NUL byte)");
    scram_server_free(s);

    size_t big = 100000;
    char *huge = malloc(big);
    memcpy(huge, "n,,n=,r=", 8);
    memset(huge + 8, 'a', big - 8);
    s = scram_server_new(&secret);
    cr_expect_not(scram_server_first(s, huge, big, out, sizeof(out), err));
    cr_expect_str_eq(err, "SCRAM message too long");
    scram_server_free(s);
    free(huge);
}

Test(scram, server_rejects_malformed_client_final)
{
    static const char *const bad[] = {
        "",
        /* missing / misplaced fields */
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        /* bad base64 in c=, c= not the gs2 header, channel binding data */
        "c=bi*s,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biw,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=cCx0bHMtc2VydmVyLWVuZC1wb2ludCws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        /* wrong nonce: client part only, altered, longer */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0x,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        /* proof: bad base64, wrong length, empty, data after it */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And!Q=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,1=x,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        /* right structure, proof with one bit flipped */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[256], err[AUTH_ERR_LEN] = "";
        scram_server_t *s = rfc_server_after_first();
        cr_expect_not(scram_server_final(s, bad[i], strlen(bad[i]), out, sizeof(out), err),
                      "accepted client-final #%zu: %s", i, bad[i]);
        cr_expect_neq(err[0], '\0', "no reason for #%zu", i);
        scram_server_free(s);
    }
}

Test(scram, server_rejects_c_attribute_other_than_gs2_header)
{
    /* base64 of "n", "n,", "n,,n", "y,,", "n,,\0": none echoes "n,," */
    static const char *const cbind[] = {"bg==", "biw=", "biwsbg==", "eSws", "biwsAA=="};
    for (size_t i = 0; i < sizeof(cbind) / sizeof(cbind[0]); i++) {
        char cf[256], out[256], err[AUTH_ERR_LEN] = "";
        scram_server_t *s = rfc_server_after_first();
        /* the RFC client-final with only c= replaced */
        snprintf(cf, sizeof(cf), "c=%s%s", cbind[i], strchr(RFC_CLIENT_FINAL, ','));
        cr_expect_not(scram_server_final(s, cf, strlen(cf), out, sizeof(out), err), "%s", cf);
        cr_expect_str_eq(err, "SCRAM channel binding does not match gs2 header", "%s", cf);
        scram_server_free(s);
    }
}

Test(scram, server_reports_nonce_mismatch)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_server_t *s = rfc_server_after_first();
    const char *cf = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
                     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    cr_expect_not(scram_server_final(s, cf, strlen(cf), out, sizeof(out), err));
    cr_expect_str_eq(err, "SCRAM nonce mismatch");
    scram_server_free(s);
}

Test(scram, server_enforces_step_order)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();

    /* final before first */
    scram_server_t *s = scram_server_new(&secret);
    cr_expect_not(
        scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), err));
    cr_expect_str_eq(err, "SCRAM exchange out of order");
    scram_server_free(s);

    /* first twice */
    s = rfc_server_after_first();
    cr_expect_not(
        scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof(out), err));
    scram_server_free(s);

    /* a failed final ends the exchange: the right proof is refused after it */
    s = rfc_server_after_first();
    cr_expect_not(scram_server_final(s, "c=biws", 6, out, sizeof(out), err));
    cr_expect_not(
        scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), err));
    scram_server_free(s);

    /* a finished exchange cannot be replayed */
    s = rfc_server_after_first();
    cr_assert(
        scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), err));
    cr_expect_not(
        scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof(out), err));
    scram_server_free(s);
}

Test(scram, client_enforces_step_order)
{
    char out[256], err[AUTH_ERR_LEN] = "";
    scram_client_t *c = scram_client_new("pencil");
    cr_expect_not(
        scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, sizeof(out), err));
    cr_expect_str_eq(err, "SCRAM exchange out of order");
    scram_client_free(c);

    c = rfc_client_after_first();
    cr_expect_not(scram_client_verify(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err));
    scram_client_free(c);
}

Test(scram, client_rejects_malformed_server_first)
{
    static const char *const bad[] = {
        "",
        "e=other-error",
        "m=ext,r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        /* nonce: not ours, exactly ours (no server part), non-printable */
        "r=xOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%h Y,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        /* salt: missing, empty, bad base64, too long (65 bytes) */
        "r=rOprNGfwEbeRWgbNEkqO%hvY,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s="
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
        ",i=4096",
        /* iterations: missing, zero, too many, not a number, trailing data */
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=abc",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1",
        "r=rOprNGfwEbeRWgbNEkqO%hvY,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[256], err[AUTH_ERR_LEN] = "";
        scram_client_t *c = rfc_client_after_first();
        cr_expect_not(scram_client_final(c, bad[i], strlen(bad[i]), out, sizeof(out), err),
                      "accepted server-first #%zu: %s", i, bad[i]);
        cr_expect_neq(err[0], '\0', "no reason for #%zu", i);
        scram_client_free(c);
    }
}

Test(scram, output_buffer_too_small_is_refused_without_overflow)
{
    char buf[256], err[AUTH_ERR_LEN] = "";
    scram_secret_t secret = rfc_secret();

    /* scram_client_first: needs strlen(RFC_CLIENT_FIRST) + 1 */
    scram_client_t *c = scram_client_new("pencil");
    cr_assert(scram_client_fix_nonce(c, "user", "rOprNGfwEbeRWgbNEkqO"));
    memset(buf, '#', sizeof(buf));
    cr_expect_not(scram_client_first(c, buf, strlen(RFC_CLIENT_FIRST), err));
    cr_expect_str_eq(err, "output buffer too small");
    cr_expect_eq(buf[strlen(RFC_CLIENT_FIRST)], '#');
    scram_client_free(c);

    /* scram_server_first */
    scram_server_t *s = scram_server_new(&secret);
    cr_assert(scram_server_fix_nonce(s, RFC_SERVER_SUFFIX));
    memset(buf, '#', sizeof(buf));
    cr_expect_not(scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), buf,
                                     strlen(RFC_SERVER_FIRST), err));
    cr_expect_str_eq(err, "output buffer too small");
    cr_expect_eq(buf[strlen(RFC_SERVER_FIRST)], '#');
    scram_server_free(s);

    /* scram_client_final */
    c = rfc_client_after_first();
    memset(buf, '#', sizeof(buf));
    cr_expect_not(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), buf,
                                     strlen(RFC_CLIENT_FINAL), err));
    cr_expect_str_eq(err, "output buffer too small");
    cr_expect_eq(buf[strlen(RFC_CLIENT_FINAL)], '#');
    scram_client_free(c);

    /* scram_server_final */
    s = rfc_server_after_first();
    memset(buf, '#', sizeof(buf));
    cr_expect_not(scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), buf,
                                     strlen(RFC_SERVER_FINAL), err));
    cr_expect_str_eq(err, "output buffer too small");
    cr_expect_eq(buf[strlen(RFC_SERVER_FINAL)], '#');
    scram_server_free(s);

    /* zero capacity writes nothing at all */
    c = scram_client_new("pencil");
    memset(buf, '#', sizeof(buf));
    cr_expect_not(scram_client_first(c, buf, 0, err));
    cr_expect_eq(buf[0], '#');
    scram_client_free(c);
}

Test(scram, exact_output_size_is_enough)
{
    char buf[256], err[AUTH_ERR_LEN] = "";
    scram_server_t *s = rfc_server_after_first();
    cr_expect(scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), buf,
                                 strlen(RFC_SERVER_FINAL) + 1, err),
              "%s", err);
    cr_expect_str_eq(buf, RFC_SERVER_FINAL);
    scram_server_free(s);
}

/* ------------------------------------------------------------------ md5 */

Test(md5, password_hash_matches_postgres)
{
    char out[36];
    /* both values read from pg_authid with password_encryption = md5 */
    md5_password_hash("postgres", "postgres", out);
    cr_expect_str_eq(out, "md53175bce1d3201d16594cebf9d7eb3f9d");
    md5_password_hash("postgres2", "postgres", out);
    cr_expect_str_eq(out, "md5f2f8915a1d20bb8dcb940115f5bf3c05");
}

Test(md5, salted_response_known_value)
{
    static const uint8_t salt[4] = {1, 2, 3, 4};
    char out[36];
    /* python: "md5" + md5(md5(b"postgrespostgres").hexdigest() + salt) */
    md5_salted_response("postgres", "postgres", salt, out);
    cr_expect_str_eq(out, "md568be9ed08db75f318087ab337aaea044");
    md5_salted_response("postgres", "md53175bce1d3201d16594cebf9d7eb3f9d", salt, out);
    cr_expect_str_eq(out, "md568be9ed08db75f318087ab337aaea044");
}

Test(md5, verify_accepts_right_response)
{
    static const uint8_t salt[4] = {0xde, 0xad, 0xbe, 0xef};
    char resp[36];
    md5_salted_response("bob", "secret", salt, resp);
    cr_expect(md5_verify("bob", "secret", salt, resp));
    cr_expect(md5_verify("bob", "md521f3163f8f86fa10bdefbfbd502a8f06", salt, resp));
}

Test(md5, verify_rejects_wrong_response)
{
    static const uint8_t salt[4] = {0xde, 0xad, 0xbe, 0xef};
    static const uint8_t salt2[4] = {0xde, 0xad, 0xbe, 0xee};
    char resp[36], upper[36];
    md5_salted_response("bob", "secret", salt, resp);

    cr_expect_not(md5_verify("bob", "Secret", salt, resp), "wrong password");
    cr_expect_not(md5_verify("bobby", "secret", salt, resp), "wrong user");
    cr_expect_not(md5_verify("bob", "secret", salt2, resp), "replayed with another salt");
    cr_expect_not(md5_verify("bob", "secret", salt, ""));
    cr_expect_not(md5_verify("bob", "secret", salt, "md5"));
    cr_expect_not(md5_verify("bob", "secret", salt, NULL));

    char longer[40];
    snprintf(longer, sizeof(longer), "%sx", resp);
    cr_expect_not(md5_verify("bob", "secret", salt, longer), "trailing data");
    char shorter[36];
    snprintf(shorter, sizeof(shorter), "%.34s", resp);
    cr_expect_not(md5_verify("bob", "secret", salt, shorter), "truncated");
    for (int i = 0; i < 36; i++)
        upper[i] = (resp[i] >= 'a' && resp[i] <= 'f' && i >= 3) ? (char)(resp[i] - 32) : resp[i];
    cr_expect_not(md5_verify("bob", "secret", salt, upper), "uppercase hex");
    /* the stored hash itself is not a valid response */
    cr_expect_not(md5_verify("bob", "secret", salt, "md521f3163f8f86fa10bdefbfbd502a8f06"));
}

Test(md5, verify_refuses_empty_password_and_scram_secret)
{
    static const uint8_t salt[4] = {1, 2, 3, 4};
    char resp[36];
    md5_salted_response("bob", "", salt, resp);
    cr_expect_not(md5_verify("bob", "", salt, resp));
    md5_salted_response("alice", PG_ALICE_VERIFIER, salt, resp);
    cr_expect_not(md5_verify("alice", PG_ALICE_VERIFIER, salt, resp));
}

Test(md5, secret_kind_follows_postgres_rules)
{
    cr_expect_eq(auth_secret_kind("hunter2"), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind(""), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind(NULL), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind("md53175bce1d3201d16594cebf9d7eb3f9d"), SECRET_MD5);
    cr_expect_eq(auth_secret_kind("md53175BCE1d3201d16594cebf9d7eb3f9d"), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind("md53175bce1d3201d16594cebf9d7eb3f9"), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind("md53175bce1d3201d16594cebf9d7eb3f9dd"), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind("md5g175bce1d3201d16594cebf9d7eb3f9d"), SECRET_PLAIN);
    cr_expect_eq(auth_secret_kind(PG_ALICE_VERIFIER), SECRET_SCRAM);
    cr_expect_eq(auth_secret_kind("SCRAM-SHA-256$4096:abc"), SECRET_PLAIN);
}

/* ------------------------------------------------------------- userlist */

/* Write content to a fresh temporary file; path receives its name. */
static void write_tmp(char path[64], const char *content, size_t len)
{
    snprintf(path, 64, "/tmp/test_auth_userlist.XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
}

static userlist_t *load_str(const char *content, char *err, size_t errcap)
{
    char path[64];
    write_tmp(path, content, strlen(content));
    userlist_t *ul = userlist_load(path, err, errcap);
    unlink(path);
    return ul;
}

/* Expect `content` to be refused with "<path>:<line>: <reason>". */
static void expect_malformed(const char *content, unsigned line, const char *reason)
{
    char path[64], err[256] = "", want[320];
    write_tmp(path, content, strlen(content));
    userlist_t *ul = userlist_load(path, err, sizeof(err));
    unlink(path);
    cr_expect_null(ul, "accepted: %s", content);
    userlist_free(ul);
    snprintf(want, sizeof(want), "%s:%u: %s", path, line, reason);
    cr_expect_str_eq(err, want);
}

Test(userlist, parses_quotes_comments_and_blank_lines)
{
    const char *content = "; PgBouncer userlist\n"
                          "# another comment\n"
                          "\n"
                          "   \t\n"
                          "  ; indented comment\n"
                          "\"alice\" \"" PG_ALICE_VERIFIER "\"\n"
                          "\"bob\"\t\"md521f3163f8f86fa10bdefbfbd502a8f06\" trailing words\n"
                          "  \"carol\"   \"pa ss\"\"word\"\"\"\r\n"
                          "\"da\"\"ve\" \"\"\n"
                          "\"semi;colon\" \"#hash\" ; comment after the fields\n"
                          "\"last\" \"no newline at end\"";
    char err[256] = "";
    userlist_t *ul = load_str(content, err, sizeof(err));
    cr_assert_not_null(ul, "%s", err);
    cr_expect_str_eq(userlist_lookup(ul, "alice"), PG_ALICE_VERIFIER);
    cr_expect_str_eq(userlist_lookup(ul, "bob"), "md521f3163f8f86fa10bdefbfbd502a8f06");
    cr_expect_str_eq(userlist_lookup(ul, "carol"), "pa ss\"word\"");
    cr_expect_str_eq(userlist_lookup(ul, "da\"ve"), "");
    cr_expect_str_eq(userlist_lookup(ul, "semi;colon"), "#hash");
    cr_expect_str_eq(userlist_lookup(ul, "last"), "no newline at end");
    cr_expect_null(userlist_lookup(ul, "mallory"));
    cr_expect_null(userlist_lookup(ul, "Alice"));
    cr_expect_null(userlist_lookup(ul, ""));
    cr_expect_null(userlist_lookup(ul, NULL));
    userlist_free(ul);
}

Test(userlist, reports_malformed_lines_with_numbers)
{
    expect_malformed("\"a\" \"b\"\nalice \"pw\"\n", 2, "expected a quoted user name");
    expect_malformed("\"a\" \"b\"\n\n\"alice\"\n", 3,
                     "expected a quoted secret after the user name");
    expect_malformed("\"alice\" pw\n", 1, "expected a quoted secret after the user name");
    expect_malformed("# c\n\"alice \"pw\"\n", 2, "expected a quoted secret after the user name");
    expect_malformed("\"alice\" \"pw\n", 1, "unterminated quoted string");
    expect_malformed("\"alice\n\"pw\"\n", 1, "unterminated quoted string");
    expect_malformed("\"\" \"pw\"\n", 1, "empty user name");
    expect_malformed("\"a\" \"SCRAM-SHA-256$4096:broken\"\n", 1, "invalid SCRAM-SHA-256 verifier");
    expect_malformed("\"a\" \"md53175BCE1d3201d16594cebf9d7eb3f9d\"\n", 1,
                     "md5 hash must be lowercase hex");
    expect_malformed("\"a\" \"x\"\n\"b\" \"y\"\n\"a\" \"z\"\n", 3,
                     "duplicate user name (first on line 1)");
}

Test(userlist, rejects_nul_bytes)
{
    char path[64], err[256] = "", want[320];
    static const char content[] = "\"a\" \"b\"\n\"c\" \"d\0e\"\n";
    write_tmp(path, content, sizeof(content) - 1);
    userlist_t *ul = userlist_load(path, err, sizeof(err));
    unlink(path);
    cr_expect_null(ul);
    snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
    cr_expect_str_eq(err, want);
}

Test(userlist, error_never_contains_the_secret)
{
    char err[256] = "";
    userlist_t *ul =
        load_str("\"alice\" \"TopSecret123\" \n\"alice\" \"TopSecret123\"\n", err, sizeof(err));
    cr_expect_null(ul);
    cr_expect_null(strstr(err, "TopSecret123"), "%s", err);
    cr_expect_neq(err[0], '\0');
}

Test(userlist, missing_file_reports_path)
{
    char err[256] = "";
    cr_expect_null(userlist_load("/nonexistent/dir/userlist.txt", err, sizeof(err)));
    cr_expect_str_eq(err, "/nonexistent/dir/userlist.txt: No such file or directory");
}

Test(userlist, truncates_long_errors_to_errcap)
{
    char err[16];
    memset(err, '#', sizeof(err));
    cr_expect_null(userlist_load("/nonexistent/dir/userlist.txt", err, 8));
    cr_expect_eq(strlen(err), 7);
    cr_expect_eq(err[8], '#');
}

Test(userlist, empty_file_has_no_users)
{
    char err[256] = "";
    userlist_t *ul = load_str("", err, sizeof(err));
    cr_assert_not_null(ul, "%s", err);
    cr_expect_null(userlist_lookup(ul, "alice"));
    userlist_free(ul);
}

Test(userlist, holds_many_users_and_long_lines)
{
    const size_t users = 5000;
    size_t cap = users * 48 + 20000;
    char *content = malloc(cap), err[256] = "";
    size_t len = 0;
    for (size_t i = users; i > 0; i--) /* reverse order: lookup must not rely on it */
        len += (size_t)snprintf(content + len, cap - len, "\"user%zu\" \"pw%zu\"\n", i, i);
    /* one 10,000-character secret */
    len += (size_t)snprintf(content + len, cap - len, "\"long\" \"");
    memset(content + len, 'x', 10000);
    len += 10000;
    len += (size_t)snprintf(content + len, cap - len, "\"\n");
    userlist_t *ul = load_str(content, err, sizeof(err));
    free(content);
    cr_assert_not_null(ul, "%s", err);
    for (size_t i = 1; i <= users; i++) {
        char user[32], pw[32];
        snprintf(user, sizeof(user), "user%zu", i);
        snprintf(pw, sizeof(pw), "pw%zu", i);
        const char *got = userlist_lookup(ul, user);
        cr_assert_not_null(got, "%s missing", user);
        cr_assert_str_eq(got, pw);
    }
    cr_expect_eq(strlen(userlist_lookup(ul, "long")), 10000);
    cr_expect_null(userlist_lookup(ul, "user0"));
    cr_expect_null(userlist_lookup(ul, "user5001"));
    userlist_free(ul);
}

Test(userlist, free_and_lookup_accept_null)
{
    userlist_free(NULL);
    cr_expect_null(userlist_lookup(NULL, "alice"));
}
