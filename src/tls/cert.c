/* cert.c - `sockit keygen --cert`: a self-signed certificate for
 * --tls-cert/--tls-key, so that standard TLS clients can connect with
 * nothing but its pin. An ECDSA P-256 key (what every TLS stack takes), a
 * ten-year validity, and names for the loopback addresses; the pin is
 * what clients check, not the names. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sockit/auth.h"
#include "sockit/error.h"
#include "tls/tls.h"

#define VALID_DAYS 3650

static int add_ext(X509 *cert, int nid, const char *value) {
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  int ok;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

static X509 *self_signed(EVP_PKEY *key) {
  X509 *cert = X509_new();
  X509_NAME *name;
  unsigned char serial[16] = {0};
  BIGNUM *bn = NULL;
  int ok = cert != NULL && RAND_bytes(serial, sizeof(serial)) == 1;
  serial[0] &= 0x7f; /* a positive serial number */
  ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
       BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL &&
       X509_set_version(cert, 2) == 1 && X509_gmtime_adj(X509_getm_notBefore(cert), 0) &&
       X509_gmtime_adj(X509_getm_notAfter(cert), (long)VALID_DAYS * 86400) &&
       X509_set_pubkey(cert, key) == 1 && (name = X509_get_subject_name(cert)) != NULL &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sockit", -1, -1,
                                  0) == 1 &&
       X509_set_issuer_name(cert, name) == 1 &&
       add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") &&
       add_ext(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
       X509_sign(cert, key, EVP_sha256()) > 0;
  BN_free(bn);
  if (!ok) {
    X509_free(cert);
    return NULL;
  }
  return cert;
}

/* Write with mode, never over an existing file. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  FILE *f;
  int ok;
  if (fd < 0)
    return -errno;
  if ((f = fdopen(fd, "w")) == NULL) {
    int err = -errno;
    close(fd);
    unlink(path);
    return err;
  }
  ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1
                   : PEM_write_X509(f, cert) == 1;
  ok = fclose(f) == 0 && ok;
  if (!ok) {
    unlink(path);
    return SK_EIO;
  }
  return 0;
}

int sk_tls_cert_generate(const char *dir, char pin[SK_TLS_PIN_TEXT + 1], const char **why) {
  char cert_path[4096], key_path[4096];
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  const char *dummy;
  int rc = SK_EINTERNAL;

  if (why == NULL)
    why = &dummy;
  *why = NULL;
  if (dir == NULL || pin == NULL)
    return -EINVAL;
  if (snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir) >= (int)sizeof(cert_path) ||
      snprintf(key_path, sizeof(key_path), "%s/key.pem", dir) >= (int)sizeof(key_path))
    return -ENAMETOOLONG;
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    *why = "cannot create the folder";
    return -errno;
  }
  key = EVP_EC_gen("P-256");
  if (key == NULL || (cert = self_signed(key)) == NULL || sk__tls_cert_pin(cert, pin) < 0) {
    *why = "OpenSSL could not make the key pair";
    goto out;
  }
  if ((rc = write_pem(key_path, 0600, key, NULL)) < 0) {
    *why = "cannot write key.pem";
    goto out;
  }
  if ((rc = write_pem(cert_path, 0644, NULL, cert)) < 0) {
    unlink(key_path);
    *why = "cannot write cert.pem";
  }
out:
  ERR_clear_error();
  X509_free(cert);
  EVP_PKEY_free(key);
  return rc;
}
