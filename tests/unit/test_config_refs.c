/*
 * test_config_refs — the reference count of config snapshots (config.h):
 * the last release frees a snapshot (its userlist and its SSL_CTX
 * references; ASan's leak checker sees a snapshot that is never freed), a
 * TLS session made from a snapshot's SSL_CTX outlives the snapshot, and
 * acquires and releases from several threads keep the count exact.
 */
#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/config.h"

static char dir[] = "/tmp/epoch-test-refs-XXXXXX";
static char cert_path[64], key_path[64], users_path[64];

/* A self-signed P-256 certificate and its key, as PEM files. */
static void write_cert(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    cr_assert(key && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    cr_assert(f && PEM_write_X509(f, x));
    fclose(f);
    f = fopen(key_path, "w");
    cr_assert(f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    snprintf(users_path, sizeof users_path, "%s/users.txt", dir);
    write_cert();
    FILE *f = fopen(users_path, "w");
    cr_assert_not_null(f);
    fputs("\"alice\" \"secret\"\n", f);
    fclose(f);
}

static void teardown(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(users_path);
    rmdir(dir);
}

TestSuite(config_refs, .init = setup, .fini = teardown);

/* A snapshot with TLS and a userlist (one reference). */
static config_t *load(void)
{
    /* static: config_reload reads the saved argv again */
    static char *argv[] = {"epoch-proxy", "--tls_cert_file", cert_path,  "--tls_key_file",
                           key_path,      "--auth_mode",     "userlist", "--auth_file",
                           users_path,    "--workers",       "1"};
    char err[512];
    config_t *cfg = config_load(11, argv, err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_not_null(cfg->tls_ctx);
    cr_assert_not_null(cfg->userlist);
    return cfg;
}

Test(config_refs, load_gives_one_reference_and_the_last_release_frees)
{
    config_t *cfg = load();
    cr_expect_eq(config_refs(cfg), 1);
    cr_expect_eq(config_acquire(cfg), cfg);
    cr_expect_eq(config_refs(cfg), 2);
    config_release(cfg);
    cr_expect_eq(config_refs(cfg), 1);
    config_release(cfg); /* freed here: ASan reports a leak otherwise */
    config_release(NULL);
}

Test(config_refs, reload_gives_a_new_snapshot_and_leaves_the_old_one)
{
    config_t *old = load();
    char err[512];
    config_t *next = config_reload(old, err, sizeof err);
    cr_assert_not_null(next, "%s", err);
    cr_expect_neq(next, old);
    cr_expect_eq(config_refs(next), 1);
    cr_expect_eq(config_refs(old), 1);
    cr_expect_neq(next->userlist, old->userlist);
    config_release(old);
    /* the new one stands alone: its userlist and TLS are its own */
    cr_expect_not_null(next->tls_ctx);
    config_release(next);
}

/* What a client in a TLS handshake keeps: an SSL made from the snapshot's
 * SSL_CTX, which holds its own reference. */
Test(config_refs, a_tls_session_outlives_its_snapshot)
{
    config_t *cfg = load();
    SSL *ssl = SSL_new(cfg->tls_ctx);
    cr_assert_not_null(ssl);
    config_release(cfg);
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    cr_expect_not_null(SSL_CTX_get0_certificate(ctx), "the SSL_CTX was freed under the SSL");
    SSL *second = SSL_new(ctx); /* still usable */
    cr_expect_not_null(second);
    SSL_free(second);
    SSL_free(ssl);
}

#define THREADS 4
#define ROUNDS 100000

static void *churn(void *arg)
{
    const config_t *cfg = arg;
    for (int i = 0; i < ROUNDS; i++) {
        config_acquire(cfg);
        config_release(cfg);
    }
    return NULL;
}

/* Worker threads drop what the main thread gave them, as on SIGHUP. */
static void *drop(void *arg)
{
    config_release(arg);
    return NULL;
}

Test(config_refs, threads_acquire_and_release_exactly)
{
    config_t *cfg = load();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, churn, cfg), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(config_refs(cfg), 1);
    /* the last reference dropped on another thread frees it there */
    for (int i = 0; i < THREADS; i++)
        config_acquire(cfg);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, drop, cfg), 0);
    config_release(cfg);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}
